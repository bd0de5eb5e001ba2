"""
Tests for L{services.daemon.tap} (options, flags over the file, the twistd
entry point) and L{services.daemon.tree} (the service tree built on a memory
reactor).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from twisted.application.service import IServiceCollection
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from services import logs
from services.config import Config
from services.daemon.tap import Options, makeService
from services.daemon.tree import NetservicesService, buildService
from services.echo._tcp import EchoFactory
from services.net.listener import ListenError, listeningPorts

from tests.support import ROOT, runTwistd


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
        --echo with --no-echo ends the process with one line.
        """
        with self.assertRaises(SystemExit) as cm:
            parse("--echo", "tcp:1", "--no-echo")
        self.assertEqual(
            cm.exception.code,
            "netservices: error: --echo and --no-echo contradict each other; "
            "see twistd netservices --help",
        )

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


#: What every option of C{twistd netservices} says about a bad input: the
#: arguments, then the whole message (one line, exit status 1).
ENDPOINT_EXAMPLES = (
    "expected e.g. tcp:8007:interface=127.0.0.1, tcp6:8007:interface=\\:\\:1 "
    "or unix:/run/netservices.sock:mode=660"
)
SEE_HELP = "; see twistd netservices --help"
BAD_COMMAND_LINES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("--config", "/nonexistent/tap.conf"),
        "/nonexistent/tap.conf: cannot read the configuration file: No such file or directory",
    ),
    (("-c",), "-c needs a value" + SEE_HELP),
    (
        ("--echo", "tcp:notaport"),
        "command line: --echo 'tcp:notaport': not a server endpoint (tcp: port 'notaport' is "
        "not a whole number from 0 to 65535); " + ENDPOINT_EXAMPLES,
    ),
    (("--echo",), "--echo needs a value" + SEE_HELP),
    (("--no-echo=yes",), "--no-echo takes no value" + SEE_HELP),
    (("--echo", "tcp:1", "--no-echo"), "--echo and --no-echo contradict each other" + SEE_HELP),
    (
        ("--log-level", "loud"),
        "command line: --log-level 'loud': expected one of debug, info, warn, error, critical",
    ),
    (
        ("--static", "/nonexistent"),
        (
            "command line: --static '/nonexistent': expected the path of an existing directory "
            "(or nothing, for none)"
        ),
    ),
    (
        ("--discovery-port", "0"),
        "command line: --discovery-port '0': expected a whole number from 1 to 65535",
    ),
    (("--workers", "300"), "command line: --workers '300': expected a whole number from 1 to 256"),
    (
        ("--web", "tcp:80:interface=nope"),
        "command line: --web 'tcp:80:interface=nope': not a server endpoint (tcp: interface=nope "
        "is not an IP address); " + ENDPOINT_EXAMPLES,
    ),
    (("--web", "tcp:1", "--no-web"), "--web and --no-web contradict each other" + SEE_HELP),
    (
        ("--no-discovery", "--discovery-port", "9"),
        "--discovery-port and --no-discovery contradict each other" + SEE_HELP,
    ),
    (
        ("--udp-echo", "udp:x"),
        "command line: --udp-echo 'udp:x': port 'x' is not a whole number from 0 to 65535",
    ),
    (
        ("--udp-echo", "7", "--no-udp-echo"),
        "--udp-echo and --no-udp-echo contradict each other" + SEE_HELP,
    ),
    (("--version=2",), "--version takes no value" + SEE_HELP),
    (
        ("--worker", "nonsense"),
        "--worker: not a worker specification from a netservices parent" + SEE_HELP,
    ),
    (("--ehco", "tcp:1"), "unknown option --ehco (did you mean --echo?)" + SEE_HELP),
    (("--bogus",), "unknown option --bogus" + SEE_HELP),
    (
        ("--logfile", "x.log"),
        "--logfile is an option of twistd: put it before 'netservices' "
        "(twistd --logfile ... netservices ...)" + SEE_HELP,
    ),
    (
        ("-l", "x.log"),
        "-l is an option of twistd: put it before 'netservices' (twistd -l ... netservices ...)"
        + SEE_HELP,
    ),
    (
        ("--no-web", "tcp:8080"),
        "unexpected argument 'tcp:8080': netservices takes only options, such as --echo ENDPOINT"
        + SEE_HELP,
    ),
    (
        ("--no",),
        "ambiguous option --no: --no-discard, --no-chargen, --no-daytime, --no-time, --no-qotd, "
        "--no-echo, --no-web, --no-discovery, --no-udp-echo" + SEE_HELP,
    ),
    (
        ("--chargen", "tcp:notaport"),
        "command line: --chargen 'tcp:notaport': not a server endpoint (tcp: port 'notaport' is "
        "not a whole number from 0 to 65535); " + ENDPOINT_EXAMPLES,
    ),
    (("--daytime",), "--daytime needs a value" + SEE_HELP),
    (("--discard", "tcp:1", "--no-discard"), "--discard and --no-discard contradict each other" + SEE_HELP),
    (
        ("--qotd", "tcp:x"),
        "command line: --qotd 'tcp:x': not a server endpoint (tcp: port 'x' is not a whole "
        "number from 0 to 65535); " + ENDPOINT_EXAMPLES,
    ),
    (
        ("--time", "tcp:x"),
        "command line: --time 'tcp:x': not a server endpoint (tcp: port 'x' is not a whole "
        "number from 0 to 65535); " + ENDPOINT_EXAMPLES,
    ),
    (("--no-chargen=1",), "--no-chargen takes no value" + SEE_HELP),
    (("--no-daytime", "--daytime", "tcp:1"), "--daytime and --no-daytime contradict each other" + SEE_HELP),
    (("--no-qotd=1",), "--no-qotd takes no value" + SEE_HELP),
    (("--no-time=1",), "--no-time takes no value" + SEE_HELP),
)


class BadCommandLineTests(SynchronousTestCase):
    """
    Every option of C{twistd netservices} answers a bad input with one line
    that says what to fix, never with the usage text.
    """

    def test_table(self) -> None:
        """
        Each bad command line of L{BAD_COMMAND_LINES} ends the process with
        exactly its message.
        """
        for args, message in BAD_COMMAND_LINES:
            with self.assertRaises(SystemExit, msg=args) as cm:
                parse(*args)
            self.assertEqual(cm.exception.code, f"netservices: error: {message}", args)

    def test_everyOptionCovered(self) -> None:
        """
        The table has a bad input for every option --help lists, and for
        the hidden --worker.
        """
        options = Options()
        named = {
            arg.partition("=")[0].lstrip("-")
            for args, _ in BAD_COMMAND_LINES
            for arg in args
            if arg.startswith("-")
        }
        named |= {options.synonyms[name] for name in set(named) if name in options.synonyms}
        everything = {name.rstrip("=") for name in options.longOpt} - {"help"}
        self.assertEqual(everything - named, set())

    def test_helpHidesInternalOptions(self) -> None:
        """
        --help does not list --worker, which only a netservices parent sets.
        """
        text = str(Options())
        self.assertNotIn("--worker=", text)
        self.assertIn("--workers=", text)


class UnknownFlagTests(SynchronousTestCase):
    """
    An unknown flag given to a real twistd gets one line, not the usage.
    """

    def test_oneLine(self) -> None:
        """
        C{twistd -n netservices --ehco} prints one line naming the flag,
        suggesting C{--echo} and pointing at --help, and exits 1.
        """
        result = runTwistd(["--ehco", "tcp:1"])
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr),
            (1, "", "netservices: error: unknown option --ehco (did you mean --echo?)" + SEE_HELP + "\n"),
        )


class ReactorInstallTests(SynchronousTestCase):
    """
    The configured reactor is installed by L{makeService}, the twistd entry
    point, and not while the options are parsed: a program that parses
    them for itself keeps its own choice.
    """

    def installed(self, *argv: str) -> list[str]:
        """
        In a fresh interpreter, parse C{argv} (echo on a free loopback port
        only), say whether a reactor was imported, call L{makeService} and
        name the reactor it left installed.
        """
        code = (
            "import sys\n"
            "from services.daemon.tap import Options, makeService\n"
            "options = Options()\n"
            f"options.parseOptions({list(argv)!r} + ['--no-web', '--no-discovery', "
            "'--echo', 'tcp:0:interface=127.0.0.1'])\n"
            "print('twisted.internet.reactor' in sys.modules)\n"
            "makeService(options)\n"
            "from twisted.internet import reactor\n"
            "print(type(reactor).__name__)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
            check=True, cwd=str(ROOT),
        )
        return result.stdout.split()

    def test_nsepollByDefault(self) -> None:
        """
        Without C{[netservices] reactor}, makeService installs nsepoll.
        """
        self.assertEqual(self.installed(), ["False", "NetservicesReactor"])

    def test_configuredTwisted(self) -> None:
        """
        C{[netservices] reactor = twisted} leaves the choice to Twisted.
        """
        path = Path(self.mktemp()).absolute()
        path.write_text("[netservices]\nreactor = twisted\n")
        self.assertEqual(self.installed("--config", str(path)), ["False", "EPollReactor"])


class UnprintableOptionTests(SynchronousTestCase):
    """
    An option with a character that cannot be printed still gets a one-line
    error.
    """

    def test_newlineInOption(self) -> None:
        """
        C{-\\n} (found by the property test of any command line) is named
        escaped, on one line.
        """
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["-\n"])
        message = str(caught.exception.code)
        self.assertNotIn("\n", message)
        self.assertIn("unknown option -\\n", message)
