"""
Tests for L{services._twisted}: every private Twisted name netservices
relies on exists, with the expected shape, on the running Twisted; and the
fallbacks for older Twisted releases work.
"""

from __future__ import annotations

import ast
import inspect
import socket
from pathlib import Path

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

import services
from services import _twisted, listen
from services._twisted import endpoints, privateNames, resolve, transports
from services._twisted import tls as twistedTLS


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
        shape the code relies on (a callable, a list, an int...).
        """
        names = privateNames()
        self.assertGreater(len(names), 40)
        broken = []
        for name in names:
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
        the releases it is verified on; no name is registered twice.
        """
        names = privateNames()
        paths = [name.path for name in names]
        self.assertEqual(len(paths), len(set(paths)))
        for name in names:
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
        self.assertIn("twisted.internet.posixbase:_NO_FILEDESC", imported)
        registered = {name.path for name in privateNames()}
        prefixes = {path.split(".")[0] for path in registered} | registered
        missing = sorted(
            i for i in imported if i not in registered and not any(p.startswith(i) for p in prefixes)
        )
        self.assertEqual(missing, [])

    def test_acceptEventsWording(self) -> None:
        """
        The accept loop's log messages the listeners demote are worded as
        the running Twisted words them.
        """
        self.assertEqual(listen._ACCEPT_EVENTS, transports.ACCEPT_EVENTS)
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
