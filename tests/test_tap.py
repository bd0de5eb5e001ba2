"""
Tests for L{services.tap}: options, flags over the file, and the service
tree built on a memory reactor.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from twisted.application.service import IServiceCollection
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services import logs
from services.config import Config
from services.echo import EchoFactory
from services.listen import ListenError, listeningPorts
from services.tap import NetservicesService, Options, buildService, makeService


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Flags are parsed and applied over the configuration file.
    """

    def writeConfig(self, text: str) -> str:
        path = Path(self.mktemp())
        path.write_text(text)
        return str(path)

    def test_defaults(self) -> None:
        """
        Without flags, the built-in defaults apply.
        """
        self.assertEqual(parse().settings, Config())

    def test_configFile(self) -> None:
        """
        --config loads the file.
        """
        path = self.writeConfig("[echo]\nidle_timeout = 7\n")
        settings = parse("--config", path).settings
        self.assertEqual(settings.echo.idle_timeout, 7)
        self.assertEqual(settings.source, path)

    def test_echoFlagsReplaceListen(self) -> None:
        """
        Repeated --echo flags replace [echo] listen, in order, and enable
        echo even if the file disabled it.
        """
        path = self.writeConfig("[echo]\nenabled = no\nlisten = tcp:1\n")
        settings = parse("-c", path, "--echo", "tcp:2", "--echo", "unix:/tmp/s").settings
        self.assertEqual(settings.echo.listen, ("tcp:2", "unix:/tmp/s"))
        self.assertTrue(settings.echo.enabled)

    def test_noEcho(self) -> None:
        """
        --no-echo disables echo.
        """
        self.assertFalse(parse("--no-echo").settings.echo.enabled)

    def test_contradiction(self) -> None:
        """
        --echo with --no-echo is a usage error.
        """
        self.assertRaises(usage.UsageError, parse, "--echo", "tcp:1", "--no-echo")

    def test_logLevel(self) -> None:
        """
        --log-level overrides [log] level.
        """
        self.assertEqual(parse("--log-level", "DEBUG").settings.log.level, "debug")

    def test_badFlagValueExitsWithOneLine(self) -> None:
        """
        A bad flag value ends the process with one line naming the flag,
        the value and what is allowed.
        """
        with self.assertRaises(SystemExit) as cm:
            parse("--echo", "tcp:nope")
        message = str(cm.exception.code)
        self.assertTrue(message.startswith("netservices: error: command line: --echo 'tcp:nope': "))
        self.assertIn("not a server endpoint", message)
        self.assertNotIn("\n", message)
        with self.assertRaises(SystemExit) as cm:
            parse("--log-level", "loud")
        self.assertIn("--log-level 'loud': expected one of debug", str(cm.exception.code))

    def test_badFileExitsWithOneLine(self) -> None:
        """
        A bad file ends the process with one line naming file, section,
        key and value.
        """
        path = self.writeConfig("[echo]\nbacklog = many\n")
        with self.assertRaises(SystemExit) as cm:
            parse("-c", path)
        self.assertEqual(
            cm.exception.code,
            f"netservices: error: {path}: [echo] backlog = 'many': "
            "expected a whole number from 1 to 65535",
        )

    def test_version(self) -> None:
        """
        --version prints the version and exits 0.
        """
        with self.assertRaises(SystemExit) as cm:
            parse("--version")
        self.assertEqual(cm.exception.code, 0)

    def test_helpDocumentsEveryFlag(self) -> None:
        """
        --help text names every flag with a description.
        """
        text = str(Options())
        for flag in ("--config", "--echo", "--no-echo", "--log-level", "--version"):
            self.assertIn(flag, text)


class ServiceTreeTests(SynchronousTestCase):
    """
    The tree has one child per enabled service.
    """

    def test_makeService(self) -> None:
        """
        The tree is the root service collection with an echo child.
        """
        root = buildService(parse().settings, MemoryReactorClock())
        self.assertTrue(IServiceCollection.providedBy(root))
        self.assertIsInstance(root, NetservicesService)
        self.assertIsNotNone(root.getServiceNamed("echo"))

    def test_disabledServiceAbsent(self) -> None:
        """
        A disabled service is not in the tree and has no stats.
        """
        root = buildService(parse("--no-echo").settings, MemoryReactorClock())
        self.assertRaises(KeyError, root.getServiceNamed, "echo")
        self.assertNotIn("echo", root.stats)

    def test_startListensAndSetsLogLevel(self) -> None:
        """
        Starting the tree listens on the configured endpoints and applies
        the log level; the echo stats are shared with the root.
        """
        self.addCleanup(logs.setLevel, logs.getLevel())
        reactor = MemoryReactorClock()
        root = buildService(parse("--echo", "tcp:7007", "--log-level", "warn").settings, reactor)
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        self.assertEqual(reactor.tcpServers[0][0], 7007)
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory, EchoFactory)
        self.assertIs(factory.stats, root.stats["echo"])
        self.assertEqual(logs.getLevel().name, "warn")

    def test_listenFailureRaises(self) -> None:
        """
        When a listener cannot start, starting the tree raises
        L{ListenError} naming the service and the endpoint (the entry point
        turns it into one line), after closing the listeners bound before.
        """

        class BusyReactor(MemoryReactorClock):
            def listenTCP(self, port, factory, backlog=50, interface=""):  # type: ignore[no-untyped-def]
                if port == 7008:
                    raise CannotListenError(interface, port, OSError(98, "Address already in use"))
                return MemoryReactorClock.listenTCP(self, port, factory, backlog, interface)

        self.addCleanup(logs.setLevel, logs.getLevel())
        reactor = BusyReactor()
        settings = parse("--echo", "tcp:7007", "--echo", "tcp:7008:interface=127.0.0.1").settings
        root = buildService(settings, reactor)
        with self.assertRaises(ListenError) as cm:
            root.privilegedStartService()
        self.assertEqual(
            str(cm.exception),
            "echo: cannot listen on tcp:7008:interface=127.0.0.1: address already in use",
        )
        [bound] = reactor.tcpServers
        self.assertEqual(bound[0], 7007)
        self.assertFalse(reactor.getDelayedCalls())


class MakeServiceTests(TestCase):
    """
    The twistd entry point binds every listener before it returns, that is
    before twistd writes its pidfile and daemonizes.
    """

    def test_boundBeforeTwistdStarts(self) -> None:
        """
        The tree makeService returns is listening already; twistd's own
        privilegedStartService then binds nothing more.
        """
        root = makeService(
            parse("--echo", "tcp:0:interface=127.0.0.1", "--no-web", "--no-discovery")
        )
        self.addCleanup(root.stopService)
        [port] = listeningPorts(root)
        root.privilegedStartService()
        self.assertEqual(listeningPorts(root), [port])

    def test_listenFailureExitsWithOneLine(self) -> None:
        """
        When a listener cannot start, makeService ends the process with one
        line naming the service and the endpoint, and a UNIX listener bound
        before it is gone with its socket file and lock.
        """
        self.addCleanup(logs.setLevel, logs.getLevel())
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        endpoint = f"tcp:{busy.getsockname()[1]}:interface=127.0.0.1"
        directory = Path(self.mktemp())
        directory.mkdir()
        path = os.path.relpath(directory / "e.sock")
        options = parse("--echo", f"unix:{path}", "--echo", endpoint, "--no-web", "--no-discovery")
        with self.assertRaises(SystemExit) as cm:
            makeService(options)
        self.assertEqual(
            cm.exception.code,
            f"netservices: error: echo: cannot listen on {endpoint}: address already in use",
        )
        self.assertEqual(os.listdir(directory), [])
