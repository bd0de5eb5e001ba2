"""
Tests of L{services.client._resolve} and C{netservices resolve}.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer

from services.cli import exits
from services.cli.resolve import formatResolution
from services.client._resolve import (
    Resolution,
    UnknownService,
    canonicalNames,
    resolve,
    resolveAddresses,
    servicePort,
)
from tests.clientservers import cliEnvironment, runCLI


@implementer(IHostnameResolver)
class FakeResolver:
    """
    Resolves names from a table, at once.
    """

    def __init__(self, table: dict[str, list[Any]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int, str]] = []

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0,
                        addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:
        """
        Report the table's addresses for C{hostName} at once.
        """
        self.asked.append((hostName, portNumber, transportSemantics))
        receiver.resolutionBegan(None)
        for address in self.table.get(hostName, []):
            receiver.addressResolved(address)
        receiver.resolutionComplete()
        return None


class FakeReactor:
    """
    Just a name resolver.
    """

    def __init__(self, table: dict[str, list[Any]]) -> None:
        self.nameResolver = FakeResolver(table)


class AddressTests(SynchronousTestCase):
    """
    L{resolveAddresses} asks the reactor's name resolver.
    """

    def test_addresses(self) -> None:
        """
        Every address the resolver gives is returned.
        """
        fake = FakeReactor({"db": [IPv4Address("TCP", "10.0.0.1", 5), IPv6Address("TCP", "fd00::1", 5)]})
        addresses = self.successResultOf(resolveAddresses(fake, "db", 5, "UDP"))
        self.assertEqual([a.host for a in addresses], ["10.0.0.1", "fd00::1"])
        self.assertEqual(fake.nameResolver.asked, [("db", 5, "UDP")])

    def test_none(self) -> None:
        """
        No address is a L{DNSLookupError}.
        """
        self.failureResultOf(resolveAddresses(FakeReactor({}), "nowhere"), DNSLookupError)


class BlockingLookupTests(SynchronousTestCase):
    """
    The C library calls behind canonical names and service ports.
    """

    def test_canonical(self) -> None:
        """
        gethostbyname_ex gives the canonical name and aliases.
        """
        names = canonicalNames("www", gethostbyname_ex=lambda n: ("web.example", ["www"], ["10.0.0.2"]))
        self.assertEqual(names, ("web.example", ("www",)))

    def test_canonicalIPv6Only(self) -> None:
        """
        A name gethostbyname_ex does not know (IPv6 only) takes its
        canonical name from getaddrinfo.
        """

        def unknown(name: str) -> Any:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")

        def getaddrinfo(*args: Any) -> Any:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "v6.example", ("fd00::1", 0, 0, 0))]

        self.assertEqual(canonicalNames("v6", unknown, getaddrinfo), ("v6.example", ()))

    def test_service(self) -> None:
        """
        A service name is looked up for its protocol; a number is itself.
        """
        self.assertEqual(servicePort("http", "tcp", lambda s, p: {("http", "tcp"): 80}[(s, p)]), 80)
        self.assertEqual(servicePort("8080"), 8080)

    def test_unknownService(self) -> None:
        """
        An unknown service is L{UnknownService}, naming it.
        """

        def getservbyname(service: str, proto: str) -> int:
            raise OSError("service/proto not found")

        error = self.assertRaises(UnknownService, servicePort, "nosuch", "udp", getservbyname)
        self.assertIn("'nosuch'", str(error))
        self.assertRaises(UnknownService, servicePort, "70000")

    def test_format(self) -> None:
        """
        The output lists every field, "(none)" for empty ones.
        """
        text = formatResolution(
            Resolution("localhost", "localhost", (), ("127.0.0.1",), ("::1",), 80), "http", "tcp"
        )
        self.assertEqual(
            text,
            "name:      localhost\ncanonical: localhost\naliases:   (none)\n"
            "IPv4:      127.0.0.1\nIPv6:      ::1\nservice:   http/tcp port 80\n",
        )


def requireServices() -> None:
    """
    Skip unless the services database exists.
    """
    if not os.path.exists("/etc/services"):
        raise SkipTest("no /etc/services (Debian's netbase) on this machine")


class ResolveTests(TestCase):
    """
    Real look-ups of localhost through the running reactor.
    """

    timeout = 30

    async def test_localhost(self) -> None:
        """
        localhost resolves to a loopback address through the reactor.
        """
        result = await resolve(reactor, "localhost")
        self.assertEqual(result.name, "localhost")
        self.assertTrue(
            "127.0.0.1" in result.ipv4 or "::1" in result.ipv6, f"{result.ipv4} {result.ipv6}"
        )

    async def test_command(self) -> None:
        """
        C{netservices resolve localhost --service http} prints the names,
        addresses and port 80.
        """
        requireServices()
        out, err, code = await runCLI(
            reactor, ["resolve", "localhost", "--service", "http", "--proto", "tcp"], env=cliEnvironment()
        )
        text = out.decode()
        self.assertEqual(code, 0, err)
        self.assertIn("name:      localhost\n", text)
        self.assertIn("canonical: ", text)
        self.assertRegex(text, r"IPv4: .*127\.0\.0\.1|IPv6: .*::1")
        self.assertIn("service:   http/tcp port 80\n", text)

    async def test_unknownService(self) -> None:
        """
        An unknown service exits 1 with one line.
        """
        _out, err, code = await runCLI(reactor, ["resolve", "localhost", "--service", "no-such-service"], env=cliEnvironment())
        self.assertEqual(code, exits.FAILURE)
        self.assertEqual(err, b"netservices resolve: unknown service 'no-such-service' for protocol 'tcp'\n")
