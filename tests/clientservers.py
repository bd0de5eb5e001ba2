"""
Small local servers for the client's integration tests: a twisted.web site
(plain and TLS) in the test's reactor, a certificate authority made on the
spot, a real tinyproxy, and a way to run the C{netservices} command line as a
child process (measuring its peak memory).

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IOpenSSLContextFactory, IPullProducer
from twisted.internet.protocol import DatagramProtocol, Factory, ProcessProtocol, Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest
from twisted.web import resource, server
from zope.interface import implementer

from tests.support import ROOT, canConnect, freePort, waitUntil

#: The repeating block of the /big resource.
BLOCK = random.Random(20261126).randbytes(1024 * 1024)


def bigDigest(size: int) -> str:
    """
    The sha256 of C{size} bytes of the /big resource.
    """
    digest = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        digest.update(BLOCK)
    digest.update(BLOCK[:rest])
    return digest.hexdigest()


class Headers(resource.Resource):
    """
    Answers with a JSON description of the request: method, URI, query,
    headers and body.
    """

    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        """
        Describe the request as JSON.
        """
        headers: dict[str, list[str]] = {}
        for name, values in request.requestHeaders.getAllRawHeaders():
            headers[name.decode().lower()] = [v.decode("latin-1") for v in values]
        body = request.content.read() if request.content else b""
        description = {
            "method": request.method.decode(),
            "uri": request.uri.decode(),
            "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}
            if request.method == b"GET"
            else {},
            "headers": headers,
            "body": body.decode("latin-1"),
            "secure": request.isSecure(),
        }
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(description).encode()


class Trickle(resource.Resource):
    """
    Promises 100 bytes and sends one every 0.2 s.
    """

    isLeaf = True

    def __init__(self, reactor: Any, calls: set[Any]) -> None:
        resource.Resource.__init__(self)
        self._reactor = reactor
        self._calls = calls

    def render_GET(self, request: server.Request) -> int:
        """
        Start trickling.
        """
        request.setHeader(b"content-length", b"100")
        state: dict[str, Any] = {"sent": 0, "call": None}

        def tick() -> None:
            self._calls.discard(state["call"])
            request.write(b"x")
            state["sent"] += 1
            if state["sent"] < 100:
                state["call"] = self._reactor.callLater(0.2, tick)
                self._calls.add(state["call"])
            else:
                request.finish()

        def gone(_: object) -> None:
            call = state["call"]
            if call is not None and call.active():
                call.cancel()
            self._calls.discard(call)

        request.notifyFinish().addErrback(gone)
        tick()
        return server.NOT_DONE_YET


@implementer(IPullProducer)
class _BlockProducer:
    def __init__(self, request: server.Request, size: int) -> None:
        self._request = request
        self._left = size
        self._offset = 0

    def resumeProducing(self) -> None:
        chunk = min(self._left, 256 * 1024)
        if chunk == 0:
            self._request.unregisterProducer()
            self._request.finish()
            return
        start = self._offset % len(BLOCK)
        data = (BLOCK[start:] + BLOCK)[:chunk]
        self._offset += chunk
        self._left -= chunk
        self._request.write(data)

    def stopProducing(self) -> None:
        self._left = 0


class Big(resource.Resource):
    """
    C{/big?size=N}: N bytes of a fixed pseudo-random pattern, streamed.
    """

    isLeaf = True

    def render_GET(self, request: server.Request) -> int:
        """
        Stream the pattern with a pull producer.
        """
        size = int(request.args.get(b"size", [b"1024"])[0])
        request.setHeader(b"content-length", str(size).encode())
        request.setHeader(b"content-type", b"application/octet-stream")
        producer = _BlockProducer(request, size)
        request.registerProducer(producer, False)
        return server.NOT_DONE_YET


@functools.lru_cache(maxsize=1)
def gzipBomb() -> bytes:
    """
    256 MiB of zeros, gzip-compressed (about 1.2 MB), made once.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    return b"".join([compressor.compress(zeros) for _ in range(256)] + [compressor.flush()])


class GzipBomb(resource.Resource):
    """
    C{/gzip-bomb}: L{gzipBomb} with C{Content-Encoding: gzip}, whatever the
    request accepts; remembers each request's C{Accept-Encoding}.
    """

    isLeaf = True

    def __init__(self) -> None:
        resource.Resource.__init__(self)
        self.acceptEncodings: list[list[bytes] | None] = []

    def render_GET(self, request: server.Request) -> bytes:
        """
        Send the bomb.
        """
        self.acceptEncodings.append(request.requestHeaders.getRawHeaders(b"accept-encoding"))
        request.setHeader(b"content-encoding", b"gzip")
        request.setHeader(b"content-type", b"application/octet-stream")
        return gzipBomb()


class Redirect(resource.Resource):
    """
    C{/redirect?to=URL&code=302}: a redirect to URL.
    """

    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        """
        Redirect.
        """
        request.setResponseCode(int(request.args.get(b"code", [b"302"])[0]))
        request.setHeader(b"location", request.args[b"to"][0])
        return b"moved\n"


class Flaky(resource.Resource):
    """
    C{/flaky?fails=N&key=K}: 503 for the first N requests with key K, then
    200 with the number of attempts.
    """

    isLeaf = True

    def __init__(self) -> None:
        resource.Resource.__init__(self)
        self.counts: dict[bytes, int] = {}

    def render_GET(self, request: server.Request) -> bytes:
        """
        Fail or succeed, by count.
        """
        key = request.args.get(b"key", [b""])[0]
        fails = int(request.args.get(b"fails", [b"1"])[0])
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.counts[key] <= fails:
            request.setResponseCode(503)
            return b"busy\n"
        return b"attempts=%d\n" % self.counts[key]


class Status(resource.Resource):
    """
    C{/status/N}: an empty answer with status N.
    """

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        """
        An answer with the status in the path.
        """
        code = int(path)

        class Answer(resource.Resource):
            isLeaf = True

            def render(self, request: server.Request) -> bytes:
                request.setResponseCode(code)
                return b"status %d\n" % code

        return Answer()


class TrackingSite(server.Site):
    """
    A Site that remembers its connections so that a test can close them.
    """

    noisy = False

    def __init__(self, root: resource.Resource, reactor: Any) -> None:
        server.Site.__init__(self, root, reactor=reactor)
        self.connections: set[Any] = set()

    def buildProtocol(self, addr: Any) -> Any:
        """
        Build a connection and remember it until it is lost.
        """
        protocol = server.Site.buildProtocol(self, addr)
        site = self
        original = protocol.connectionLost

        def connectionLost(reason: Failure) -> None:
            site.connections.discard(protocol)
            original(reason)

        protocol.connectionLost = connectionLost
        self.connections.add(protocol)
        return protocol


@dataclass
class WebServer:
    """
    A test site listening on 127.0.0.1.
    """

    port: int
    listening: Any
    site: TrackingSite
    calls: set[Any]

    def url(self, path: str, scheme: str = "http", host: str = "127.0.0.1") -> str:
        """
        The URL of C{path} on this server.
        """
        return f"{scheme}://{host}:{self.port}{path}"

    async def stop(self) -> None:
        """
        Close every connection and stop listening.
        """
        for call in list(self.calls):
            if call.active():
                call.cancel()
        for protocol in list(self.site.connections):
            protocol.transport.abortConnection()
        await self.listening.stopListening()


def startWebServer(reactor: Any, tls: Any = None) -> WebServer:
    """
    Start the test site on a free port of 127.0.0.1 (TLS when C{tls} is a
    Twisted context factory).
    """
    calls: set[Any] = set()
    root = resource.Resource()
    root.putChild(b"headers", Headers())
    root.putChild(b"trickle", Trickle(reactor, calls))
    root.putChild(b"big", Big())
    root.putChild(b"redirect", Redirect())
    root.putChild(b"flaky", Flaky())
    root.putChild(b"status", Status())
    root.putChild(b"gzip-bomb", GzipBomb())
    site = TrackingSite(root, reactor)
    if tls is None:
        listening = reactor.listenTCP(0, site, interface="127.0.0.1")
    else:
        listening = reactor.listenSSL(0, site, tls, interface="127.0.0.1")
    return WebServer(listening.getHost().port, listening, site, calls)


@implementer(IPullProducer)
class _HeaderLines:
    """
    Writes header lines, 64 KiB at a time as the client reads them, until
    C{limit} bytes are sent.
    """

    def __init__(self, protocol: EndlessHead, limit: int) -> None:
        self._protocol = protocol
        self._limit = limit
        self._number = 0

    def resumeProducing(self) -> None:
        protocol = self._protocol
        if protocol.sent >= self._limit:
            protocol.transport.unregisterProducer()  # type: ignore[union-attr]
            protocol.transport.loseConnection()  # type: ignore[union-attr]
            return
        lines = [b"X-Header-%d: never the last\r\n" % (self._number + i) for i in range(2048)]
        self._number += len(lines)
        chunk = b"".join(lines)
        protocol.sent += len(chunk)
        protocol.transport.write(chunk)  # type: ignore[union-attr]

    def stopProducing(self) -> None:
        self._limit = 0


class EndlessHead(Protocol):
    """
    Answers a request with a status line and then header lines that never
    end: up to C{factory.limit} bytes of them, for at most
    C{factory.seconds}, as fast as the client reads.

    @ivar sent: the header bytes sent so far.
    """

    factory: EndlessHeadServer
    sent = 0
    _started = False

    def dataReceived(self, data: bytes) -> None:
        """
        Start answering at the first bytes of the request.
        """
        if self._started:
            return
        self._started = True
        self.factory.connections.append(self)
        transport: Any = self.transport
        self.factory.calls.append(
            self.factory.reactor.callLater(self.factory.seconds, transport.abortConnection)
        )
        transport.write(b"HTTP/1.1 200 OK\r\n")
        transport.registerProducer(_HeaderLines(self, self.factory.limit), False)


class EndlessHeadServer(Factory):
    """
    A server of L{EndlessHead} answers on 127.0.0.1.

    @ivar connections: the connections it answered.
    """

    protocol = EndlessHead
    noisy = False

    def __init__(self, reactor: Any, limit: int, seconds: float) -> None:
        self.reactor = reactor
        self.limit = limit
        self.seconds = seconds
        self.connections: list[EndlessHead] = []
        self.calls: list[Any] = []
        self.listening = reactor.listenTCP(0, self, interface="127.0.0.1")
        self.port = self.listening.getHost().port

    async def stop(self) -> None:
        """
        Stop listening; cancel the time bounds.
        """
        for call in self.calls:
            if call.active():
                call.cancel()
        for connection in self.connections:
            if connection.transport.connected:  # type: ignore[union-attr]
                connection.transport.abortConnection()  # type: ignore[union-attr]
        await self.listening.stopListening()


class UDPEcho(DatagramProtocol):
    """
    Echoes every datagram (for the UDP client tests).
    """

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """
        Send the datagram back.
        """
        self.transport.write(datagram, addr)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Certificates:
    """
    A certificate authority and a server certificate it signed, as files.
    """

    ca: Path
    serverPEM: Path

    def serverOptions(self) -> Any:
        """
        A TLS context factory for a server with this certificate (built
        from the file, so no deprecated pyOpenSSL key objects are passed).
        """
        return _ServerContext(self.serverPEM)


@implementer(IOpenSSLContextFactory)
class _ServerContext:
    """
    A server-side TLS context factory loaded from one PEM file.
    """

    def __init__(self, pem: Path) -> None:
        from OpenSSL import SSL

        self._context = SSL.Context(SSL.TLS_SERVER_METHOD)
        self._context.use_certificate_chain_file(str(pem))
        self._context.use_privatekey_file(str(pem))

    def getContext(self) -> Any:
        return self._context


def makeCertificates(directory: Path, names: tuple[str, ...] = ("localhost",),
                     addresses: tuple[str, ...] = ("127.0.0.1",)) -> Certificates:
    """
    Make a CA and a server certificate for C{names} and C{addresses}.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netservices test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName)
        .issuer_name(caName)
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(caKey, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alternatives += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(caName)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(caKey, hashes.SHA256())
    )
    caPath = directory / "ca.pem"
    caPath.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    serverPath = directory / "server.pem"
    serverPath.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificates(caPath, serverPath)


def requireTinyproxy() -> None:
    """
    Skip unless tinyproxy is installed.
    """
    if shutil.which("tinyproxy") is None:
        raise SkipTest("tinyproxy is not installed: run tests/system-deps.sh")


class TinyProxy:
    """
    A real tinyproxy on a free port of 127.0.0.1, with its own config file
    (Allow 127.0.0.1; CONNECT allowed to C{connectPorts} only).
    """

    def __init__(self, connectPorts: tuple[int, ...] = ()) -> None:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        if not os.path.exists(binary):
            raise FileNotFoundError("tinyproxy is not installed (tests/system-deps.sh installs it)")
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-tinyproxy-"))
        self.port = freePort()
        self.logPath = self.directory / "tinyproxy.log"
        lines = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 20",
            "Allow 127.0.0.1",
            f'LogFile "{self.logPath}"',
            "LogLevel Connect",
        ]
        lines += [f"ConnectPort {p}" for p in connectPorts]
        config = self.directory / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        self._output = open(self.directory / "output", "wb")
        self.process = subprocess.Popen(
            [binary, "-d", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        waitUntil(lambda: self._ready(), 10, "tinyproxy to listen")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"tinyproxy exited: {self.log()}")
        return canConnect("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        """
        The proxy's URL.
        """
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """
        What tinyproxy has logged so far.
        """
        text = ""
        for path in (self.logPath, self.directory / "output"):
            try:
                text += path.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self) -> None:
        """
        Stop tinyproxy and remove its files.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def cliCommand() -> list[str]:
    """
    The C{netservices} console script next to the test interpreter, or the
    module run by that interpreter.
    """
    script = Path(sys.executable).parent / "netservices"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from services.cli import main; main()"]


def cliEnvironment(extra: dict[str, str] | None = None, keepProxies: bool = False) -> dict[str, str]:
    """
    The environment for a CLI run: ours, without proxy variables (unless
    C{keepProxies}), plus C{extra}.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if keepProxies or not k.lower().endswith("_proxy")
    }
    env.pop("REQUEST_METHOD", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


#: Runs a command, then prints its exit status and peak RSS (KiB) to stderr.
_MEASURE = r"""
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write("\nMEASURED %d %d\n" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
"""


class _Collect(ProcessProtocol):
    def __init__(self, stdin: bytes | None) -> None:
        self._stdin = stdin
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.done: defer.Deferred[tuple[bytes, bytes, int]] = defer.Deferred()

    def connectionMade(self) -> None:
        if self._stdin is not None:
            self.transport.write(self._stdin)  # type: ignore[union-attr]
        self.transport.closeStdin()  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: Failure) -> None:
        code = reason.value.exitCode
        if code is None:
            code = -(reason.value.signal or 1)
        self.done.callback((b"".join(self.out), b"".join(self.err), code))


def runCLI(
    reactor: Any,
    args: list[str],
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    measure: bool = False,
) -> defer.Deferred[tuple[bytes, bytes, int]]:
    """
    Run C{netservices ARGS} as a child of the reactor; fires with (stdout,
    stderr, exit status).  With C{measure}, stderr ends with
    C{MEASURED <status> <peak RSS in KiB>} (see L{measured}).
    """
    command = cliCommand() + args
    if measure:
        command = [sys.executable, "-c", _MEASURE] + command
    protocol = _Collect(stdin)
    reactor.spawnProcess(
        protocol, command[0], command, env=env if env is not None else cliEnvironment(), path=str(ROOT)
    )
    return protocol.done


def measured(stderr: bytes) -> tuple[int, int, bytes]:
    """
    Split a measured run's stderr into (exit status, peak RSS in KiB, the
    command's own stderr).
    """
    text, _, last = stderr.rstrip().rpartition(b"\nMEASURED ")
    if not last:
        text, last = b"", stderr.strip().split(b"MEASURED ", 1)[1]
    status, rss = last.split()
    return int(status), int(rss), text
