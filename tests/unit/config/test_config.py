"""
Tests for L{services.config}: tap.conf parsing, defaults and every error.
"""

from __future__ import annotations

import configparser
import dataclasses
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    SECTIONS,
    Config,
    ConfigError,
    EchoConfig,
    describe,
    formatConfig,
    loadConfig,
    parseBool,
    parseConfig,
    parseEndpoints,
    parseSeconds,
    parseSize,
    parseText,
    replaceSection,
)

from tests.support import ROOT

TAP_CONF = ROOT / "tap.conf"


class DefaultsTests(SynchronousTestCase):
    """
    The built-in defaults and the repository's tap.conf are the same thing.
    """

    def test_repositoryTapConfEqualsDefaults(self) -> None:
        """
        Loading the repository's tap.conf gives exactly the built-in
        defaults.
        """
        loaded = loadConfig(TAP_CONF)
        self.assertEqual(dataclasses.replace(loaded, source="<defaults>"), Config())

    def test_repositoryTapConfListsEveryKey(self) -> None:
        """
        tap.conf spells out every section and every key, so it documents
        them all (a missing key would still load as its default).
        """
        parser = configparser.RawConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(TAP_CONF)
        self.assertEqual(set(parser.sections()), set(SECTIONS))
        for section, cls in SECTIONS.items():
            keys = {f.name for f in dataclasses.fields(cls)}
            self.assertEqual(set(parser.options(section)), keys, section)

    def test_everyKeyDocumented(self) -> None:
        """
        Every key has a description and a phrase saying what is allowed.
        """
        for section in SECTIONS:
            for key, allowed, doc, _default in describe(section):
                self.assertTrue(allowed, f"[{section}] {key}")
                self.assertTrue(doc, f"[{section}] {key}")

    def test_defaultsListenOnLoopbackOnly(self) -> None:
        """
        Every default endpoint binds to a loopback interface.
        """
        for description in Config().echo.listen:
            self.assertIn("interface=127.0.0.1", description)

    def test_emptyFileIsDefaults(self) -> None:
        """
        An empty configuration is the defaults, with its source recorded.
        """
        config = parseConfig("", "empty.conf")
        self.assertEqual(config.source, "empty.conf")
        self.assertEqual(config.echo, EchoConfig())


class ParseTests(SynchronousTestCase):
    """
    Values are parsed into their types.
    """

    def test_values(self) -> None:
        """
        Each key of [echo] is parsed into its type.
        """
        config = parseConfig(
            "[echo]\n"
            "enabled = off\n"
            "listen = tcp:7\n    unix:/tmp/x.sock:mode=600\n"
            "idle_timeout = 2.5\n"
            "max_connections = 3\n"
            "backlog = 10\n"
            "sndbuf = 64K\n"
            "rcvbuf = 1MiB\n"
            "reuseport = yes\n"
        )
        self.assertEqual(
            config.echo,
            EchoConfig(
                enabled=False,
                listen=("tcp:7", "unix:/tmp/x.sock:mode=600"),
                idle_timeout=2.5,
                max_connections=3,
                backlog=10,
                sndbuf=65536,
                rcvbuf=1048576,
                reuseport=True,
            ),
        )

    def test_booleans(self) -> None:
        """
        Booleans accept the usual spellings in any case.
        """
        for text in ("yes", "TRUE", "on", "1"):
            self.assertIs(parseBool(text), True)
        for text in ("no", "False", "OFF", "0"):
            self.assertIs(parseBool(text), False)

    def test_sizes(self) -> None:
        """
        Sizes take bytes or a binary suffix.
        """
        self.assertEqual(parseSize("0"), 0)
        self.assertEqual(parseSize("512"), 512)
        self.assertEqual(parseSize("64k"), 65536)
        self.assertEqual(parseSize("64KiB"), 65536)
        self.assertEqual(parseSize("2 M"), 2 * 1024 * 1024)
        self.assertEqual(parseSize("1G"), 1024**3)

    def test_replaceSection(self) -> None:
        """
        replaceSection changes some keys of one section and keeps the rest.
        """
        config = replaceSection(Config(), "echo", idle_timeout=1.0)
        self.assertEqual(config.echo.idle_timeout, 1.0)
        self.assertEqual(config.echo.listen, Config().echo.listen)

    def test_configIsFrozen(self) -> None:
        """
        Parsed configuration cannot be changed in place.
        """
        config = Config()
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, config.echo, "backlog", 1)

    @given(st.text(max_size=40))
    def test_parsersRaiseOnlyValueError(self, text: str) -> None:
        """
        Whatever the text, a value parser returns a value or raises
        ValueError with a message; nothing else escapes.
        """
        for section in SECTIONS:
            for key, _allowed, _doc, _default in describe(section):
                try:
                    parseText(section, key, text)
                except ValueError as e:
                    self.assertTrue(str(e))


class ErrorTests(SynchronousTestCase):
    """
    Every mistake is reported in one line naming the file, section, key,
    value and what is allowed.
    """

    def assertConfigError(self, text: str, *expected: str) -> str:
        with self.assertRaises(ConfigError) as cm:
            parseConfig(text, "/etc/tap.conf")
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith("/etc/tap.conf: "), message)
        for part in expected:
            self.assertIn(part, message)
        return message

    def test_unknownSection(self) -> None:
        """
        An unknown section is named, with the known ones.
        """
        self.assertConfigError("[ecoh]\n", "unknown section [ecoh]", "[echo]")

    def test_unknownKey(self) -> None:
        """
        An unknown key is named with its section and the known keys.
        """
        self.assertConfigError(
            "[echo]\nidle_timout = 3\n", "[echo]", "unknown key 'idle_timout'", "idle_timeout"
        )

    def test_badBoolean(self) -> None:
        """
        A bad boolean names the key, the value and the allowed spellings.
        """
        self.assertConfigError(
            "[echo]\nenabled = maybe\n", "[echo] enabled = 'maybe'", "expected yes or no"
        )

    def test_badSeconds(self) -> None:
        """
        Durations must be finite and not negative.
        """
        for value in ("abc", "-1", "inf", "nan"):
            self.assertConfigError(
                f"[echo]\nidle_timeout = {value}\n", f"idle_timeout = '{value}'", "seconds"
            )

    def test_badInteger(self) -> None:
        """
        Whole numbers are checked against their range.
        """
        self.assertConfigError(
            "[echo]\nbacklog = 0\n", "[echo] backlog = '0'", "from 1 to 65535"
        )
        self.assertConfigError(
            "[echo]\nmax_connections = 1.5\n", "max_connections = '1.5'", "whole number"
        )

    def test_smallServiceUdpIsUdpOnly(self) -> None:
        """
        A small service's C{udp} key refuses C{unixgram:} in one line (the
        small services answer over UDP only), rather than letting it reach
        the service and fail there with a traceback.
        """
        self.assertConfigError(
            "[daytime]\nudp = unixgram:/tmp/daytime.sock\n",
            "[daytime] udp = 'unixgram:/tmp/daytime.sock'",
            "expected a port or udp:PORT",
        )

    def test_udpEchoFormsIncludeUnixgram(self) -> None:
        """
        A malformed C{[udp-echo] listen} names every form it accepts,
        C{unixgram:} included.
        """
        self.assertConfigError(
            "[udp-echo]\nlisten = foo\n", "listen = 'foo'", "udp:PORT", "unixgram:PATH"
        )

    def test_badSize(self) -> None:
        """
        Sizes name the forms they accept.
        """
        self.assertConfigError("[echo]\nsndbuf = lots\n", "sndbuf = 'lots'", "64K")

    def test_badEndpoint(self) -> None:
        """
        An endpoint string that Twisted cannot parse is named, with
        examples of good ones.
        """
        message = self.assertConfigError(
            "[echo]\nlisten = tcp:8007 bogus:1\n", "[echo] listen", "not a server endpoint"
        )
        self.assertIn("tcp:8007:interface=127.0.0.1", message)
        self.assertConfigError("[echo]\nlisten = tcp:notaport\n", "not a server endpoint")

    def test_emptyListen(self) -> None:
        """
        listen needs at least one endpoint.
        """
        self.assertConfigError("[echo]\nlisten =\n", "at least one endpoint")

    def test_badLogLevel(self) -> None:
        """
        Choices list what is allowed.
        """
        self.assertConfigError("[log]\nlevel = loud\n", "[log] level = 'loud'", "debug, info")

    def test_syntaxError(self) -> None:
        """
        INI syntax errors keep the file name and line.
        """
        self.assertConfigError("listen = tcp:1\n", "line 1", "outside any section", "[echo]")
        self.assertConfigError("[echo]\nbacklog = 1\nbacklog = 2\n", "line 3", "backlog is set twice")
        self.assertConfigError("[echo]\n[echo]\n", "line 2", "[echo] appears twice")
        self.assertConfigError("[echo]\njunk\n", "line 2", "cannot parse 'junk'")

    def test_missingFile(self) -> None:
        """
        A file that cannot be read is named with the reason.
        """
        path = Path(self.mktemp())
        with self.assertRaises(ConfigError) as cm:
            loadConfig(path)
        self.assertIn(str(path), str(cm.exception))
        self.assertIn("No such file", str(cm.exception))

    def test_notUTF8(self) -> None:
        """
        A binary file is refused with a clear message.
        """
        path = Path(self.mktemp())
        path.write_bytes(b"[echo]\n\xff\xfe\n")
        with self.assertRaises(ConfigError) as cm:
            loadConfig(path)
        self.assertIn("not UTF-8", str(cm.exception))

    def test_parseEndpointsSplitsOnWhitespace(self) -> None:
        """
        Endpoint lists split on spaces and newlines.
        """
        self.assertEqual(
            parseEndpoints(" tcp:1\n\ttcp6:2:interface=\\:\\:1  "),
            ("tcp:1", "tcp6:2:interface=\\:\\:1"),
        )

    def test_secondsZeroAllowed(self) -> None:
        """
        Zero seconds is allowed: it disables a timeout.
        """
        self.assertEqual(parseSeconds("0"), 0.0)


class CommentTests(SynchronousTestCase):
    """
    Comments: a C{#} or C{;} on a line of its own, or after whitespace at the
    end of a value; anywhere else they belong to the value.
    """

    def test_inlineCommentAfterWhitespace(self) -> None:
        """
        C{#} and C{;} after whitespace end the value, in a single-line value
        and on a continuation line of a multi-line one.
        """
        config = parseConfig(
            "[netservices]\n"
            "workers = 4            # or: twistd -n netservices --workers 4\n"
            "[discovery]\n"
            "broadcast = 192.168.1.255      ; or <broadcast> for 255.255.255.255\n"
            "[echo]\n"
            "listen = tcp:7007:interface=127.0.0.1   # local\n"
            "         unix:/tmp/e.sock ; the socket\n"
            "         # a whole-line comment inside the list\n"
            "         tcp:7008\n"
        )
        self.assertEqual(config.netservices.workers, 4)
        self.assertEqual(config.discovery.broadcast, "192.168.1.255")
        self.assertEqual(
            config.echo.listen, ("tcp:7007:interface=127.0.0.1", "unix:/tmp/e.sock", "tcp:7008")
        )

    def test_hashAndSemicolonInsideValues(self) -> None:
        """
        A C{#} or C{;} with no whitespace before it is part of the value:
        endpoint strings, paths and names keep theirs.
        """
        config = parseConfig(
            "[echo]\n"
            "listen = unix:/tmp/a#1;b.sock\n"
            "[web]\n"
            "access_log = /var/log/a#b;c.log\n"
            "static_mount = /files;v=1/\n"
            "[discovery]\n"
            "name = box#3;east\n"
        )
        self.assertEqual(config.echo.listen, ("unix:/tmp/a#1;b.sock",))
        self.assertEqual(config.web.access_log, "/var/log/a#b;c.log")
        self.assertEqual(config.web.static_mount, "/files;v=1/")
        self.assertEqual(config.discovery.name, "box#3;east")

    def test_commentedValueStillChecked(self) -> None:
        """
        What is left of a value before its comment is checked as usual, and
        the error shows it without the comment.
        """
        with self.assertRaises(ConfigError) as cm:
            parseConfig("[netservices]\nworkers = four  # one per core\n", "t.conf")
        self.assertEqual(
            str(cm.exception),
            "t.conf: [netservices] workers = 'four': expected a whole number from 1 to 256",
        )


class FormatConfigTests(SynchronousTestCase):
    """
    Tests for L{formatConfig}.
    """

    def test_roundTrip(self) -> None:
        """
        The text parses back to the same configuration, for the defaults and
        for changed values of every kind.
        """
        self.assertEqual(parseConfig(formatConfig(Config())), Config(source="<string>"))
        config = parseConfig(
            "[echo]\nenabled = no\nlisten = tcp6:1:interface=\\:\\:1 unix:/tmp/x.sock\n"
            "idle_timeout = 0.25\nsndbuf = 64K\n[netservices]\nworkers = 3\n"
            f"[tls]\ncertificate = {TAP_CONF}\n[log]\nlevel = debug\n",
            "mine",
        )
        self.assertEqual(parseConfig(formatConfig(config), "mine"), config)
