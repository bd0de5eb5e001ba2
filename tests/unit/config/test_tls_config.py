"""
Tests for the C{[tls]} section of tap.conf: the certificate and key files
must be readable at start, whether or not a listener uses TLS yet.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from services.config import ConfigError, TLSConfig, loadConfig, parseConfig
from services.daemon.tap import Options

from tests.support import ROOT, temporaryDirectory


class TLSFilesTests(SynchronousTestCase):
    """
    C{[tls] certificate} and C{key} name readable files, or nothing.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.cert = self.directory / "cert.pem"
        self.cert.write_text("-----BEGIN CERTIFICATE-----\n")
        self.missing = self.directory / "missing.pem"

    def assertConfigError(self, text: str, *expected: str) -> None:
        """
        Parsing C{text} fails with one line naming the file, the section,
        the key, the value and what is allowed.
        """
        with self.assertRaises(ConfigError) as cm:
            parseConfig(text, "/etc/tap.conf")
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        for part in ("/etc/tap.conf: [tls] ", "expected the path of a readable file", *expected):
            self.assertIn(part, message)

    def test_emptyIsNone(self) -> None:
        """
        Empty values are the defaults: no certificate, the key in the
        certificate file.  The repository's tap.conf, which leaves them
        empty, loads with no file present.
        """
        self.assertEqual(parseConfig("[tls]\ncertificate =\nkey =\n").tls, TLSConfig())
        self.assertEqual(loadConfig(ROOT / "tap.conf").tls, TLSConfig())

    def test_readableFilesKeptAsWritten(self) -> None:
        """
        Readable files are accepted, their paths kept as written (an ssl:
        listener's errors name the file as the user spelled it).
        """
        key = self.directory / "key.pem"
        key.write_text("key\n")
        tls = parseConfig(f"[tls]\ncertificate = {self.cert}\nkey = {key}\n").tls
        self.assertEqual((tls.certificate, tls.key), (str(self.cert), str(key)))
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(self.directory)
        self.assertEqual(parseConfig("[tls]\ncertificate = cert.pem\n").tls.certificate, "cert.pem")

    def test_missingCertificate(self) -> None:
        """
        A certificate that does not exist is an error at start, though no
        listener is an ssl: one.
        """
        self.assertConfigError(
            f"[tls]\ncertificate = {self.missing}\n", f"certificate = '{self.missing}'"
        )

    def test_missingKey(self) -> None:
        """
        So is a key file that does not exist.
        """
        self.assertConfigError(
            f"[tls]\ncertificate = {self.cert}\nkey = {self.missing}\n", f"key = '{self.missing}'"
        )

    def test_directory(self) -> None:
        """
        A directory is not a certificate file.
        """
        self.assertConfigError(f"[tls]\ncertificate = {self.directory}\n", "certificate")

    def test_fifo(self) -> None:
        """
        A FIFO is refused without being opened (opening it would wait for
        a writer).
        """
        fifo = self.directory / "fifo"
        os.mkfifo(fifo)
        self.assertConfigError(f"[tls]\nkey = {fifo}\n", "key")

    def test_unreadable(self) -> None:
        """
        A file the daemon may not read is refused.
        """
        if os.geteuid() == 0:
            raise SkipTest("root reads every file")
        self.cert.chmod(0)
        self.assertConfigError(f"[tls]\ncertificate = {self.cert}\n", "certificate")

    def test_daemonStopsWithOneLine(self) -> None:
        """
        twistd netservices with such a tap.conf, and only plain TCP
        listeners, ends before starting with C{netservices: error:} and the
        one line.
        """
        conf = self.directory / "tap.conf"
        conf.write_text(f"[echo]\nlisten = tcp:0:interface=127.0.0.1\n[tls]\ncertificate = {self.missing}\n")
        with self.assertRaises(SystemExit) as cm:
            Options().parseOptions(["--config", str(conf)])
        self.assertEqual(
            str(cm.exception.code),
            f"netservices: error: {conf}: [tls] certificate = '{self.missing}': "
            "expected the path of a readable file (or nothing, for none)",
        )
