"""
Tests for the shape of a static file response on the web service's own
stack: a L{LimitedSite} serving a L{StaticFile}, its L{LimitedChannel} on the
nsepoll reactor's TCP connection (L{services.nsepoll._reactor.Server}, with
its flush and its lean read and write paths).  When the socket takes the
whole body, a keep-alive response is one C{send} of the status line and
headers with C{MSG_MORE}, one C{sendfile} of the whole body, and nothing
else: no piece of the body copied through the transport, no timed call
made (no send timer, whose clock runs only while the producer is paused),
no registration for writability.  The kernel's side is faked (C{sendfile}
reports the whole body taken), so the shape does not depend on the size of
the machine's socket buffers.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from services.nsepoll import _reactor as nsreactor
from services.web import HTTPLimits, LimitedSite
from services.web._static import StaticFile

from tests.support import RecordingSocket, buildReactor, response, tcpPair

#: The size of the file served: the bench's static file, 1 MiB.
SIZE = 1 << 20


class StaticShapeTests(SynchronousTestCase):
    """
    What a keep-alive GET of a 1 MiB file costs in calls to the kernel and
    to the reactor on nsepoll.
    """

    def setUp(self) -> None:
        www = Path(os.path.abspath(self.mktemp()))
        www.mkdir(parents=True)
        (www / "file.bin").write_bytes(os.urandom(SIZE))
        root = Resource()
        root.putChild(b"static", StaticFile(str(www)))
        self.reactor = buildReactor(self)
        self.site = LimitedSite(root, HTTPLimits(), reactor=self.reactor)
        self.site.log = lambda request: None  # type: ignore[method-assign]
        ours, self.peer = tcpPair()
        self.addCleanup(self.peer.close)
        self.addCleanup(ours.close)
        self.socket = RecordingSocket(ours)
        address = IPv4Address("TCP", "127.0.0.1", 4321)
        self.channel = self.site.buildProtocol(address)
        self.transport = nsreactor.Server(
            self.socket, self.channel, ("127.0.0.1", 4321), None, 1, self.reactor
        )
        self.channel.makeConnection(self.transport)
        self.addCleanup(self.transport.connectionLost, Failure(ConnectionDone()))
        self.sendfiles: list[tuple[int, int]] = []

        def sendfile(out: int, fd: int, offset: int, count: int) -> int:
            # The kernel took it all: what a socket with room for the body does.
            self.sendfiles.append((offset, count))
            return count

        self.patch(os, "sendfile", sendfile)
        self.timedCalls: list[float] = []
        callLater = self.reactor.callLater

        def recordingCallLater(delay: float, *args: Any, **kwargs: Any) -> Any:
            self.timedCalls.append(delay)
            return callLater(delay, *args, **kwargs)

        self.patch(self.reactor, "callLater", recordingCallLater)

    def get(self) -> None:
        """
        Send a keep-alive GET of the file, as wrk does, and flush as the
        reactor does after the read.
        """
        self.socket.sends.clear()
        self.sendfiles.clear()
        self.timedCalls.clear()
        self.transport.protocol.dataReceived(
            b"GET /static/file.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        )
        self.reactor._flush()

    def assertOneSendOneSendfile(self) -> None:
        """
        The last response was the headers in one C{send} with C{MSG_MORE},
        then the whole body in one C{sendfile}, and left nothing queued.
        """
        self.assertEqual(len(self.socket.sends), 1, "the body went through the transport")
        ((head, flags),) = self.socket.sends
        status, headers, body = response(head)
        self.assertEqual((status, headers[b"content-length"], body),
                         (b"HTTP/1.1 200 OK", b"%d" % (SIZE,), b""))
        self.assertEqual(flags, socket.MSG_MORE)
        self.assertEqual(self.sendfiles, [(0, SIZE)])
        self.assertEqual((self.transport.dataBuffer, self.transport._tempDataLen), (b"", 0))
        self.assertNotIn(self.transport, self.reactor.getWriters())
        # The body's producer is gone; the channel itself, as twisted.web
        # registers it for the whole connection, is the transport's producer.
        self.assertIs(self.transport.producer, self.channel)
        self.assertFalse(self.transport.producerPaused)

    def test_firstResponse(self) -> None:
        """
        The first response on a connection is one C{send} and one
        C{sendfile}.
        """
        self.get()
        self.assertOneSendOneSendfile()

    def test_keepAliveResponses(self) -> None:
        """
        Each later response on the same connection is one C{send} and one
        C{sendfile} too, and makes no timed call at all: the send timer is
        not armed (the producer was never paused) and the idle and header
        timeouts are not made anew.
        """
        self.get()
        for _ in range(3):
            self.get()
            self.assertOneSendOneSendfile()
            self.assertEqual(self.timedCalls, [])
