"""
Tests for L{services._twisted}: every private Twisted name netservices
relies on exists, with the expected shape, on the running Twisted; and the
fallbacks for older Twisted releases work.
"""

from __future__ import annotations

import ast
import http.client
import inspect
import shutil
import socket
import tempfile
from pathlib import Path

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

import services
from services import _twisted
from services._twisted import PrivateName, endpoints, privateNames, resolve, transports
from services._twisted import tls as twistedTLS
from services._twisted import web as _web  # noqa: F401 (patched as _twisted.web below)
from services.discovery._wire import REPLY, decode, newNonce, query

from tests.support import Daemon, freePort, isolatedConfig, lackingInternals


def _privateModulesImported() -> set[str]:
    """
    The private Twisted modules and names that modules of C{services}
    outside C{services._twisted} import, as C{"module:name"}.
    """
    root = Path(services.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        if "_twisted" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twisted"):
                for alias in node.names:
                    if "._" in node.module or alias.name.startswith("_"):  # type: ignore[operator]
                        found.add(f"{node.module}:{alias.name}")
    return found


class RegistryTests(SynchronousTestCase):
    """
    The registry of private Twisted names against the running Twisted.
    """

    def test_everyNameHasItsShape(self) -> None:
        """
        Each registered name resolves on the running Twisted and has the
        shape the code relies on (a callable, a list, an int...), unless it
        is registered as new in a later release.
        """
        names = privateNames()
        self.assertGreater(len(names), 40)
        broken = []
        for name in names:
            if name.since > _twisted.TWISTED_VERSION:
                continue
            try:
                value = resolve(name)
            except AttributeError as e:
                broken.append(f"{name.path}: missing ({e})")
                continue
            if not name.shape(value):
                broken.append(f"{name.path}: unexpected {value!r}")
        self.assertEqual(broken, [], f"on Twisted {_twisted.TWISTED_VERSION}")

    def test_describedAndAttributed(self) -> None:
        """
        Each entry says what it is for, which of our modules use it, and
        the releases it is verified on; no name is registered twice; the
        fast paths an entry names exist, and L{_twisted.missing} reads it.
        """
        names = privateNames()
        paths = [name.path for name in names]
        self.assertEqual(len(paths), len(set(paths)))
        fastAreas = {id(name) for name in privateNames(_twisted._FAST_PATH_AREAS)}
        http2Area = {id(name) for name in privateNames(("http2",))}
        for name in names:
            self.assertTrue(set(name.fastPaths) <= set(_twisted.FAST_PATHS), name.path)
            if name.fastPaths:
                # HTTP/2's names are read only when an ssl: web listener asks.
                areas = fastAreas | http2Area if name.fastPaths == ("http2",) else fastAreas
                self.assertIn(id(name), areas, name.path)
            self.assertTrue(name.purpose, name.path)
            self.assertTrue(name.verified, name.path)
            for user in name.users:
                self.assertTrue(user.startswith("services."), name.path)

    def test_importedNamesRegistered(self) -> None:
        """
        Every private Twisted module or name imported anywhere in
        C{services} is in the registry.
        """
        imported = _privateModulesImported()
        registered = {name.path for name in privateNames()}
        prefixes = {path.split(".")[0] for path in registered} | registered
        missing = sorted(
            i for i in imported if i not in registered and not any(p.startswith(i) for p in prefixes)
        )
        self.assertEqual(missing, [])

    def test_networkLayerNamesNone(self) -> None:
        """
        The network layer, the reactor and the log modules name no private
        Twisted module and no registered private attribute: they reach
        Twisted's internals through C{services._twisted} only.
        """
        root = Path(services.__file__).parent
        paths = [*root.glob("net/*.py"), *root.glob("nsepoll/*.py"), root / "logs.py", root / "stats.py"]
        attributes = {name.path.rpartition(".")[2] for name in privateNames() if ":" in name.path}
        attributes = {a for a in attributes if a.startswith("_") and not a.startswith("__")}
        found = []
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twisted"):
                    if "._" in node.module or any(a.name.startswith("_") for a in node.names):  # type: ignore[operator]
                        found.append(f"{path.name}: imports {node.module}")
                elif isinstance(node, ast.Attribute) and node.attr in attributes:
                    found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        self.assertEqual(found, [])

    def test_acceptEventsWording(self) -> None:
        """
        The accept loop's log messages the listeners demote are worded as
        the running Twisted words them.
        """
        source = inspect.getsource(tcp)
        for text in transports.ACCEPT_EVENTS:
            self.assertIn(f'"{text}', source)


class ReusePortFallbackTests(TestCase):
    """
    L{endpoints.listenTCPReusingPort} without Twisted's C{makeBinding}.
    """

    def test_sharesAPortWithoutMakeBinding(self) -> None:
        """
        On a Twisted without C{makeBinding}, two listeners still share one
        TCP port, both with C{SO_REUSEPORT} set before C{bind()}.
        """
        self.patch(endpoints, "HAS_MAKE_BINDING", False)
        factory = Factory.forProtocol(Protocol)
        first = endpoints.listenTCPReusingPort(reactor, 0, factory, 5, "127.0.0.1")
        self.addCleanup(first.stopListening)
        number = first.getHost().port  # type: ignore[attr-defined]
        second = endpoints.listenTCPReusingPort(reactor, number, factory, 5, "127.0.0.1")
        self.addCleanup(second.stopListening)
        self.assertEqual(second.getHost().port, number)  # type: ignore[attr-defined]
        handle = second.socket  # type: ignore[attr-defined]
        self.assertEqual(handle.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 1)

    def test_memoryReactorWithoutMakeBinding(self) -> None:
        """
        A reactor that is not Twisted's POSIX one (a test's memory reactor)
        is asked to listen on the port itself.
        """
        from twisted.internet.testing import MemoryReactor

        self.patch(endpoints, "HAS_MAKE_BINDING", False)
        memory = MemoryReactor()
        factory = Factory.forProtocol(Protocol)
        endpoints.listenTCPReusingPort(memory, 8, factory, 5, "127.0.0.1")
        self.assertEqual(memory.tcpServers, [(8, factory, 5, "127.0.0.1")])


class ALPNFallbackTests(SynchronousTestCase):
    """
    L{twistedTLS.serverTLSFactory} leaves TLS to Twisted where Twisted no
    longer mutates the context per connection.
    """

    def test_stockFactoryWhereFixed(self) -> None:
        """
        From Twisted 26.4 on, the stock L{TLSMemoryBIOFactory} is used;
        before, ours, with the per-connection ALPN step skipped.
        """
        from twisted.internet.ssl import CertificateOptions
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        factory = twistedTLS.serverTLSFactory(CertificateOptions(), Site(Resource()))
        expectOwn = _twisted.TWISTED_VERSION < (26, 4, 0)
        self.assertEqual(twistedTLS.ALPN_PER_CONNECTION, expectOwn)
        self.assertEqual(isinstance(factory, twistedTLS._ALPNSetOnce), expectOwn)


    def test_oursNotTheSitesProtocols(self) -> None:
        """
        On Twisted < 26.4 the context offers the protocols the listener was
        given (none here), not the wrapped Site's (h2 when the h2 package
        is installed): with HTTP/2 off, Twisted's own unlimited HTTP/2 must
        not be negotiated.
        """
        if not twistedTLS.ALPN_PER_CONNECTION:
            raise SkipTest("Twisted 26.4 and newer take ALPN from the options alone")
        from OpenSSL import SSL
        from twisted.internet.ssl import CertificateOptions
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        offered: list[object] = []
        self.patch(SSL.Context, "set_alpn_select_callback",
                   lambda context, callback: offered.append(callback))
        options = CertificateOptions()
        factory = twistedTLS.serverTLSFactory(options, Site(Resource()))
        factory._applyProtocolNegotiation(object())
        self.assertEqual(offered, [])


class FastPathTests(SynchronousTestCase):
    """
    L{_twisted.fastPath}: a fast path is off, with one warning, when the
    running Twisted lacks a private name it needs.
    """

    def setUp(self) -> None:
        self.patch(_twisted, "_decided", {})

    def test_allPresent(self) -> None:
        """
        On the running Twisted every fast path has what it needs.
        """
        available = [
            name for name in _twisted.FAST_PATHS
            if all(p.since <= _twisted.TWISTED_VERSION for p in privateNames() if name in p.fastPaths)
        ]
        for name in available:
            self.assertEqual(_twisted.missing(name), [], name)
        with capturedLogs() as events:
            self.assertTrue(all(map(_twisted.fastPath, available)))
        self.assertEqual(events, [])

    def test_http2OffWithoutItsInternals(self) -> None:
        """
        Without what the limited HTTP/2 connection needs (as on a Twisted
        older than one of its names), an C{ssl:} web listener serves the site
        itself, offering HTTP/1.1 only; with it, the HTTP/2 factory.
        """
        from twisted.application.service import MultiService
        from twisted.internet.testing import MemoryReactorClock

        from services.config import WebConfig
        from services.daemon.values import webSettings
        from services.web import HTTP2Factory, makeWebService

        config = WebConfig(listen=("ssl:0:interface=127.0.0.1",))

        def factories() -> list[object]:
            service = makeWebService(webSettings(config), MultiService(), MemoryReactorClock())
            return [type(listener.factory) for listener in service]

        self.patch(_twisted, "_decided", {"http2": True})
        self.assertEqual(factories(), [HTTP2Factory])
        self.patch(_twisted, "_decided", {"http2": False})
        self.assertNotIn(HTTP2Factory, factories())

    def test_lackingOneWarnsOnce(self) -> None:
        """
        A missing name turns its fast path off for good; the first check
        logs one warning naming the name, the fast path and the stock path
        used instead; other fast paths are unaffected.
        """
        gone = "twisted.web.static:File._goneInANewerTwisted"
        self.patch(
            _twisted.web,
            "PRIVATE_NAMES",
            (*_twisted.web.PRIVATE_NAMES, PrivateName(gone, "absent", ("tests",), fastPaths=("static",))),
        )
        self.assertEqual(_twisted.missing("static"), [gone])
        with capturedLogs() as events:
            self.assertFalse(_twisted.fastPath("static"))
            self.assertFalse(_twisted.fastPath("static"))
            self.assertTrue(_twisted.fastPath("sendfile"))
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"], LogLevel.warn)
        self.assertEqual(events[0]["missing"], gone)
        self.assertEqual(events[0]["fastPath"], "static")
        self.assertEqual(events[0]["stock"], "plain twisted.web.static.File")


class LackingInternalsDaemonTests(SynchronousTestCase):
    """
    A real daemon on a Twisted that lacks what the fast paths need.
    """

    def serveLacking(self, gone: dict[str, str]) -> str:
        """
        Start a daemon with one private name missing for each fast path of
        C{gone}; check that it serves TCP echo, UDP echo, discovery and the
        web service (a page, a whole static file and a range of it), and
        that it warned once per fast path naming the missing name.

        @return: the daemon's log.
        """
        www = Path(tempfile.mkdtemp(prefix="netservices-lacking-"))
        self.addCleanup(shutil.rmtree, www, True)
        content = bytes(range(256)) * 1024
        (www / "file.bin").write_bytes(content)
        echo, web = freePort(), freePort()
        udp, discovery = freePort(socket.SOCK_DGRAM), freePort(socket.SOCK_DGRAM)
        config = isolatedConfig(
            echo=f"listen = tcp:{echo}:interface=127.0.0.1\n",
            udp_echo=f"enabled = yes\nlisten = udp:{udp}:interface=127.0.0.1\n",
            web=f"listen = tcp:{web}:interface=127.0.0.1\nstatic_dir = {www}\n",
            discovery=f"name = lacking\nport = {discovery}\n",
        )
        daemon = Daemon([], config, wrapper=lackingInternals(gone))
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(web, timeout=30)
        daemon.waitForTCP(echo, timeout=30)
        daemon.waitForLog("discovery listening on", timeout=30)

        with socket.create_connection(("127.0.0.1", echo), timeout=30) as client:
            client.sendall(b"ping\n")
            self.assertEqual(client.recv(100), b"ping\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(30)
            client.sendto(b"datagram", ("127.0.0.1", udp))
            self.assertEqual(client.recvfrom(100)[0], b"datagram")
            nonce = newNonce()
            client.sendto(query(nonce), ("127.0.0.1", discovery))
            reply = decode(client.recvfrom(65536)[0])
            self.assertEqual((reply.type, reply.nonce, reply.name), (REPLY, nonce, "lacking"))

        connection = http.client.HTTPConnection("127.0.0.1", web, timeout=30)
        self.addCleanup(connection.close)
        connection.request("GET", "/")
        response = connection.getresponse()
        self.assertEqual((response.status, bool(response.read())), (200, True))
        connection.request("GET", "/static/file.bin")
        response = connection.getresponse()
        self.assertEqual((response.status, response.read()), (200, content))
        connection.request("GET", "/static/file.bin", headers={"Range": "bytes=10-19"})
        response = connection.getresponse()
        self.assertEqual((response.status, response.read()), (206, content[10:20]))

        log = daemon.log()
        for fast, name in gone.items():
            self.assertEqual(log.count(f"lacks {name}: {fast} is off"), 1, log)
        self.assertEqual(log.count(" is off, using "), len(gone), log)
        return log

    def test_reactorAndSendfile(self) -> None:
        """
        Lacking what nsepoll and sendfile need, the daemon runs on Twisted's
        own epoll reactor and sends files through Twisted's producer.
        """
        log = self.serveLacking(
            {
                "nsepoll": "twisted.internet.epollreactor:EPollReactor._goneInANewerTwisted",
                "sendfile": "twisted.internet.abstract:FileDescriptor._goneInANewerTwisted",
            }
        )
        self.assertIn("reactor class: twisted.internet.epollreactor.EPollReactor.", log)

    def test_staticFiles(self) -> None:
        """
        Lacking what the lean static path needs, files are served by plain
        C{static.File}, on nsepoll still.
        """
        log = self.serveLacking({"static": "twisted.web.static:File._goneInANewerTwisted"})
        self.assertIn("reactor class: services.nsepoll._reactor.NetservicesReactor.", log)


class BaseClassHooksTests(SynchronousTestCase):
    """
    The base classes of L{services._twisted.webbase} and
    L{services._twisted.http2} override only registered private hooks.
    """

    def test_overriddenHooksRegistered(self) -> None:
        """
        Every private method a base class defines over its Twisted class
        (other than its own helpers) is a registered private name of that
        class, so the registry test checks that Twisted still calls it.
        """
        from twisted.web._http2 import H2Connection
        from twisted.web.http import HTTPChannel
        from twisted.web.server import Site

        from services._twisted.http2 import H2ConnectionBase
        from services._twisted.webbase import LimitedChannelBase, LoggingSiteBase

        registered = {name.path for name in privateNames()}
        for base, twisted in [
            (LimitedChannelBase, HTTPChannel),
            (LoggingSiteBase, Site),
            (H2ConnectionBase, H2Connection),
        ]:
            for name in vars(base):
                if name.startswith("_") and not name.startswith("__") and hasattr(twisted, name):
                    path = f"{twisted.__module__}:{twisted.__name__}.{name}"
                    self.assertIn(path, registered, base.__name__)
