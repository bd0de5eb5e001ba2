"""
The client library's public face: what L{services.client} exports, and what
its modules may import.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
from pathlib import Path

from OpenSSL import SSL
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

import services.client
from services.client import TLSPolicy
from services.client._policy import Delivery, Outgoing, TransferPolicy
from tests.clientservers import makeCertificates
from tests.support import temporaryDirectory

#: The packages the client library must not import: the daemon side, the
#: command line, and the other libraries.
_FORBIDDEN = ("config", "daemon", "cli", "echo", "discovery", "web")


def _importedModules(path: Path) -> set[str]:
    """
    Every module C{path} imports, at any level (function-level imports
    included).
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


class PublicAPITests(SynchronousTestCase):
    """
    L{services.client} exports exactly the names of its C{__all__}.
    """

    def test_allIsHonest(self) -> None:
        """
        Every name in C{__all__} is there, and every public name the package
        holds (its private modules aside) is in C{__all__}.
        """
        exported = set(services.client.__all__)
        self.assertEqual(len(exported), len(services.client.__all__))
        for name in exported:
            self.assertTrue(hasattr(services.client, name), name)
        public = {
            name
            for name, value in vars(services.client).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
        }
        self.assertEqual(public, exported)

    def test_documented(self) -> None:
        """
        Each exported class and function has its own docstring.
        """
        for name in services.client.__all__:
            value = getattr(services.client, name)
            if callable(value):
                self.assertTrue((value.__doc__ or "").strip(), name)


class DependencyTests(SynchronousTestCase):
    """
    The client library stands on C{net/}, C{_twisted/}, C{logs} and
    C{stats} only.
    """

    def test_importsNothingAbove(self) -> None:
        """
        No module of C{services/client/} imports the configuration, the
        daemon, the command line, or another library package.
        """
        root = Path(services.client.__file__).parent
        wrong = []
        for path in sorted(root.glob("*.py")):
            for module in _importedModules(path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] in _FORBIDDEN:
                    wrong.append(f"{path.name}: {module}")
        self.assertEqual(wrong, [])


class PolicyValueTests(SynchronousTestCase):
    """
    The values one call of C{request} is described by.
    """

    def test_frozen(self) -> None:
        """
        L{Outgoing}, L{TransferPolicy} and L{Delivery} are frozen
        dataclasses: a policy can describe any number of calls unchanged.
        """
        for value in (Outgoing("GET", "http://h/"), TransferPolicy(), Delivery()):
            field = dataclasses.fields(value)[0].name
            self.assertRaises(
                dataclasses.FrozenInstanceError, setattr, value, field, None
            )

    def test_defaultsAreRequestDefaults(self) -> None:
        """
        A L{TransferPolicy} left to its defaults is what C{request} does
        without keyword arguments.
        """
        parameters = inspect.signature(services.client.request).parameters
        for field in dataclasses.fields(TransferPolicy):
            self.assertEqual(field.default, parameters[field.name].default, field.name)


class TrustRootTests(SynchronousTestCase):
    """
    L{services.client.TLSPolicy} with a C{cafile} trusts that bundle through
    the trust root of L{services._twisted.tls.platformAndFileTrust}.
    """

    def connect(self, policy: TLSPolicy) -> StringTransport:
        """
        Start a TLS client connection of C{policy} over a memory transport.
        """
        creator = policy.creatorForNetloc(b"localhost", 443)
        factory = TLSMemoryBIOFactory(creator, True, Factory.forProtocol(Protocol))
        transport = StringTransport()
        factory.buildProtocol(None).makeConnection(transport)
        return transport

    def test_bundleLoadedPerConnection(self) -> None:
        """
        Each connection's context loads the bundle: a connection starts its
        handshake while the bundle is there, and fails with OpenSSL's error
        once it is gone.
        """
        certs = makeCertificates(temporaryDirectory(self), addresses=())
        policy = TLSPolicy(cafile=str(certs.ca))
        self.assertTrue(self.connect(policy).value())  # the ClientHello
        certs.ca.unlink()
        self.assertRaises(SSL.Error, self.connect, policy)
