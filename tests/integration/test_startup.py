# -*- test-case-name: tests.integration.test_startup -*-
"""
Start-up cost: what C{twistd netservices} and the C{netservices} command
import and do before they are useful, checked in fresh interpreters; and
the client's large reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from services.client import _agent as agent
from services.config import Config, parseConfig
from services.daemon.tree import listenContext, usesSystemd

from tests.support import ROOT


def importedBy(code: str) -> set[str]:
    """
    The modules a fresh interpreter has imported after running C{code}.
    """
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=str(ROOT),
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


#: Building the echo service of a configuration file, as twistd does.
ECHO_ONLY = """
from services.daemon.tap import Options, makeService
options = Options()
options.parseOptions(['--no-web', '--no-discovery', '--echo', 'tcp:0:interface=127.0.0.1'])
makeService(options)
"""


class DaemonImportTests(SynchronousTestCase):
    """
    C{twistd netservices} imports what its enabled services need, not more.
    """

    def test_echoOnly(self) -> None:
        """
        An echo-only daemon imports neither the web, metrics nor worker
        modules, nor C{twisted.application.internet} (whose client service
        brings a state machine library), nor Twisted's endpoint parser
        plugins (which looking for systemd's sockets loads), nor the PROXY
        header and C{SOCK_SEQPACKET} layers its listeners do not use.
        """
        modules = importedBy(ECHO_ONLY)
        self.assertIn("services.echo._tcp", modules)
        unwanted = {
            "twisted.application.internet",
            "automat",
            "twisted.web.server",
            "prometheus_client",
            "services.web._service",
            "services.daemon.workers",
            "services.daemon.workerprocess",
            "services.daemon.workerstats",
            "services.daemon.workerlog",
            "services.daemon.sharedlisteners",
            "twisted.plugins.twisted_core",
            "services.net.proxyheader",
            "twisted.protocols.haproxy",
            "services.net.seqpacket",
        }
        self.assertEqual(unwanted & modules, set())

    def test_valueClassesCompileNothing(self) -> None:
        """
        The configuration sections and the settings an echo-only daemon
        builds are made by L{services.dataclass}, which compiles no method
        at import.
        """
        from services import config, stats
        from services.echo import EchoSettings
        from services.net.endpoints import ListenContext
        from services.net.sockets import SocketOptions

        made = (EchoSettings, ListenContext, SocketOptions)
        for cls in (*config.SECTIONS.values(), config.Config, *made):
            self.assertIn("__valueFields__", cls.__dict__, cls)
        self.assertIn("__counterFields__", stats.ConnectionStats.__dict__)

    def test_systemdOnlyWhenListening(self) -> None:
        """
        systemd's sockets are looked for only when an enabled service
        listens on one (under any C{haproxy:} layer).
        """
        self.assertFalse(usesSystemd(Config()))
        config = parseConfig("[echo]\nlisten = haproxy:systemd:index=0\n")
        self.assertTrue(usesSystemd(config))
        disabled = parseConfig("[echo]\nenabled = no\nlisten = systemd:index=0\n")
        self.assertFalse(usesSystemd(disabled))
        self.assertEqual(listenContext(Config(), None, {}).systemd, ())


class CommandImportTests(SynchronousTestCase):
    """
    The C{netservices} command imports what the chosen command needs.
    """

    def test_fetchWithoutDaemonModules(self) -> None:
        """
        Building the command line parser and parsing a C{fetch} command
        imports neither the configuration, listener, TLS server nor web
        server modules (C{--max-size} and C{discover}'s options import the
        configuration's parsers when they are given).
        """
        modules = importedBy(
            "from services.cli import buildParser\n"
            "buildParser().parse_args(['fetch', '-o', 'x', 'http://127.0.0.1/'])\n"
        )
        self.assertIn("services.cli.fetch", modules)
        unwanted = {
            "services.config",
            "services.net.endpoints",
            "services.net.listener",
            "services.net.tls",
            "twisted.web.server",
        }
        self.assertEqual(unwanted & modules, set())

    def test_lazyParsersStillParse(self) -> None:
        """
        The options whose parsers are imported late still parse and report
        bad values as before.
        """
        from services.cli import buildParser

        parser = buildParser()
        args = parser.parse_args(["fetch", "--max-size", "1K", "http://127.0.0.1/"])
        self.assertEqual(args.max_size, 1024)
        args = parser.parse_args(["discover", "--timeout", "0.5", "--broadcast", "127.255.255.255"])
        self.assertEqual((args.timeout, args.broadcast), (0.5, "127.255.255.255"))
        result = subprocess.run(
            [sys.executable, "-c", "from services.cli import main; main()", "discover", "--timeout", "x"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(ROOT),
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("argument --timeout: expected a number of seconds", result.stderr)


class _Connected:
    """
    An endpoint that connects at once over a L{StringTransport}.
    """

    def __init__(self, bufferSize: int | None) -> None:
        self.bufferSize = bufferSize

    def connect(self, factory: Any) -> Any:
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        if self.bufferSize is not None:
            transport.bufferSize = self.bufferSize  # type: ignore[attr-defined]
        protocol.makeConnection(transport)
        return succeed(protocol)


class LargeReadsTests(SynchronousTestCase):
    """
    The client's connections read up to L{agent.READ_SIZE} bytes at once.
    """

    def connect(self, bufferSize: int | None) -> Protocol:
        connected: list[Protocol] = []
        agent._LargeReads(_Connected(bufferSize)).connect(  # type: ignore[arg-type]
            Factory.forProtocol(Protocol)
        ).addCallback(connected.append)
        return connected[0]

    def test_raised(self) -> None:
        """
        A TCP transport's 64 KiB read size is raised to L{agent.READ_SIZE}.
        """
        protocol = self.connect(65536)
        self.assertEqual(protocol.transport.bufferSize, agent.READ_SIZE)  # type: ignore[union-attr]

    def test_largerKept(self) -> None:
        """
        A larger read size is kept, and a transport without one is left
        without one.
        """
        protocol = self.connect(agent.READ_SIZE * 2)
        self.assertEqual(protocol.transport.bufferSize, agent.READ_SIZE * 2)  # type: ignore[union-attr]
        protocol = self.connect(None)
        self.assertFalse(hasattr(protocol.transport, "bufferSize"))

    def test_agentEndpoints(self) -> None:
        """
        The agent's endpoints for http and https origins read large.
        """
        from twisted.internet.testing import MemoryReactorClock
        from twisted.web.client import URI

        factory = agent._EndpointFactory(
            MemoryReactorClock(), agent.ProxySettings(), agent.TLSPolicy(), 30.0, None
        )
        endpoint = factory.endpointForURI(URI.fromBytes(b"http://127.0.0.1:8080/"))
        self.assertIsInstance(endpoint, agent.HeadLimitEndpoint)
        self.assertIsInstance(endpoint._wrapped, agent._LargeReads)
