# -*- test-case-name: tests.unit.net.test_seqpacket -*-
"""
UNIX C{SOCK_SEQPACKET} sockets under the reactor: connections that keep
record boundaries.  Twisted has no transport for them, so this module
builds one on the reactor's own interfaces:

  - L{SeqpacketConnection}: the transport of one connection, the reactor's
    L{IReadDescriptor} and L{IWriteDescriptor}.  Each C{write()} is one
    record and each C{dataReceived()} gets one whole record.  It is an
    L{IConsumer} (a streaming producer is paused while more than
    C{bufferSize} bytes wait to be sent) and an L{IPushProducer} (paused, it
    reads nothing, so the kernel holds the peer back).
  - L{SeqpacketPort}: a listening socket (C{unixseq:PATH[:mode=...]}), whose
    file gets C{mode} and is removed when the port stops;
  - L{SeqpacketServerEndpoint}, L{SeqpacketClientEndpoint}: the endpoints.

A record of zero bytes cannot be told from the end of the connection (both
read as nothing), so it is taken as the end, and C{write(b"")} sends none.

Why one module: it is one transport, as Twisted's own C{tcp.py} and
C{unix.py} are: the connection, its listening port and their endpoints
share the socket handling, the reactor registration and the record rules,
and none of them is of use without the others.

Use it in your own application::

    from services.echo import EchoFactory
    from services.net.seqpacket import SeqpacketServerEndpoint

    SeqpacketServerEndpoint(reactor, "/run/echo.seq", mode=0o660).listen(EchoFactory())
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections import deque
from typing import Any

from twisted.internet import error
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableProtocol,
    IListeningPort,
    IProducer,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReadDescriptor,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
    ITransport,
    IWriteDescriptor,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from services import logs

__all__ = [
    "MAX_RECORD",
    "SeqpacketClientEndpoint",
    "SeqpacketConnection",
    "SeqpacketPort",
    "SeqpacketServerEndpoint",
    "parseSeqpacketDescription",
    "removeStaleSocket",
]

#: The largest record read whole; Linux's default socket buffers
#: (C{net.core.wmem_default}, 208 KiB) cap what a peer can send below it.
#: A larger record is dropped, and counted in the factory's C{stats.oversize}.
MAX_RECORD = 256 * 1024

#: Records read, and connections accepted, per read event, so one peer
#: cannot hold the reactor.
_PER_EVENT = 16


@implementer(ITransport, IConsumer, IPushProducer, IReadDescriptor, IWriteDescriptor)
class SeqpacketConnection:
    """
    One connected C{SOCK_SEQPACKET} socket, as a transport.

    @ivar socket: the connected, non-blocking socket.
    @ivar protocol: the protocol it delivers records to.
    @ivar bufferSize: queued bytes beyond which a registered streaming
        producer is paused.
    @ivar maxRecord: the largest record read whole.
    @ivar oversize: records dropped for being larger than C{maxRecord}
        (read, or refused by the kernel when sent).
    @ivar connected: whether the connection is open.
    @ivar disconnecting: whether it closes once the queue is sent.
    """

    _log = Logger(observer=logs.observer)
    bufferSize = 256 * 1024

    def __init__(
        self,
        skt: socket.socket,
        protocol: IProtocol,
        reactor: Any,
        stats: Any = None,
        maxRecord: int = MAX_RECORD,
    ) -> None:
        self.socket = skt
        self.protocol = protocol
        self.reactor = reactor
        self.maxRecord = maxRecord
        self.oversize = 0
        self._stats = stats
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._fileno = skt.fileno()
        self.connected = True
        self.disconnecting = False
        self._reading = False
        self._writing = False
        self._paused = False
        self.producer: IPushProducer | None = None
        self._producerPaused = False

    # The reactor's side

    def fileno(self) -> int:
        """
        The socket's descriptor (-1 once closed).
        """
        return self._fileno

    def logPrefix(self) -> str:
        """
        How Twisted's log lines name this connection.
        """
        return "seqpacket"

    def startReading(self) -> None:
        """
        Have the reactor call L{doRead} when records arrive.
        """
        if self.connected and not self._reading:
            self._reading = True
            self.reactor.addReader(self)

    def stopReading(self) -> None:
        """
        Read nothing until L{startReading}.
        """
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def _startWriting(self) -> None:
        if not self._writing:
            self._writing = True
            self.reactor.addWriter(self)

    def _stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)

    # Like Twisted's own transports, doRead and doWrite return an exception
    # (not a Failure) for the reactor to pass to connectionLost.
    def doRead(self) -> BaseException | None:  # type: ignore[override]
        """
        Deliver the waiting records, one C{dataReceived} each.

        @return: why the connection ended, if it did.
        """
        for _ in range(_PER_EVENT):
            if not self._reading:
                return None
            try:
                data, _, flags, _ = self.socket.recvmsg(self.maxRecord)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                return error.ConnectionLost(e.strerror)
            if not data:
                return self._readEnded()
            if flags & socket.MSG_TRUNC:
                self._dropOversize(f"a record larger than {self.maxRecord} bytes arrived")
                continue
            self.protocol.dataReceived(data)
        return None

    def _readEnded(self) -> BaseException | None:
        if not IHalfCloseableProtocol.providedBy(self.protocol):
            return error.ConnectionDone()
        self.stopReading()
        self.protocol.readConnectionLost()  # type: ignore[attr-defined]
        return None

    def _dropOversize(self, what: str) -> None:
        self.oversize += 1
        if self._stats is not None and hasattr(self._stats, "oversize"):
            self._stats.oversize += 1
        self._log.debug("seqpacket: dropped a record: {what}", what=what)

    def doWrite(self) -> BaseException | None:  # type: ignore[override]
        """
        Send queued records until the socket's buffer is full.

        @return: why the connection ended, if it did.
        """
        while self._queue:
            record = self._queue[0]
            try:
                self.socket.send(record)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                if e.errno != errno.EMSGSIZE:
                    return error.ConnectionLost(e.strerror)
                self._dropOversize(f"the kernel refused a record of {len(record)} bytes")
            self._queue.popleft()
            self._queued -= len(record)
        self._stopWriting()
        if self.disconnecting:
            return error.ConnectionDone()
        if self._producerPaused and self.producer is not None:
            self._producerPaused = False
            self.producer.resumeProducing()
        return None

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection ended: close the socket, tell the protocol.
        """
        if not self.connected:
            return
        self.connected = False
        self.stopReading()
        self._stopWriting()
        self._queue.clear()
        self._queued = 0
        self.socket.close()
        self._fileno = -1
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()
        self.protocol.connectionLost(reason)

    # ITransport

    def write(self, data: bytes) -> None:
        """
        Queue C{data} as one record.
        """
        if not self.connected or self.disconnecting or not data:
            return
        self._queue.append(bytes(data))
        self._queued += len(data)
        self._startWriting()
        producer = self.producer
        if self._queued > self.bufferSize and producer is not None and not self._producerPaused:
            self._producerPaused = True
            producer.pauseProducing()

    def writeSequence(self, data: Any) -> None:
        """
        Queue the pieces of C{data} as one record.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close once every queued record is sent.
        """
        if not self.connected or self.disconnecting:
            return
        self.disconnecting = True
        self.stopReading()
        self._startWriting()

    def abortConnection(self) -> None:
        """
        Close now, dropping what is queued.
        """
        if not self.connected:
            return
        self.stopReading()
        self._stopWriting()
        self.disconnecting = True
        self.reactor.callLater(0, self.connectionLost, Failure(error.ConnectionAborted()))

    def getPeer(self) -> UNIXAddress:
        """
        The peer's address (a client's socket usually has no name).
        """
        return _address(self.socket.getpeername)

    def getHost(self) -> UNIXAddress:
        """
        This side's address.
        """
        return _address(self.socket.getsockname)

    def getHandle(self) -> socket.socket:
        """
        The socket.
        """
        return self.socket

    # IConsumer

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Pause C{producer} (a streaming one) while too much is queued.
        """
        if not streaming:
            raise ValueError("only streaming (push) producers are supported")
        self.producer = producer  # type: ignore[assignment]  # streaming: a push producer
        self._producerPaused = False

    def unregisterProducer(self) -> None:
        """
        Stop pausing the producer.
        """
        self.producer = None

    # IPushProducer

    def pauseProducing(self) -> None:
        """
        Read nothing, so the kernel holds the peer back.
        """
        self._paused = True
        self.stopReading()

    def resumeProducing(self) -> None:
        """
        Read again.
        """
        self._paused = False
        if not self.disconnecting:
            self.startReading()

    def stopProducing(self) -> None:
        """
        The consumer is gone: close.
        """
        self.loseConnection()

    @property
    def paused(self) -> bool:
        """
        Whether reading is paused for backpressure.
        """
        return self._paused


def _address(get: Any) -> UNIXAddress:
    try:
        name = get()
    except OSError:
        name = None
    return UNIXAddress(name or None)


def removeStaleSocket(path: str, kind: int = socket.SOCK_SEQPACKET) -> None:
    """
    Remove a UNIX socket file of type C{kind} at C{path} that no process
    listens on any more (left by a process that did not stop cleanly).
    """
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, kind)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


@implementer(IListeningPort, IReadDescriptor)
class SeqpacketPort:
    """
    A listening C{SOCK_SEQPACKET} socket at C{path}.

    @ivar socket: the listening socket once listening.
    @ivar keepFile: leave the socket file when stopping (it belongs to the
        parent process that bound it).
    """

    _log = Logger(observer=logs.observer)

    def __init__(
        self,
        reactor: Any,
        path: str,
        factory: IProtocolFactory,
        backlog: int = 50,
        mode: int | None = None,
        fileno: int | None = None,
    ) -> None:
        self.reactor = reactor
        self.path = path
        self.factory = factory
        self.backlog = backlog
        self.mode = mode
        self._adopt = fileno
        self.keepFile = fileno is not None
        self.socket: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._reading = False

    def startListening(self) -> None:
        """
        Bind (or adopt), set the file's mode, listen, and accept.

        @raise OSError: when the socket cannot be bound.
        """
        if self._adopt is not None:
            skt = socket.socket(fileno=os.dup(self._adopt))
        else:
            removeStaleSocket(self.path)
            skt = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                skt.bind(self.path)
                # 666 unless told, as Twisted's unix: and our unixgram: files.
                os.chmod(self.path, 0o666 if self.mode is None else self.mode)
                skt.listen(self.backlog)
            except BaseException:
                skt.close()
                raise
        skt.setblocking(False)
        info = os.stat(self.path) if os.path.exists(self.path) else None
        self._inode = None if info is None else (info.st_dev, info.st_ino)
        self.socket = skt
        self.factory.doStart()
        self.startReading()

    def startReading(self) -> None:
        """
        Accept connections.
        """
        if self.socket is not None and not self._reading:
            self._reading = True
            self.reactor.addReader(self)

    def stopReading(self) -> None:
        """
        Accept none until L{startReading} (another process accepts).
        """
        if self._reading:
            self._reading = False
            self.reactor.removeReader(self)

    def fileno(self) -> int:
        """
        The listening socket's descriptor.
        """
        return self.socket.fileno() if self.socket is not None else -1

    def logPrefix(self) -> str:
        """
        How Twisted's log lines name this port.
        """
        return "seqpacket"

    def doRead(self) -> None:
        """
        Accept the waiting connections (a bounded number at once).
        """
        assert self.socket is not None
        for _ in range(_PER_EVENT):
            try:
                skt, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    # Out of descriptors: retry in a second instead of spinning.
                    self._log.warn("seqpacket: cannot accept on {path}: {error}",
                                   path=self.path, error=e.strerror)
                    self.stopReading()
                    self.reactor.callLater(1.0, self.startReading)
                return
            self._connected(skt)

    def _connected(self, skt: socket.socket) -> None:
        skt.setblocking(False)
        protocol = self.factory.buildProtocol(UNIXAddress(None))
        if protocol is None:
            skt.close()
            return
        transport = SeqpacketConnection(skt, protocol, self.reactor, getattr(self.factory, "stats", None))
        protocol.makeConnection(transport)
        transport.startReading()

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor dropped the port (it is shutting down): stop.
        """
        self.stopListening()

    def stopListening(self) -> Deferred[None]:
        """
        Close the socket and remove its file (unless it is someone else's
        now, or the parent's).
        """
        skt, self.socket = self.socket, None
        if skt is None:
            return succeed(None)
        self.stopReading()
        skt.close()
        if not self.keepFile:
            self._unlink()
        self.factory.doStop()
        return succeed(None)

    def _unlink(self) -> None:
        try:
            info = os.stat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                os.unlink(self.path)
        except OSError:
            pass

    def getHost(self) -> UNIXAddress:
        """
        The path listened on.
        """
        return UNIXAddress(self.path)


def parseSeqpacketDescription(description: str) -> tuple[str, int | None, int | None]:
    """
    The path, mode and backlog of C{unixseq:PATH[:mode=OCTAL][:backlog=N]}.

    @raise ValueError: saying what is allowed.
    """
    kind, _, rest = description.partition(":")
    if kind.lower() != "unixseq":
        raise ValueError("expected unixseq:PATH")
    path, *options = rest.split(":")
    if not path:
        raise ValueError("unixseq: needs a path, e.g. unixseq:/run/netservices/echo.seq")
    mode = backlog = None
    for option in options:
        key, equals, value = option.partition("=")
        try:
            if key == "mode" and equals:
                mode = int(value, 8)
                if not 0 <= mode <= 0o7777:
                    raise ValueError
            elif key == "backlog" and equals:
                backlog = int(value)
                if backlog < 1:
                    raise ValueError
            else:
                raise KeyError(option)
        except KeyError:
            raise ValueError(f"unixseq: unknown option {option!r}; it takes mode= and backlog=") from None
        except ValueError:
            raise ValueError(
                f"unixseq: bad {key}= {value!r} (mode: octal, e.g. 660; backlog: a whole number >= 1)"
            ) from None
    return path, mode, backlog


@implementer(IStreamServerEndpoint)
class SeqpacketServerEndpoint:
    """
    Listens on a C{SOCK_SEQPACKET} socket at C{path}, or adopts the one a
    parent process bound (C{fileno}).
    """

    def __init__(
        self,
        reactor: Any,
        path: str,
        backlog: int = 50,
        mode: int | None = None,
        fileno: int | None = None,
    ) -> None:
        self._reactor = reactor
        self.path = path
        self.backlog = backlog
        self.mode = mode
        self.fileno = fileno

    @classmethod
    def fromDescription(
        cls, reactor: Any, description: str, backlog: int = 50, fileno: int | None = None
    ) -> SeqpacketServerEndpoint:
        """
        The endpoint of C{unixseq:PATH[:mode=...][:backlog=...]}; C{backlog}
        when the description sets none.
        """
        path, mode, own = parseSeqpacketDescription(description)
        return cls(reactor, path, own or backlog, mode, fileno)

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Bind and listen now.
        """
        port = SeqpacketPort(
            self._reactor, self.path, protocolFactory, self.backlog, self.mode, self.fileno
        )
        try:
            port.startListening()
        except OSError:
            return fail()
        return succeed(port)


@implementer(IStreamClientEndpoint)
class SeqpacketClientEndpoint:
    """
    Connects to a C{SOCK_SEQPACKET} socket at C{path}.
    """

    def __init__(self, reactor: Any, path: str) -> None:
        self._reactor = reactor
        self.path = path

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect (a UNIX connection is made or refused at once).
        """
        skt = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            skt.connect(self.path)
        except OSError as e:
            skt.close()
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.EAGAIN):
                return fail(error.ConnectionRefusedError(e.errno, f"{e.strerror}: {self.path}"))
            return fail(error.ConnectError(e.errno, f"{e.strerror}: {self.path}"))
        skt.setblocking(False)
        protocol = protocolFactory.buildProtocol(UNIXAddress(self.path))
        if protocol is None:
            skt.close()
            return fail(error.ConnectError(string="the factory built no protocol"))
        transport = SeqpacketConnection(skt, protocol, self._reactor)
        protocol.makeConnection(transport)
        transport.startReading()
        return succeed(protocol)
