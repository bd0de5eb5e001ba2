"""
Tests for the echo family's part of L{services.daemon.values}: each key of
C{[echo]}, C{[udp-echo]} and the small services' sections reaches the
settings its service is built from, with the defaults the service's own
settings have.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from services.config import (
    ChargenConfig,
    DiscardConfig,
    EchoConfig,
    QotdConfig,
    TimeConfig,
    UdpEchoConfig,
)
from services.daemon.values import (
    echoSettings,
    smallServiceSettings,
    socketOptions,
    udpEchoSettings,
)
from services.echo import EchoSettings, SmallServiceSettings, UdpEchoSettings
from services.net.sockets import SocketOptions


class EchoSettingsTests(SynchronousTestCase):
    """
    L{echoSettings} maps C{[echo]}.
    """

    def test_defaults(self) -> None:
        """
        The default section gives the default settings, but for the
        trusted proxies, which the section spells out (loopback, as
        L{None} means).
        """
        self.assertEqual(
            echoSettings(EchoConfig()),
            EchoSettings(trustedProxies=EchoConfig().trusted_proxies),
        )

    def test_everyKey(self) -> None:
        """
        Every key of the section reaches the settings.
        """
        section = EchoConfig(
            listen=("tcp:1",),
            idle_timeout=1.0,
            send_timeout=2.0,
            trusted_proxies=("10.0.0.0/8",),
            max_connections=3,
            backlog=4,
            sndbuf=5,
            rcvbuf=6,
            reuseport=True,
            nodelay=False,
        )
        self.assertEqual(
            echoSettings(section),
            EchoSettings(
                listen=("tcp:1",),
                idleTimeout=1.0,
                sendTimeout=2.0,
                maxConnections=3,
                noDelay=False,
                trustedProxies=("10.0.0.0/8",),
                socketOptions=SocketOptions(backlog=4, sndbuf=5, rcvbuf=6, reuseport=True),
            ),
        )


class UdpEchoSettingsTests(SynchronousTestCase):
    """
    L{udpEchoSettings} maps C{[udp-echo]}.
    """

    def test_defaults(self) -> None:
        """
        The default section gives the default settings.
        """
        self.assertEqual(udpEchoSettings(UdpEchoConfig()), UdpEchoSettings())

    def test_everyKey(self) -> None:
        """
        Every key but C{enabled} reaches the settings.
        """
        section = UdpEchoConfig(
            listen=("udp:1",), source_rate=1.0, source_burst=2, global_rate=3.0
        )
        self.assertEqual(
            udpEchoSettings(section),
            UdpEchoSettings(listen=("udp:1",), sourceRate=1.0, sourceBurst=2, globalRate=3.0),
        )


class SmallServiceSettingsTests(SynchronousTestCase):
    """
    L{smallServiceSettings} maps each small service's section.
    """

    def test_discard(self) -> None:
        """
        Discard's timeout is its idle timeout; it has no rate limits, and
        gets the settings' defaults for them.
        """
        section = DiscardConfig(idle_timeout=7.0, udp=("udp:9",), max_connections=5, backlog=3)
        settings = smallServiceSettings("discard", section)
        self.assertEqual(
            settings,
            SmallServiceSettings(
                listen=section.listen,
                timeout=7.0,
                maxConnections=5,
                socketOptions=SocketOptions(backlog=3),
                udp=("udp:9",),
            ),
        )

    def test_chargen(self) -> None:
        """
        Chargen's timeout is its send timeout, with its rate, and no UDP.
        """
        settings = smallServiceSettings("chargen", ChargenConfig(send_timeout=3.0, rate=5))
        self.assertEqual((settings.timeout, settings.rate, settings.udp), (3.0, 5, ()))

    def test_answers(self) -> None:
        """
        The answering services' send timeout and UDP rate limits reach the
        settings.
        """
        section = TimeConfig(send_timeout=2.0, source_rate=1.0, source_burst=2, global_rate=3.0)
        settings = smallServiceSettings("time", section)
        self.assertEqual(
            (settings.timeout, settings.sourceRate, settings.sourceBurst, settings.globalRate),
            (2.0, 1.0, 2, 3.0),
        )

    def test_quotes(self) -> None:
        """
        qotd's quotes are read from its file; without one there are none
        (the service then says its built-in quote).
        """
        self.assertEqual(smallServiceSettings("qotd", QotdConfig()).quotes, ())
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write("first\n\nsecond,\ntwo lines\n")
        settings = smallServiceSettings("qotd", QotdConfig(quotes=path))
        self.assertEqual(settings.quotes, ("first", "second,\r\ntwo lines"))


class SocketOptionsTests(SynchronousTestCase):
    """
    L{socketOptions} reads the socket keys a section has.
    """

    def test_absentKeys(self) -> None:
        """
        A section without the keys gets L{SocketOptions}' defaults.
        """
        self.assertEqual(socketOptions(UdpEchoConfig()), SocketOptions())
