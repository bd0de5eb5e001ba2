"""
Reliability battery, item 8 (property tests): every parser of ours, given
any input, returns a value or raises its one documented error with a one-line
message; valid values survive a round trip.

The parsers: tap.conf as a whole and each of its values (every section in
L{services.config.SECTIONS}, so sections added later are covered too), and
the command line of C{twistd netservices} (every flag of L{Options},
discovered from the class).
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    LIMITED_BROADCAST,
    SECTIONS,
    Config,
    ConfigError,
    describe,
    parseBool,
    parseConfig,
    parseEndpoints,
    parseSeconds,
    parseSize,
    parseText,
    parseValue,
)
from services.daemon.tap import Options

from tests.reliabilitysupport import requireServices

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text as a command line or a file can carry it: any bytes but NUL,
#: decoded the way Python decodes argv.
argvText = st.binary(max_size=40).map(lambda b: os.fsdecode(b.replace(b"\0", b"")))

#: Values that are valid for some key, so that generated files get past the
#: first bad value more often.
plausibleValues = st.sampled_from([
    "yes", "no", "0", "1", "10", "0.5", "64K", "1MiB", "debug", "info", "",
    "tcp:0:interface=127.0.0.1", "unix:/tmp/x.sock", "udp:0:interface=127.0.0.1",
    "127.0.0.1", "127.255.255.255", LIMITED_BROADCAST, "http://127.0.0.1:1/",
    "-1", "1e999", "nan", "inf", "99999999999999999999", "\t", "x" * 300, "/tmp/" + "x" * 300,
    "a\x00b", "/tmp", ".", "\udcff", "tcp:0:interface=\x00",
])

configValues = st.one_of(plausibleValues, st.text(max_size=30))


def _sectionsAndKeys() -> list[tuple[str, list[str]]]:
    return [(section, [key for key, *_ in describe(section)]) for section in SECTIONS]


@st.composite
def iniFiles(draw: st.DrawFn) -> str:
    """
    INI text made of known and unknown sections and keys, with valid and
    invalid values, and the odd line of garbage.
    """
    known = _sectionsAndKeys()
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()) or not known:
            section, keys = draw(st.sampled_from(known))
        else:
            section, keys = draw(st.text(min_size=1, max_size=8)), ["x"]
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from([*keys, "unknown"]), max_size=4, unique=True)):
            value = draw(configValues).replace("\n", " ").replace("\r", " ")
            lines.append(f"{key} = {value}")
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.text(max_size=20)).replace("\n", " "))
    return "\n".join(lines) + "\n"


def _assertOneLine(test: SynchronousTestCase, message: str) -> None:
    test.assertTrue(message, "an empty error message")
    test.assertNotIn("\n", message)
    test.assertNotIn("Traceback", message)


class ConfigPropertyTests(SynchronousTestCase):
    """
    Item 8: tap.conf parsing never fails in an undocumented way.
    """

    @_SETTINGS
    @given(st.text(max_size=200))
    def test_anyTextParsesOrConfigError(self, text: str) -> None:
        """
        Item 8: any text given as tap.conf yields a L{Config} or raises
        L{ConfigError} with a one-line message naming the source.
        """
        try:
            config = parseConfig(text, "fuzz.conf")
        except ConfigError as e:
            _assertOneLine(self, str(e))
            self.assertTrue(str(e).startswith("fuzz.conf: "), str(e))
        else:
            self.assertIsInstance(config, Config)

    @_SETTINGS
    @given(iniFiles())
    def test_iniShapedTextParsesOrConfigError(self, text: str) -> None:
        """
        Item 8: INI text with known and unknown sections, keys and values
        yields a L{Config} or a one-line L{ConfigError}; when it parses,
        every value it sets is the one the value parser gives.
        """
        try:
            config = parseConfig(text, "fuzz.conf")
        except ConfigError as e:
            _assertOneLine(self, str(e))
            return
        parser = configparser.RawConfigParser(delimiters=("=",), inline_comment_prefixes=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        for section in parser.sections():
            values = getattr(config, section.replace("-", "_"))
            for key, raw in parser.items(section):
                self.assertEqual(getattr(values, key), parseText(section, key, raw))

    @_SETTINGS
    @given(st.data())
    def test_everyValueParser(self, data: st.DataObject) -> None:
        """
        Item 8: every key's value parser, in every section, returns a value
        or raises L{ConfigError} with a one-line message naming the source,
        section and key (never another exception, which would be a
        traceback at startup).
        """
        for section, keys in _sectionsAndKeys():
            for key in keys:
                text = data.draw(configValues, label=f"[{section}] {key}")
                try:
                    parseValue("fuzz.conf", section, key, text)
                except ConfigError as e:
                    _assertOneLine(self, str(e))
                    self.assertTrue(str(e).startswith(f"fuzz.conf: [{section}] {key} = "))

    @_SETTINGS
    @given(
        st.integers(0, 2**40),
        st.sampled_from(["", "b", "B", "k", "K", "kb", "KiB", "m", "M", "MiB", "g", "G", "GiB"]),
        st.sampled_from(["", " ", "  "]),
    )
    def test_sizeRoundTrip(self, number: int, unit: str, space: str) -> None:
        """
        Item 8: a size with any binary suffix parses to the number times
        the suffix's power of 1024.
        """
        factor = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit[:1].lower()]
        self.assertEqual(parseSize(f"{space}{number}{space}{unit}{space}"), number * factor)

    @_SETTINGS
    @given(st.floats(min_value=0, allow_infinity=False, allow_nan=False))
    def test_secondsRoundTrip(self, seconds: float) -> None:
        """
        Item 8: any finite non-negative number of seconds, written by
        Python, parses back to itself; negative, infinite and NaN do not.
        """
        self.assertEqual(parseSeconds(repr(seconds)), seconds)
        for bad in (repr(-seconds - 1), "inf", "nan", "-inf"):
            self.assertRaises(ValueError, parseSeconds, bad)

    @_SETTINGS
    @given(st.sampled_from(sorted(configparser.RawConfigParser.BOOLEAN_STATES)), st.data())
    def test_booleanSpellings(self, word: str, data: st.DataObject) -> None:
        """
        Item 8: every boolean spelling parses in any case, with spaces
        around it.
        """
        spelled = "".join(c.upper() if data.draw(st.booleans()) else c for c in word)
        expected = configparser.RawConfigParser.BOOLEAN_STATES[word]
        self.assertIs(parseBool(f" {spelled} "), expected)

    @_SETTINGS
    @given(st.lists(st.integers(0, 65535), min_size=1, max_size=5), st.sampled_from([" ", "\n  ", "\t"]))
    def test_endpointsRoundTrip(self, ports: list[int], separator: str) -> None:
        """
        Item 8: a list of valid endpoint strings parses to the same list,
        whatever whitespace separates them.
        """
        endpoints = [f"tcp:{port}:interface=127.0.0.1" for port in ports]
        self.assertEqual(parseEndpoints(separator.join(endpoints)), tuple(endpoints))


def _flags() -> tuple[list[str], list[str]]:
    """
    The long flags of L{Options} that take a value, and those that do not
    (but --help and --version, which print and exit), as usage.Options
    itself lists them.
    """
    names = [n for n in Options().longOpt if n not in ("help", "version")]
    withValue = sorted(f"--{n[:-1]}" for n in names if n.endswith("="))
    without = sorted(f"--{n}" for n in names if not n.endswith("="))
    return withValue, without


@st.composite
def commandLines(draw: st.DrawFn, configPath: str) -> list[str]:
    """
    Command lines of known flags (with plausible or arbitrary values),
    unknown flags and stray words.
    """
    withValue, without = _flags()
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind < 5 and withValue:
            flag = draw(st.sampled_from(withValue))
            if flag == "--config":
                value = draw(st.sampled_from([configPath, "/nonexistent/tap.conf", "", "."]))
            else:
                value = draw(st.one_of(plausibleValues, argvText))
            argv += [flag, value] if draw(st.booleans()) else [f"{flag}={value}"]
        elif kind < 8 and without:
            argv.append(draw(st.sampled_from(without)))
        else:
            argv.append(draw(argvText))
    return argv


class CommandLinePropertyTests(SynchronousTestCase):
    """
    Item 8: the command line of C{twistd netservices} never fails in an
    undocumented way.
    """

    def setUp(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="netservices-props-"))
        self.addCleanup(shutil.rmtree, directory, True)
        self.configPath = str(directory / "tap.conf")
        Path(self.configPath).write_text("[echo]\nidle_timeout = 5\n")

    def test_flagsDiscovered(self) -> None:
        """
        Item 8: the generator knows the flags of every service (so flags
        added later are fuzzed too).
        """
        withValue, without = _flags()
        self.assertIn("--config", withValue)
        self.assertIn("--echo", withValue)
        self.assertIn("--log-level", withValue)
        self.assertIn("--no-echo", without)

    @_SETTINGS
    @given(st.data())
    def test_anyCommandLine(self, data: st.DataObject) -> None:
        """
        Item 8: any command line either gives settings, or raises
        C{UsageError} (twistd prints it with the usage text), or exits with
        one line that starts with C{netservices: error:}.
        """
        argv = data.draw(commandLines(self.configPath), label="argv")
        options = Options()
        try:
            options.parseOptions(argv)
        except usage.UsageError as e:
            _assertOneLine(self, str(e))
        except SystemExit as e:
            message = str(e.code)
            _assertOneLine(self, message)
            self.assertTrue(message.startswith("netservices: error: "), message)
        else:
            self.assertIsInstance(options.settings, Config)
            self.assertTrue(_consistent(options.settings))


def _consistent(config: Config) -> bool:
    """
    Whether every value of C{config} is what its own parser accepts back
    (no flag smuggled in an unparsed value).
    """
    for section in SECTIONS:
        values: Any = getattr(config, section.replace("-", "_"))
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                return False
    return True


#: Values for the netservices command's options: plausible, hostile, and
#: arbitrary.
cliValues = st.one_of(st.sampled_from([
    "http://127.0.0.1:1/", "https://127.0.0.1/x?y=1", "127.0.0.1:8080", "ftp://x/", "http://",
    "http://[::1]:80/", "http://a b/", "http://127.0.0.1:99999/", "Name: value", "Bad Name: v",
    "a=b", "=b", "a", "{}", '{"a": [1, 2]}', "[" * 5000, "{" * 100000, "1e999", "-1", "0", "10",
    "1.5", "nan", "inf", "64K", "user:pass", "http://proxy:3128", "socks5://x", "\r\nX: y",
]), argvText)


@st.composite
def netservicesCommandLines(draw: st.DrawFn) -> list[str]:
    """
    Command lines of the C{netservices} command: a known or unknown
    command, then its options with plausible or arbitrary values.
    """
    from services.cli import buildParser

    parser = buildParser()
    commands = {name: sub for action in parser._actions
                if isinstance(action, __import__("argparse")._SubParsersAction)
                for name, sub in action.choices.items()}
    name = draw(st.sampled_from(sorted(commands) + ["nope"]))
    argv = [name]
    sub = commands.get(name)
    flags = [s for a in (sub._actions if sub else []) for s in a.option_strings
             if s not in ("-h", "--help")]
    for _ in range(draw(st.integers(0, 5))):
        if flags and draw(st.booleans()):
            argv.append(draw(st.sampled_from(flags)))
        argv.append(draw(cliValues))
    return argv


class NetservicesCommandPropertyTests(SynchronousTestCase):
    """
    Item 8: the C{netservices} command line never fails in an undocumented
    way before it runs.
    """

    @_SETTINGS
    @given(netservicesCommandLines())
    @example(["fetch", "http://127.0.0.1/", "--json", "[" * 100_000])
    @example(["fetch", "http://127.0.0.1/", "-H", "X: a\r\nInjected: b", "-q", "=x"])
    def test_anyCommandLine(self, argv: list[str]) -> None:
        """
        Item 8: any command line either parses, or exits with argparse's
        usage status 2; a parsed C{fetch} command line then becomes a plan
        or a one-line usage error, never another exception.
        """
        import contextlib
        import io

        from services.cli import buildParser

        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                args = buildParser().parse_args(argv)
        except SystemExit as e:
            self.assertIn(e.code, (0, 2), stderr.getvalue())
            self.assertNotIn("Traceback", stderr.getvalue())
            return
        if argv[0] == "fetch":
            from services.cli import fetchplan

            try:
                plan = fetchplan.Plan.fromArgs(args, {})
            except fetchplan.UnusableArgument as e:
                _assertOneLine(self, str(e))
            else:
                self.assertIn(plan.url.split("://")[0], ("http", "https"))


_HEX = "0123456789abcdef"


@st.composite
def wireMessages(draw: st.DrawFn) -> Any:
    """
    Valid announces and replies of the discovery wire format.
    """
    from services.discovery._wire import ANNOUNCE, REPLY, Message

    kind = draw(st.sampled_from([ANNOUNCE, REPLY]))
    names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,31}", fullmatch=True)
    services = draw(st.dictionaries(names, st.lists(st.integers(1, 65535), max_size=3),
                                    max_size=3))
    return Message(
        kind,
        id=draw(st.text(_HEX, min_size=32, max_size=32)),
        name=draw(st.text(st.characters(codec="utf-8").filter(str.isprintable),
                          min_size=1, max_size=20)),
        ttl=draw(st.integers(1, 3600)),
        services={k: tuple(v) for k, v in services.items()},
        nonce=draw(st.text(_HEX, min_size=16, max_size=64)) if kind == REPLY else "",
    )


class DiscoveryPropertyTests(SynchronousTestCase):
    """
    Item 8: the discovery wire format and UDP endpoint strings (arbitrary
    bytes and objects are covered by tests.unit.discovery.test_wire).
    """

    def setUp(self) -> None:
        requireServices("discovery")

    @_SETTINGS
    @given(wireMessages())
    def test_messageRoundTrip(self, message: Any) -> None:
        """
        Item 8: every valid announce or reply decodes to itself, within the
        size limit.
        """
        from services.discovery._wire import MAX_DATAGRAM, decode, encode

        data = encode(message)
        self.assertLessEqual(len(data), MAX_DATAGRAM)
        self.assertEqual(decode(data), message)

    @_SETTINGS
    @given(st.text(_HEX, min_size=16, max_size=64), st.integers(0, 2000))
    def test_querySize(self, nonce: str, size: int) -> None:
        """
        Item 8: a query padded to any size is that size (or as small as it
        can be, and never over the limit) and decodes to its nonce.
        """
        from services.discovery._wire import MAX_DATAGRAM, QUERY, decode, query

        data = query(nonce, size)
        bare = query(nonce, 0)
        if min(size, MAX_DATAGRAM) >= len(bare) + len(',"pad":""'):
            self.assertEqual(len(data), min(size, MAX_DATAGRAM))
        else:  # no room for a pad member
            self.assertEqual(data, bare)
        decoded = decode(data)
        self.assertEqual((decoded.type, decoded.nonce), (QUERY, nonce))

    @_SETTINGS
    @given(st.one_of(
        st.integers(0, 65535).map(str),
        st.builds(lambda p, i: f"udp:{p}:interface={i}", st.integers(0, 65535),
                  st.ip_addresses(v=4).map(str)),
        st.builds(lambda p, i: f"udp6:{p}:interface={i.replace(':', chr(92) + ':')}",
                  st.integers(0, 65535), st.ip_addresses(v=6).map(str)),
        st.builds(lambda p: f"udp:{p}", st.integers(0, 65535)),
    ))
    def test_udpEndpointRoundTrip(self, text: str) -> None:
        """
        Item 8: a valid UDP endpoint string parses, and its canonical text
        parses to the same endpoint.
        """
        from services.net.datagram import parseUdpEndpoint

        endpoint = parseUdpEndpoint(text)
        self.assertEqual(parseUdpEndpoint(str(endpoint)), endpoint)

    @_SETTINGS
    @given(st.one_of(argvText, plausibleValues,
                     st.builds(lambda a, b: f"udp:{a}:{b}", argvText, argvText)))
    def test_udpEndpointAnyText(self, text: str) -> None:
        """
        Item 8: any text either parses as a UDP endpoint or raises
        C{ValueError} with a one-line message.
        """
        from services.net.datagram import parseUdpEndpoint

        try:
            parseUdpEndpoint(text)
        except ValueError as e:
            _assertOneLine(self, str(e))
