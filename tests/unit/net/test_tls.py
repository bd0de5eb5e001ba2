# -*- test-case-name: tests.unit.net.test_tls -*-
"""
Tests for L{services.net.tls}: certificates from PEM files, TLS 1.2 minimum, and
C{ssl:} echo listeners of a real daemon reached with Python's C{ssl} module
and C{openssl s_client}.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import warnings
from pathlib import Path

from OpenSSL import SSL
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from services.net.tls import (
    SharedFlushClock,
    TLSError,
    TLSFiles,
    TLSServerEndpoint,
    certificateOptions,
)
from tests.support import Daemon, freePort, isolatedConfig, makeCertificate


class CertificateOptionsTests(SynchronousTestCase):
    """
    Tests for L{certificateOptions}.
    """

    def setUp(self) -> None:
        self.directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.directory)
        self.cert, self.key = makeCertificate(self.directory)

    def test_minimumVersion(self) -> None:
        """
        TLS 1.0 and 1.1 are refused by default; C{1.3} refuses 1.2 too.
        """
        context = certificateOptions(TLSFiles(str(self.cert), str(self.key))).getContext()
        options = context.set_options(0)  # returns the options in force
        self.assertTrue(options & SSL.OP_NO_TLSv1)
        self.assertTrue(options & SSL.OP_NO_TLSv1_1)
        self.assertFalse(options & SSL.OP_NO_TLSv1_2)
        files = TLSFiles(str(self.cert), str(self.key), minimumVersion="1.3")
        self.assertTrue(certificateOptions(files).getContext().set_options(0) & SSL.OP_NO_TLSv1_2)

    def test_keyInCertificateFile(self) -> None:
        """
        With no key file, the key is read from the certificate file.
        """
        both = self.directory / "both.pem"
        both.write_bytes(self.cert.read_bytes() + self.key.read_bytes())
        certificateOptions(TLSFiles(str(both)))

    def test_chain(self) -> None:
        """
        Certificates after the first one, or in a chain file, are sent as
        the chain.
        """
        other, _ = makeCertificate(self.directory, "intermediate")
        withChain = self.directory / "chain.pem"
        withChain.write_bytes(self.cert.read_bytes() + other.read_bytes())
        options = certificateOptions(TLSFiles(str(withChain), str(self.key)))
        self.assertEqual(len(options.extraCertChain), 1)
        options = certificateOptions(TLSFiles(str(self.cert), str(self.key), chain=str(other)))
        self.assertEqual(len(options.extraCertChain), 1)

    def test_errors(self) -> None:
        """
        Missing files, files without PEM, and a key of another certificate
        raise L{TLSError} naming the file.
        """
        _, otherKey = makeCertificate(self.directory, "other")
        encrypted = self.directory / "encrypted.key"
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        encrypted.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        cases = [
            (TLSFiles(str(self.cert), str(encrypted)), "is encrypted"),
            (TLSFiles("/nonexistent.pem"), "cannot read the certificate file /nonexistent.pem"),
            (TLSFiles(str(self.cert), "/nonexistent.key"), "cannot read the key file"),
            (TLSFiles(str(self.key), str(self.key)), "no PEM certificate in"),
            (TLSFiles(str(self.cert)), f"no usable PEM private key in {self.cert}"),
            (TLSFiles(str(self.cert), str(otherKey)), "does not match the certificate"),
        ]
        for files, message in cases:
            with self.assertRaises(TLSError) as caught:
                certificateOptions(files)
            self.assertIn(message, str(caught.exception))


class TLSServerEndpointTests(SynchronousTestCase):
    """
    Tests for L{TLSServerEndpoint}.
    """

    def test_listen(self) -> None:
        """
        Listening loads the options and wraps the factory in TLS.
        """
        reactor = MemoryReactorClock()
        options = CertificateOptions()
        endpoint = TLSServerEndpoint(TCP4ServerEndpoint(reactor, 8443), lambda: options)
        factory = Factory()
        endpoint.listen(factory)
        tls = reactor.tcpServers[0][1]
        self.assertIsInstance(tls, TLSMemoryBIOFactory)
        self.assertIs(tls.wrappedFactory, factory)

    def test_loadFailure(self) -> None:
        """
        A failure to load the options fails the listen and binds nothing.
        """
        reactor = MemoryReactorClock()

        def broken() -> None:
            raise TLSError("cannot read")

        endpoint = TLSServerEndpoint(TCP4ServerEndpoint(reactor, 8443), broken)
        self.failureResultOf(endpoint.listen(Factory()), TLSError)
        self.assertEqual(reactor.tcpServers, [])


class SharedFlushClockTests(SynchronousTestCase):
    """
    Tests for L{SharedFlushClock}.
    """

    def test_oneTimedCall(self) -> None:
        """
        The calls asked for now run, in order, from one timed call of the
        reactor, on its next iteration.
        """
        reactor = Clock()
        clock = SharedFlushClock(reactor)
        ran: list[int] = []
        for i in range(3):
            clock.callLater(0, ran.append, i)
        self.assertEqual(len(reactor.getDelayedCalls()), 1)
        self.assertEqual(ran, [])
        reactor.advance(0)
        self.assertEqual(ran, [0, 1, 2])
        clock.callLater(0, ran.append, 3)
        reactor.advance(0)
        self.assertEqual(ran, [0, 1, 2, 3])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_cancel(self) -> None:
        """
        A cancelled call does not run; the others do.
        """
        reactor = Clock()
        clock = SharedFlushClock(reactor)
        ran: list[int] = []
        first = clock.callLater(0, ran.append, 1)
        second = clock.callLater(0, ran.append, 2)
        self.assertTrue(first.active())
        first.cancel()
        self.assertFalse(first.active())
        reactor.advance(0)
        self.assertEqual(ran, [2])
        self.assertFalse(second.active())

    def test_delay(self) -> None:
        """
        A call with a delay is the reactor's own, at that delay.
        """
        reactor = Clock()
        clock = SharedFlushClock(reactor)
        ran: list[int] = []
        clock.callLater(5, ran.append, 1)
        reactor.advance(4)
        self.assertEqual(ran, [])
        reactor.advance(1)
        self.assertEqual(ran, [1])
        self.assertEqual(clock.seconds(), 5)

    def test_errorLogged(self) -> None:
        """
        A call that raises is logged, and the calls after it run.
        """
        reactor = Clock()
        clock = SharedFlushClock(reactor)
        ran: list[int] = []
        clock.callLater(0, lambda: 1 / 0)
        clock.callLater(0, ran.append, 2)
        with capturedLogs() as events:
            reactor.advance(0)
        self.assertEqual(ran, [2])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(any("TLS flush" in event.get("log_format", "") for event in events))

    def test_listenerUsesIt(self) -> None:
        """
        The TLS factory of a L{TLSServerEndpoint} schedules its flushes on
        a L{SharedFlushClock} of the endpoint's reactor.
        """
        reactor = MemoryReactorClock()
        endpoint = TLSServerEndpoint(
            TCP4ServerEndpoint(reactor, 8443), CertificateOptions, reactor=reactor
        )
        endpoint.listen(Factory())
        tls = reactor.tcpServers[0][1]
        self.assertIsInstance(tls._clock, SharedFlushClock)
        self.assertIs(tls._clock.reactor, reactor)


def tlsEcho(port: int, cafile: Path, payload: bytes, **versions: ssl.TLSVersion) -> tuple[bytes, str]:
    """
    Connect to C{127.0.0.1:port} with TLS, verifying the server against
    C{cafile}, send C{payload}, half-close, and return the echo and the
    negotiated version.
    """
    context = ssl.create_default_context(cafile=str(cafile))
    for name, value in versions.items():
        setattr(context, name, value)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(payload)
            received = b""
            while len(received) < len(payload):
                data = s.recv(65536)
                if not data:
                    break
                received += data
            return received, s.version() or ""


class TLSDaemonTests(TestCase):
    """
    A real daemon with C{ssl:} echo listeners.
    """

    def setUp(self) -> None:
        self.directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.directory)
        self.cert, self.key = makeCertificate(self.directory)

    def test_echoOverTLS(self) -> None:
        """
        An C{ssl:} echo listener serves TLS 1.2 and 1.3 with the C{[tls]}
        certificate, which clients verify; TLS 1.1 is refused; an endpoint
        with its own C{privateKey=} uses that file.
        """
        port, ownPort = freePort(), freePort()
        both = self.directory / "both.pem"
        both.write_bytes(self.cert.read_bytes() + self.key.read_bytes())
        daemon = Daemon(
            [],
            config=isolatedConfig(
                echo=(
                    f"listen = ssl:{port}:interface=127.0.0.1\n"
                    f"         ssl:{ownPort}:interface=127.0.0.1:privateKey={both}"
                ),
                tls=f"certificate = {self.cert}\nkey = {self.key}",
            ),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForTCP(port)
        daemon.waitForTCP(ownPort)

        echoed, version = tlsEcho(port, self.cert, b"hello tls")
        self.assertEqual((echoed, version), (b"hello tls", "TLSv1.3"))
        echoed, version = tlsEcho(
            port, self.cert, b"x" * 100000, maximum_version=ssl.TLSVersion.TLSv1_2
        )
        self.assertEqual((len(echoed), version), (100000, "TLSv1.2"))
        self.assertEqual(tlsEcho(ownPort, self.cert, b"own")[0], b"own")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is, rightly
            old = {"minimum_version": ssl.TLSVersion.TLSv1, "maximum_version": ssl.TLSVersion.TLSv1_1}
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                tlsEcho(port, self.cert, b"old", **old)

        openssl = shutil.which("openssl")
        if openssl is not None:
            # An independent client verifies the certificate too.
            result = subprocess.run(
                [openssl, "s_client", "-verify_return_error", "-CAfile", str(self.cert),
                 "-verify_ip", "127.0.0.1", "-connect", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=20,
            )
            self.assertIn(b"Verify return code: 0 (ok)", result.stdout, result.stderr)
        self.assertNotIn("Traceback", daemon.log())

    def test_proxyThenTLS(self) -> None:
        """
        A C{haproxy:ssl:} listener reads the PROXY header in clear, then
        serves TLS: what HAProxy sends when it passes TLS through.
        """
        port = freePort()
        daemon = Daemon(
            ["--log-level", "debug"],
            config=isolatedConfig(
                echo=f"listen = haproxy:ssl:{port}:interface=127.0.0.1",
                tls=f"certificate = {self.cert}\nkey = {self.key}",
            ),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForLog(f"echo listening on haproxy:ssl:{port}")
        context = ssl.create_default_context(cafile=str(self.cert))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"PROXY TCP4 192.0.2.33 198.51.100.1 41000 443\r\n")
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"behind haproxy")
                self.assertEqual(s.recv(100), b"behind haproxy")
        daemon.waitForLog("echo: 192.0.2.33:41000 connected")

    def test_webOverTLS(self) -> None:
        """
        An C{ssl:} web listener serves HTTPS that curl verifies with
        C{--cacert}; curl limited to TLS 1.1 is refused.
        """
        curl = shutil.which("curl")
        if curl is None:
            raise SkipTest("curl is not installed (tests/system-deps.sh installs it)")
        port = freePort()
        daemon = Daemon(
            [],
            config=isolatedConfig(
                web=f"listen = ssl:{port}:interface=127.0.0.1",
                tls=f"certificate = {self.cert}\nkey = {self.key}",
            ),
        )
        self.addCleanup(daemon.stop)
        daemon.waitForLog(f"web listening on ssl:{port}")
        url = f"https://127.0.0.1:{port}/"
        result = subprocess.run(
            [curl, "-sS", "--cacert", str(self.cert), "-w", "%{http_code} %{ssl_verify_result}", url],
            capture_output=True, text=True, timeout=20,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Hello World", result.stdout)
        self.assertTrue(result.stdout.endswith("200 0"), result.stdout)
        old = subprocess.run(
            [curl, "-sS", "--cacert", str(self.cert), "--tlsv1.0", "--tls-max", "1.1", url],
            capture_output=True, text=True, timeout=20,
        )
        self.assertNotEqual(old.returncode, 0)

    def test_missingCertificate(self) -> None:
        """
        An unreadable certificate stops the daemon at start with one line:
        for C{[tls]} certificate, the configuration error that names the
        file, section and key (checked before any listener starts); for an
        endpoint's own C{certKey=}, the listener and the file.
        """
        from tests.support import runTwistd

        port = freePort()
        missing = f"{self.directory}/missing.pem"
        conf = self.directory / "tap.conf"
        conf.write_text(
            isolatedConfig(echo=f"listen = ssl:{port}:interface=127.0.0.1", tls=f"certificate = {missing}")
        )
        result = runTwistd(["--config", str(conf)])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            f"netservices: error: {conf}: [tls] certificate = '{missing}': "
            "expected the path of a readable file",
            result.stdout + result.stderr,
        )
        self.assertNotIn("Traceback", result.stdout + result.stderr)

        description = f"ssl:{port}:interface=127.0.0.1:certKey={missing}:privateKey={self.key}"
        conf.write_text(isolatedConfig(echo=f"listen = {description}"))
        result = runTwistd(["--config", str(conf)])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(
            f"netservices: error: echo: cannot listen on {description}: "
            f"cannot read the certificate file {missing}",
            result.stdout + result.stderr,
        )
        self.assertNotIn("Traceback", result.stdout + result.stderr)
