# -*- test-case-name: tests.unit.daemon.test_values -*-
"""
Tests for L{services.daemon.values}: the configuration sections turned into
the values services, listeners and the workers' supervisor take.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    SMALL_SERVICES,
    Config,
    EchoConfig,
    TLSConfig,
    WebConfig,
    parseConfig,
    replaceSection,
)
from services.daemon.sharedlisteners import SharedListener
from services.daemon.values import (
    STREAM_SERVICES,
    socketOptions,
    streamListeners,
    tlsFiles,
    workerPool,
)
from services.net.sockets import SocketOptions
from services.net.tls import TLSFiles


class SocketOptionsTests(SynchronousTestCase):
    """
    Tests for L{socketOptions}.
    """

    def test_everyKey(self) -> None:
        """
        A section with C{backlog}, C{sndbuf}, C{rcvbuf} and C{reuseport}
        gives each of them.
        """
        section = EchoConfig(backlog=5, sndbuf=1024, rcvbuf=2048, reuseport=True)
        expected = SocketOptions(backlog=5, sndbuf=1024, rcvbuf=2048, reuseport=True)
        self.assertEqual(socketOptions(section), expected)

    def test_absentKeysKeepTheirDefaults(self) -> None:
        """
        C{[web]} has only C{backlog}: the other options keep the defaults of
        L{SocketOptions}.
        """
        self.assertEqual(socketOptions(WebConfig(backlog=7)), SocketOptions(backlog=7))

    def test_smallServices(self) -> None:
        """
        The small services' sections have the same keys as C{[echo]}.
        """
        config = parseConfig("[chargen]\nbacklog = 9\nsndbuf = 4K\nreuseport = yes\n")
        self.assertEqual(
            socketOptions(config.chargen), SocketOptions(backlog=9, sndbuf=4096, reuseport=True)
        )


class TLSFilesTests(SynchronousTestCase):
    """
    Tests for L{tlsFiles}.
    """

    def test_tls(self) -> None:
        """
        C{[tls]} gives the certificate, the key and the minimum version.
        """
        section = TLSConfig(certificate="/c.pem", key="/k.pem", minimum_version="1.3")
        self.assertEqual(
            tlsFiles(section), TLSFiles(certificate="/c.pem", key="/k.pem", minimumVersion="1.3")
        )


class WorkerValuesTests(SynchronousTestCase):
    """
    Tests for L{streamListeners} and L{workerPool}.
    """

    def test_streamServices(self) -> None:
        """
        Echo, web and the small services listen on streams.
        """
        self.assertEqual(STREAM_SERVICES, ("echo", "web", *SMALL_SERVICES))

    def test_accessLogOfWebListeners(self) -> None:
        """
        The web service's listeners carry its access log, which the parent
        checks before it starts a worker; the others carry none.
        """
        config = replaceSection(Config(), "echo", listen=("tcp:1",))
        config = replaceSection(config, "web", listen=("tcp:2",), access_log="/a.log")
        self.assertEqual(
            streamListeners(config),
            (
                SharedListener("echo", "tcp:1", socketOptions(config.echo)),
                SharedListener("web", "tcp:2", socketOptions(config.web), "/a.log"),
            ),
        )

    def test_workerPool(self) -> None:
        """
        The pool holds the count, the shared listeners, the shutdown grace
        and the whole configuration as the workers' tap.conf.
        """
        config = parseConfig("[netservices]\nworkers = 3\nshutdown_grace = 2\n", "mine")
        pool = workerPool(config)
        self.assertEqual(pool.count, 3)
        self.assertEqual(pool.shutdownGrace, 2.0)
        self.assertEqual(pool.listeners, streamListeners(config))
        self.assertEqual(parseConfig(pool.tapConf, "mine"), config)
