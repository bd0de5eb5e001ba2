"""
Minimal Twisted peers for the benchmarks: what a Twisted programmer writes
in ten lines for each workload, on the default reactor, with no features.

    python twisted_servers.py tcp-echo PORT
    python twisted_servers.py udp-echo PORT
    python twisted_servers.py http-hello PORT
    python twisted_servers.py static PORT DIRECTORY

Listens on 127.0.0.1 only and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import warnings

from twisted.internet import protocol, reactor
from twisted.protocols.wire import Echo


class UDPEcho(protocol.DatagramProtocol):
    """
    Send every datagram back to its sender.
    """

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.write(data, addr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["tcp-echo", "udp-echo", "http-hello", "static"])
    parser.add_argument("port", type=int)
    parser.add_argument("directory", nargs="?")
    args = parser.parse_args()
    if args.kind == "tcp-echo":
        reactor.listenTCP(args.port, protocol.Factory.forProtocol(Echo), 1024, "127.0.0.1")
    elif args.kind == "udp-echo":
        reactor.listenUDP(args.port, UDPEcho(), "127.0.0.1", 65535)
    else:
        from twisted.web import resource, server

        if args.kind == "static":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from twisted.web.static import File
            root: resource.Resource = File(args.directory)
        else:

            class Hello(resource.Resource):
                isLeaf = True

                def render_GET(self, request: server.Request) -> bytes:
                    request.setHeader(b"content-type", b"text/html; charset=UTF-8")
                    return b"Hello World"

            root = Hello()
        site = server.Site(root)
        site.log = lambda request: None  # no access log, like the other peers
        reactor.listenTCP(args.port, site, 1024, "127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
