# -*- test-case-name: tests.unit._twisted.test_internals -*-
"""
Twisted's epoll reactor: what the nsepoll reactor (L{services.nsepoll._reactor})
reuses of it to run its own poll loop.

L{LeanEPollReactor} is the part of nsepoll that stands on the epoll
reactor's internals: its poll loop (each ready descriptor handled without a
log context), its flush queue (connections mixing in L{FlushMixin} are sent
after each batch of events, touching the transports' write buffers), and
the adoption of sockets with classes of the subclass's choosing.  Its
methods are the data path itself, so that using the internals costs no
call of its own; the choices (which connection and port classes) are the
subclass's, L{services.nsepoll._reactor.NetservicesReactor}.

Why one module: the main loop, the poll, the flush and the lean TCP
connection are one data path over the same internals of the epoll reactor
and the transports, registered together below; split, the data path would
cross modules on every event for no gain in clarity.
"""

from __future__ import annotations

import socket
import sys
from errno import EWOULDBLOCK
from typing import Any

from twisted.internet import error, main, posixbase
from twisted.logger import Logger
from twisted.python import log

from services._twisted import PrivateName, isA

try:
    from twisted.internet import epollreactor
except ImportError:  # pragma: no cover (no epoll: not Linux)
    epollreactor = None  # type: ignore[assignment]

__all__ = [
    "PRIVATE_NAMES",
    "FlushMixin",
    "LeanEPollReactor",
    "LeanTCPServerMixin",
]

# Looked up here, not imported, so that the registry still loads on a
# Twisted without it (the nsepoll fast path is off there: see fastPath).
_NO_FILEDESC = getattr(posixbase, "_NO_FILEDESC", None)

_reactor: Any = None


def _epollReactor() -> Any:
    # One reactor (an epoll descriptor and a waker pipe) per process is
    # enough to look its attributes up; it is never run.
    global _reactor
    if _reactor is None:
        from twisted.internet.epollreactor import EPollReactor

        _reactor = EPollReactor()
    return _reactor


class FlushMixin:
    """
    Mix into a Twisted TCP or UNIX connection class (before it): instead of
    registering for writability, C{startWriting} asks the reactor to flush
    the connection once the current batch of events is handled
    (L{LeanEPollReactor.flushLater}).

    @ivar _writing: whether the connection is registered for writability.
    @ivar _flushQueued: whether a flush is already asked for.
    """

    _writing = False
    _flushQueued = False
    #: For L{services.nsepoll.fastpath.canWriteDirectly}: sending straight to the
    #: socket when nothing is queued is as safe here as on Twisted's own.
    _plainSocketTransport = True

    def startWriting(self) -> None:
        """
        Send what is queued soon, from the reactor, without a system call
        now.
        """
        if self._writing or self._flushQueued:
            return
        self._flushQueued = True
        self.reactor.flushLater(self)  # type: ignore[attr-defined]

    def stopWriting(self) -> None:
        """
        No more writability events.
        """
        self._writing = False
        super().stopWriting()  # type: ignore[misc]


class LeanTCPServerMixin:
    """
    Mix into a Twisted TCP server connection class (before it): one call
    less per read, and two strings less per connection.

      - C{doRead} hands what it reads to the protocol itself, which
        C{tcp.Connection.doRead} does through C{_dataReceived}.
      - For an echo (L{services.echo.Echo}) that asked for it
        (L{echoInOneFrame}), C{doRead} does what the echo's
        C{dataReceived} and L{services._twisted.transports.writeDirectly}
        do, in the same order, in its own frame: one Python frame per
        read where there were three.  The protocol's C{bytesIn} and its
        factory's C{stats.bytesIn} and C{stats.bytesOut} count what was
        read; the echo is sent at once only when nothing is queued before
        it and the connection is neither closing nor closed; otherwise,
        and for whatever the kernel does not take (a partial send,
        C{EAGAIN}, an error), the bytes go to the transport's C{write},
        which queues them, pauses the echo when its buffer fills (the
        echo's backpressure and send timeout) and meets any error on its
        next send; then the echo's idle timer (C{_idle}, an
        L{services.net.idletimeout.IdleTimeouts}, or L{None}) is touched.
        Once TLS is started the protocol is the TLS layer, which is handed
        the bytes as usual.  The choice is a flag on the connection
        (a subclass of its own, chosen by C{__class__}, would turn the
        instance's attributes into a dictionary of their own: more bytes
        and slower lookups).
      - C{logstr} and C{repstr}, the connection's log prefix and C{repr},
        are made when asked for (rarely: the nsepoll loop logs without
        the connection's context) from what they are made of, instead of
        being kept by each connection (about 140 bytes).  A value set that
        differs from the one made (an adopted socket's C{repstr} names its
        local port) is kept.
      - The write path's flags that Twisted keeps on the class until they
        change (C{dataBuffer}, C{disconnecting}, C{_writeDisconnecting},
        C{TLS}) are the connection's own from the start: reading an
        instance's attribute is specialised by CPython, looking past it to
        the class is not, and L{writeDirectly} reads them for every write.
    """

    _logstr: str | None = None
    _repstr: str | None = None
    _oneFrameEcho = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.dataBuffer = b""
        self.disconnecting = 0
        self._writeDisconnecting = False
        self.TLS = False

    def doRead(self) -> Any:
        """
        Read up to C{bufferSize} bytes and hand them to the protocol; the
        reason the connection is lost when the read fails or finds the end.
        """
        try:
            data = self.socket.recv(self.bufferSize)  # type: ignore[attr-defined]
        except OSError as se:
            if se.args[0] == EWOULDBLOCK:
                return None
            return main.CONNECTION_LOST
        if not data:
            return main.CONNECTION_DONE
        if self._oneFrameEcho and not self.TLS:
            # The echo's dataReceived and writeDirectly, inline (see the
            # class docstring): two Python calls less per read.
            protocol = self.protocol  # type: ignore[attr-defined]
            n = len(data)
            protocol.bytesIn += n
            stats = protocol.factory.stats
            stats.bytesIn += n
            stats.bytesOut += n
            if (
                self._tempDataLen  # type: ignore[attr-defined]
                or self.dataBuffer
                or self.disconnecting
                or self._writeDisconnecting
                or not self.connected  # type: ignore[attr-defined]
            ):
                self.write(data)  # type: ignore[attr-defined]
            else:
                try:
                    sent = self.socket.send(data)  # type: ignore[attr-defined]
                except OSError:
                    # EAGAIN, or an error that the transport's next send reports.
                    sent = 0
                if sent < n:
                    self.write(data[sent:])  # type: ignore[attr-defined]
            idle = protocol._idle
            if idle is not None:
                # IdleTimeouts.touch, inline, as the echo's dataReceived does.
                deadlines = idle.deadlines
                del deadlines[protocol]
                deadlines[protocol] = idle.seconds() + idle.timeout
            return None
        self.protocol.dataReceived(data)  # type: ignore[attr-defined]
        return None

    def echoInOneFrame(self) -> bool:
        """
        From now on, echo what this connection reads within C{doRead}
        itself, without calling the protocol (see the class docstring):
        its protocol, an echo, asks for it once it is connected.

        @return: whether the connection echoes in one frame from now on.
        """
        self._oneFrameEcho = True
        return True

    def _madeLogstr(self) -> str:
        return f"{self._getLogPrefix(self.protocol)},{self.sessionno},{self.hostname}"  # type: ignore[attr-defined]

    def _madeRepstr(self) -> str:
        server = self.server  # type: ignore[attr-defined]
        port = server._realPortNumber if server is not None else None
        return f"<{self.protocol.__class__.__name__} #{self.sessionno} on {port}>"  # type: ignore[attr-defined]

    @property
    def logstr(self) -> str:
        """
        The prefix of the events logged in the connection's context.
        """
        kept = self._logstr
        return kept if kept is not None else self._madeLogstr()

    @logstr.setter
    def logstr(self, value: str) -> None:
        if value != self._madeLogstr():
            self._logstr = value

    @property
    def repstr(self) -> str:
        """
        The connection's C{repr}.
        """
        kept = self._repstr
        return kept if kept is not None else self._madeRepstr()

    @repstr.setter
    def repstr(self, value: str) -> None:
        if value != self._madeRepstr():
            self._repstr = value


#: The handler of errors in the main loop, as Twisted's own (same namespace,
#: same message).
_topHandler = Logger(namespace="twisted.internet.base").failureHandler(
    "Unexpected error in main loop"
)

#: The longest poll timeout, in seconds (epoll_wait takes a C int of
#: milliseconds), as ReactorBase.timeout caps it.
_LONGEST = 2147483

if epollreactor is not None:
    _EPOLLIN = epollreactor.EPOLLIN

    class LeanEPollReactor(epollreactor.EPollReactor):
        """
        The epoll reactor without a log context around each event, with
        L{FlushMixin} connections flushed after each batch of events, and
        adopted sockets given the classes the subclass names.

        @cvar tcpPort: the class of adopted listening TCP sockets.
        @cvar tcpServer: the class of adopted connected TCP sockets.
        @cvar unixPort: the class of adopted listening UNIX sockets.
        @cvar unixServer: the class of adopted connected UNIX sockets.
        @cvar datagramPort: the class of adopted UDP sockets.
        """

        tcpPort: Any
        tcpServer: Any
        unixPort: Any = None
        unixServer: Any = None
        datagramPort: Any
        _log = Logger()

        def __init__(self) -> None:
            self._toFlush: list[Any] = []
            epollreactor.EPollReactor.__init__(self)

        def flushLater(self, connection: Any) -> None:
            """
            Send what C{connection} queued once the current batch of events,
            or the current timed calls, are handled.
            """
            self._toFlush.append(connection)

        def _flush(self) -> None:
            """
            Hand every connection's queued bytes to the kernel; register
            those whose bytes the kernel did not all take for writability.
            """
            while self._toFlush:
                pending, self._toFlush = self._toFlush, []
                for connection in pending:
                    connection._flushQueued = False
                    if connection.disconnected or connection._writing:
                        continue
                    if self._sendQueued(connection):
                        continue
                    if not (
                        len(connection.dataBuffer) - connection.offset
                        or connection._tempDataLen
                        or connection.disconnecting
                        or connection._writeDisconnecting
                    ):
                        continue  # someone else (a sendfile producer) sent it all
                    # Exactly what a writability event would do: doWrite, with
                    # its errors and disconnection handled by the reactor.
                    self._doReadOrWrite(connection, connection.fileno(), epollreactor.EPOLLOUT)
                    if connection.connected and (
                        len(connection.dataBuffer) - connection.offset or connection._tempDataLen
                    ):
                        connection._writing = True
                        self.addWriter(connection)

        @staticmethod
        def _sendQueued(connection: Any) -> bool:
            """
            The common case of a flush, in one C{send()}: a connection that
            only has bytes written since the last flush, no pending close and
            no producer to resume.  Returns whether it handled the flush
            (everything sent, or the rest moved to the buffer that C{doWrite}
            sends, with the connection registered for writability).
            """
            producer = connection.producer
            if (
                connection.dataBuffer
                or not connection._tempDataLen
                or connection.disconnecting
                or connection._writeDisconnecting
                or (producer is not None
                    and (not connection.streamingProducer or connection.producerPaused))
            ):
                return False
            queued = connection._tempDataBuffer
            data = queued[0] if len(queued) == 1 else b"".join(queued)
            try:
                sent = connection.socket.send(data)
            except OSError:
                return False  # doWrite meets the error again and reports it
            connection._tempDataBuffer = []
            connection._tempDataLen = 0
            if sent < len(data):
                connection.dataBuffer = data
                connection.offset = sent
                connection._writing = True
                connection.reactor.addWriter(connection)
            return True

        def mainLoop(self) -> None:
            """
            Twisted's main loop, which runs the timed calls and computes the
            poll's timeout in five calls of its own per turn, with those
            calls made only on the turns that have timed calls due, new
            timed calls, calls from threads or a stop to handle; the other
            turns only poll, with the timeout of the earliest timed call.
            An error is logged and the loop goes on, as Twisted's does.
            """
            while self._started:
                with _topHandler:
                    self._leanLoop()
            # Not started any more: only logs that the loop terminated.
            epollreactor.EPollReactor.mainLoop(self)

        def _leanLoop(self) -> None:
            # Polled some other way (a subclass, a test): call it every turn.
            custom = getattr(self.doIteration, "__func__", None) is not LeanEPollReactor.doPoll
            poll = self.doIteration
            seconds = self.seconds
            epoll = self._poller.poll
            selectables = self._selectables
            get = selectables.get
            handle = self._doReadOrWrite
            while self._started:
                if self.threadCallQueue or self._newTimedCalls or self._justStopped:
                    self.runUntilCurrent()
                    timeout = self.timeout()
                else:
                    pending = self._pendingTimedCalls
                    if pending:
                        timeout = pending[0].time - seconds()
                        if timeout <= 0:
                            self.runUntilCurrent()
                            timeout = self.timeout()
                        elif timeout > _LONGEST:
                            timeout = _LONGEST
                    else:
                        timeout = None
                timeout = self.running and timeout
                if custom:
                    poll(timeout)
                    continue
                # doPoll, inline: one Python call less per turn, which a
                # single busy connection pays on every round trip.  Why
                # twice: doPoll stays what iterate() and subclasses call.
                if timeout is None:
                    timeout = -1
                try:
                    events = epoll(timeout, len(selectables))
                except InterruptedError:
                    continue
                for fd, event in events:
                    selectable = get(fd)
                    if selectable is None:
                        continue
                    if event == _EPOLLIN:
                        try:
                            why = (_NO_FILEDESC if selectable.fileno() == -1
                                   else selectable.doRead())
                        except BaseException:
                            why = sys.exc_info()[1]
                            log.err()
                        if why:
                            self._readEnded(selectable, why)
                        continue
                    try:
                        handle(selectable, fd, event)
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        self._log.failure("Unhandled error handling {selectable}",
                                          selectable=selectable)
                if self._toFlush:
                    try:
                        self._flush()
                    except KeyboardInterrupt:
                        raise
                    except BaseException:
                        self._log.failure("Unhandled error flushing connections")

        def _readEnded(self, selectable: Any, why: Any) -> None:
            """
            Disconnect C{selectable}, whose read ended with C{why} (end of
            file, an error), as C{_doReadOrWrite} does; an error doing so is
            logged and the loop goes on.
            """
            try:
                self._disconnectSelectable(selectable, why, True)
            except KeyboardInterrupt:
                raise
            except BaseException:
                self._log.failure("Unhandled error handling {selectable}", selectable=selectable)

        def runUntilCurrent(self) -> None:
            """
            Run the timed calls that are due, then flush what they wrote.
            """
            epollreactor.EPollReactor.runUntilCurrent(self)
            if self._toFlush:
                self._flush()

        def doPoll(self, timeout: float | None) -> None:
            """
            Wait for events for at most C{timeout} seconds and handle them.
            """
            if timeout is None:
                timeout = -1
            try:
                events = self._poller.poll(timeout, len(self._selectables))
            except InterruptedError:
                return
            get = self._selectables.get
            handle = self._doReadOrWrite
            for fd, event in events:
                selectable = get(fd)
                if selectable is None:
                    continue
                if event == _EPOLLIN:
                    # The common case, bytes to read: what _doReadOrWrite does
                    # for it, without its call and its tests of the other cases.
                    try:
                        why = _NO_FILEDESC if selectable.fileno() == -1 else selectable.doRead()
                    except BaseException:
                        why = sys.exc_info()[1]
                        log.err()
                    if why:
                        self._readEnded(selectable, why)
                    continue
                try:
                    handle(selectable, fd, event)
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    self._log.failure("Unhandled error handling {selectable}",
                                      selectable=selectable)
            if self._toFlush:
                try:
                    self._flush()
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    self._log.failure("Unhandled error flushing connections")

        doIteration = doPoll

        def adoptStreamPort(self, fileDescriptor: int, addressFamily: Any, factory: Any) -> Any:
            """
            Listen on an already bound socket (socket activation, workers
            sharing a listener) with this reactor's connection classes.
            """
            if addressFamily not in self._supportedAddressFamilies:
                raise error.UnsupportedAddressFamily(addressFamily)
            if self.unixPort is not None and addressFamily == socket.AF_UNIX:
                p = self.unixPort._fromListeningDescriptor(self, fileDescriptor, factory)
            else:
                p = self.tcpPort._fromListeningDescriptor(
                    self, fileDescriptor, addressFamily, factory
                )
            p.startListening()
            return p

        def adoptStreamConnection(
            self, fileDescriptor: int, addressFamily: Any, factory: Any
        ) -> Any:
            """
            Take over an already connected socket with this reactor's
            connection classes.
            """
            if addressFamily not in self._supportedAddressFamilies:
                raise error.UnsupportedAddressFamily(addressFamily)
            if self.unixServer is not None and addressFamily == socket.AF_UNIX:
                return self.unixServer._fromConnectedSocket(fileDescriptor, factory, self)
            return self.tcpServer._fromConnectedSocket(
                fileDescriptor, addressFamily, factory, self
            )

        def adoptDatagramPort(self, fileDescriptor: int, addressFamily: Any, protocol: Any,
                              maxPacketSize: int = 8192) -> Any:
            """
            Receive datagrams on an already bound socket with this reactor's
            UDP port class.
            """
            if addressFamily not in (socket.AF_INET, socket.AF_INET6):
                raise error.UnsupportedAddressFamily(addressFamily)
            p = self.datagramPort._fromListeningDescriptor(
                self, fileDescriptor, addressFamily, protocol, maxPacketSize=maxPacketSize
            )
            p.startListening()
            return p


PRIVATE_NAMES = (
    PrivateName(
        "twisted.internet.base:ReactorBase._started",
        "whether the main loop is to go on turning",
        ("services.nsepoll._reactor",),
        shape=isA(bool),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.base:ReactorBase._justStopped",
        "a stop whose shutdown the next runUntilCurrent starts: that turn runs it",
        ("services.nsepoll._reactor",),
        shape=isA(bool),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.base:ReactorBase._newTimedCalls",
        "timed calls not yet in the heap: that turn runs runUntilCurrent",
        ("services.nsepoll._reactor",),
        shape=isA(list),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.base:ReactorBase._pendingTimedCalls",
        "the heap of timed calls, whose head gives the poll's timeout",
        ("services.nsepoll._reactor",),
        shape=isA(list),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.tcp:Connection._dataReceived",
        "what a TCP read does with its bytes; LeanTCPServerMixin.doRead does the same inline",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.abstract:_LogOwner._getLogPrefix",
        "the protocol's part of a connection's log prefix (logstr), made when asked for",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.tcp:Port._realPortNumber",
        "the listening port number a connection's repr (repstr) names, made when asked for",
        ("services.nsepoll._reactor",),
        shape=lambda value: value is None or isinstance(value, int),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.posixbase:_NO_FILEDESC",
        "the reason a selectable whose descriptor is closed is disconnected",
        ("services.nsepoll._reactor",),
        shape=lambda value: value is not None,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._poller",
        "the epoll object the poll loop waits on",
        ("services.nsepoll._reactor",),
        shape=lambda value: callable(getattr(value, "poll", None)),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._selectables",
        "descriptor to selectable, to dispatch the poll's events",
        ("services.nsepoll._reactor",),
        shape=isA(dict),
        instance=_epollReactor,
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._doReadOrWrite",
        "Twisted's handling of the events the poll loop does not inline",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._disconnectSelectable",
        "disconnecting a selectable whose read or write failed",
        ("services.nsepoll._reactor",),
        fastPaths=('nsepoll',),
    ),
    PrivateName(
        "twisted.internet.epollreactor:EPollReactor._supportedAddressFamilies",
        "the address families adoptStreamPort/adoptStreamConnection accept",
        ("services.nsepoll._reactor",),
        shape=isA(list, tuple, set, frozenset),
        fastPaths=('nsepoll',),
    ),
)
