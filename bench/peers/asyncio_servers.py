"""
asyncio peers for the benchmarks: TCP echo, UDP echo and HTTP hello servers
written against asyncio's Protocol API, on the stdlib event loop or uvloop.

    python asyncio_servers.py tcp-echo PORT [--uvloop]
    python asyncio_servers.py udp-echo PORT [--uvloop]
    python asyncio_servers.py http-hello PORT [--uvloop]    (aiohttp)
    python asyncio_servers.py http-hello PORT [--uvloop] --certificate CERT --key KEY
                                                          (aiohttp over HTTPS)

Listens on 127.0.0.1 only and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl


class EchoProtocol(asyncio.Protocol):
    """
    Write back every byte received, pausing reads when the send buffer is
    full (asyncio's flow control), like the netservices echo.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        self.transport.resume_reading()  # type: ignore[attr-defined]


class UDPEchoProtocol(asyncio.DatagramProtocol):
    """
    Send every datagram back to its sender.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def serve(kind: str, port: int, tls: ssl.SSLContext | None = None) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    if kind == "tcp-echo":
        server = await loop.create_server(EchoProtocol, "127.0.0.1", port, backlog=1024)
        async with server:
            await stop
    elif kind == "udp-echo":
        transport, _ = await loop.create_datagram_endpoint(
            UDPEchoProtocol, local_addr=("127.0.0.1", port)
        )
        await stop
        transport.close()
    else:
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="Hello World", content_type="text/html", charset="UTF-8")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, ssl_context=tls)
        await site.start()
        await stop
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["tcp-echo", "udp-echo", "http-hello"])
    parser.add_argument("port", type=int)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--certificate", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--key", help="the certificate's PEM private key")
    args = parser.parse_args()
    tls = None
    if args.certificate:
        # The defaults of a server context: TLS 1.2 and 1.3, as netservices
        # and nginx offer them.
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.certificate, args.key)
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.kind, args.port, tls))
    else:
        asyncio.run(serve(args.kind, args.port, tls))


if __name__ == "__main__":
    main()
