"""
Tests for the C{[web]} section of tap.conf and the C{--web}, C{--no-web}
and C{--static} flags of C{twistd netservices}.
"""

from __future__ import annotations

import configparser
import dataclasses
import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    SECTIONS,
    Config,
    ConfigError,
    WebConfig,
    describe,
    loadConfig,
    parseConfig,
)
from services.daemon.tap import Options
from services.daemon.tree import buildService
from services.web._service import WebService

from tests.support import ROOT, temporaryDirectory

TAP_CONF = ROOT / "tap.conf"


def parse(*args: str) -> Options:
    """
    Parse a twistd netservices command line.
    """
    options = Options()
    options.parseOptions(list(args))
    return options


class WebDefaultsTests(SynchronousTestCase):
    """
    The repository's tap.conf documents every [web] key with its default.
    """

    def test_tapConfEqualsDefaults(self) -> None:
        """
        The [web] section of tap.conf is exactly the built-in defaults.
        """
        self.assertEqual(loadConfig(TAP_CONF).web, WebConfig())
        self.assertEqual(Config().web, WebConfig())

    def test_tapConfListsEveryKey(self) -> None:
        """
        Every key of [web] appears in tap.conf.
        """
        parser = configparser.RawConfigParser()
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(TAP_CONF)
        keys = {f.name for f in dataclasses.fields(WebConfig)}
        self.assertEqual(set(parser.options("web")), keys)

    def test_everyKeyDocumented(self) -> None:
        """
        Every [web] key says what is allowed and what it does, and the
        README's table names it.
        """
        readme = (ROOT / "README.md").read_text()
        table = readme.split("### `[web]`", 1)[1].split("\n\n", 2)[1]
        self.assertIs(SECTIONS["web"], WebConfig)
        for key, allowed, doc, _default in describe("web"):
            self.assertTrue(allowed and doc, key)
            self.assertIn(f"| `{key}` |", table)

    def test_safeDefaults(self) -> None:
        """
        By default the web service listens on loopback only, serves no files,
        lists nothing and follows no link out of the root.
        """
        web = WebConfig()
        self.assertEqual(web.listen, ("tcp:8080:interface=127.0.0.1",))
        self.assertEqual(web.static_dir, "")
        self.assertFalse(web.listing)
        self.assertFalse(web.follow_symlinks)
        self.assertEqual(web.header_timeout, 10)
        self.assertEqual(web.max_body, 1024**2)


class WebParseTests(SynchronousTestCase):
    """
    [web] values are parsed and checked.
    """

    def test_values(self) -> None:
        """
        Each key of [web] is parsed into its type.
        """
        directory = temporaryDirectory(self)
        config = parseConfig(
            "[web]\n"
            "enabled = no\n"
            "listen = tcp:8081 unix:/tmp/web.sock\n"
            f"static_dir = {directory}\n"
            "static_mount = files/pub\n"
            "listing = yes\n"
            "follow_symlinks = on\n"
            "header_timeout = 2.5\n"
            "idle_timeout = 0\n"
            "max_body = 64K\n"
            "max_connections = 10\n"
            "max_connections_per_peer = 3\n"
            "backlog = 5\n"
            "access_log = /var/log/netservices/access.log\n"
        )
        self.assertEqual(
            config.web,
            WebConfig(
                enabled=False,
                listen=("tcp:8081", "unix:/tmp/web.sock"),
                static_dir=str(directory.absolute()),
                static_mount="/files/pub/",
                listing=True,
                follow_symlinks=True,
                header_timeout=2.5,
                idle_timeout=0.0,
                max_body=65536,
                max_connections=10,
                max_connections_per_peer=3,
                backlog=5,
                access_log="/var/log/netservices/access.log",
            ),
        )

    def assertConfigError(self, text: str, *expected: str) -> None:
        with self.assertRaises(ConfigError) as cm:
            parseConfig(text, "/etc/tap.conf")
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        for part in ("/etc/tap.conf: [web] ",) + expected:
            self.assertIn(part, message)

    def test_badStaticDir(self) -> None:
        """
        static_dir must be an existing directory.
        """
        missing = os.path.join(temporaryDirectory(self), "missing")
        self.assertConfigError(
            f"[web]\nstatic_dir = {missing}\n", "static_dir", missing, "existing directory"
        )
        self.assertConfigError(f"[web]\nstatic_dir = {TAP_CONF}\n", "existing directory")

    def test_badMount(self) -> None:
        """
        static_mount is a plain path, not the root, not a parent reference
        and not under the service's own documents.
        """
        for mount in ("/", "/status/", "/health", "/metrics/x", "/a/../b", "/a b/", "/%2e/"):
            self.assertConfigError(f"[web]\nstatic_mount = {mount}\n", "static_mount", "URL path")

    def test_badTimeoutsAndSizes(self) -> None:
        """
        Timeouts, sizes and caps are checked.
        """
        self.assertConfigError("[web]\nheader_timeout = soon\n", "header_timeout", "seconds")
        self.assertConfigError("[web]\nmax_body = lots\n", "max_body", "size in bytes")
        self.assertConfigError("[web]\nmax_connections = -1\n", "max_connections", "whole number")
        self.assertConfigError("[web]\nlisten = nonsense:1\n", "listen", "endpoint")


class WebFlagTests(SynchronousTestCase):
    """
    The web flags override tap.conf.
    """

    def test_webFlagsReplaceListen(self) -> None:
        """
        --web, repeated, replaces [web] listen and enables the service.
        """
        config = temporaryDirectory(self) / "tap.conf"
        config.write_text("[web]\nenabled = no\nlisten = tcp:1\n")
        options = parse("--config", str(config), "--web", "tcp:8081", "--web", "unix:/tmp/w.sock")
        self.assertTrue(options.settings.web.enabled)
        self.assertEqual(options.settings.web.listen, ("tcp:8081", "unix:/tmp/w.sock"))

    def test_noWeb(self) -> None:
        """
        --no-web disables the service; with --web it is a contradiction.
        """
        self.assertFalse(parse("--no-web").settings.web.enabled)
        with self.assertRaises(SystemExit) as cm:
            parse("--no-web", "--web", "tcp:8081")
        self.assertIn("--web and --no-web contradict each other", str(cm.exception.code))

    def test_static(self) -> None:
        """
        --static sets the directory to serve (made absolute).
        """
        directory = temporaryDirectory(self)
        options = parse("--static", str(directory))
        self.assertEqual(options.settings.web.static_dir, str(directory.absolute()))

    def test_badFlagsExitWithOneLine(self) -> None:
        """
        A bad --web or --static ends with one line naming the flag.
        """
        missing = os.path.join(temporaryDirectory(self), "missing")
        for args, expected in [
            (("--static", missing), "--static"),
            (("--web", "nonsense:1"), "--web"),
        ]:
            with self.assertRaises(SystemExit) as cm:
                parse(*args)
            message = str(cm.exception.code)
            self.assertTrue(message.startswith("netservices: error: command line: "), message)
            self.assertIn(expected, message)
            self.assertNotIn("\n", message)

    def test_helpDocumentsFlags(self) -> None:
        """
        --help names the web flags.
        """
        text = str(Options())
        for flag in ("--web=", "--no-web", "--static="):
            self.assertIn(flag, text)


class WebTreeTests(SynchronousTestCase):
    """
    The web service is part of the tree when enabled, last.
    """

    def test_builtLast(self) -> None:
        """
        The web service is the last child, named web, with its counters in
        the root's stats, shared with its site.
        """
        root = buildService(parse("--web", "tcp:8081").settings, MemoryReactorClock())
        children = list(root)
        self.assertIsInstance(children[-1], WebService)
        web = root.getServiceNamed("web")
        self.assertIs(web.site.stats, root.stats["web"])  # type: ignore[attr-defined]

    def test_disabled(self) -> None:
        """
        --no-web leaves the web service and its stats out.
        """
        root = buildService(parse("--no-web").settings, MemoryReactorClock())
        self.assertRaises(KeyError, root.getServiceNamed, "web")
        self.assertNotIn("web", root.stats)

    def test_startListens(self) -> None:
        """
        Starting the tree listens on the web endpoints.
        """
        reactor = MemoryReactorClock()
        root = buildService(parse("--no-echo", "--web", "tcp:8081").settings, reactor)
        root.privilegedStartService()
        root.startService()
        self.addCleanup(root.stopService)
        self.assertEqual([s[0] for s in reactor.tcpServers], [8081])
