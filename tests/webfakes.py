"""
Fakes for the web service's unit tests: a service tree like
L{services.daemon.tree.NetservicesService} builds, a reactor whose threads run
synchronously (for prometheus_client's WSGI resource), and StubTreq
requests that complete without the global reactor.
"""

from __future__ import annotations

from typing import Any, Callable

from treq.testing import StubTreq
from twisted.application.service import MultiService, Service
from twisted.internet import _producer_helpers
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, Cooperator
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from services.stats import ConnectionStats, WebStats


class FakePort:
    """
    A listening port that only knows its address.
    """

    def __init__(self, address: Any) -> None:
        self.address = address

    def getHost(self) -> Any:
        """
        The address listened on.
        """
        return self.address


class FakeListener(Service):
    """
    A listener (like L{services.net.listener.ListenerService}): C{port} is
    L{None} until it listens.
    """

    def __init__(self, address: Any = None) -> None:
        self.port = FakePort(address) if address is not None else None


class FakeDiscovery(MultiService):
    """
    The discovery service as the web service sees it: a UDP listener,
    C{statusDetails()} with its peers and C{healthProblems()}.

    @ivar problems: what C{healthProblems()} says.
    """

    def __init__(self, peers: list[dict[str, Any]]) -> None:
        MultiService.__init__(self)
        self.setName("discovery")
        self.peers = peers
        self.problems: list[str] = []
        FakeListener(IPv4Address("UDP", "127.0.0.1", 8009)).setServiceParent(self)

    def healthProblems(self) -> list[str]:
        """
        Why the service cannot do its job, if it cannot.
        """
        return list(self.problems)

    def statusDetails(self) -> dict[str, Any]:
        """
        The peers known now, as C{/status} shows them.
        """
        return {"peers": list(self.peers)}


class FakeRoot(MultiService):
    """
    A root service with C{stats}, like C{NetservicesService}.
    """

    def __init__(self) -> None:
        MultiService.__init__(self)
        self.stats: dict[str, Any] = {}

    def addListeners(self, name: str, *addresses: Any, stats: Any = None) -> MultiService:
        """
        Add a service named C{name} with one listener per address (L{None}
        for a listener that is not listening).
        """
        service = MultiService()
        service.setName(name)
        for address in addresses:
            FakeListener(address).setServiceParent(service)
        service.setServiceParent(self)
        if stats is not None:
            self.stats[name] = stats
        return service


def fullRoot(peers: list[dict[str, Any]] | None = None) -> FakeRoot:
    """
    A tree with echo on TCP, IPv6 and UNIX, discovery with C{peers}, and web.
    """
    root = FakeRoot()
    echo = ConnectionStats(current=2, accepted=5, bytesIn=100, bytesOut=100)
    root.addListeners(
        "echo",
        IPv4Address("TCP", "127.0.0.1", 8007),
        IPv6Address("TCP", "::1", 8007),
        UNIXAddress(b"/tmp/echo.sock"),
        stats=echo,
    )
    FakeDiscovery(peers or []).setServiceParent(root)
    root.addListeners("web", IPv4Address("TCP", "127.0.0.1", 8080), stats=WebStats(requests=3))
    return root


class SynchronousThreads:
    """
    A reactor's thread API that runs everything at once in the caller's
    thread, so a WSGI resource answers within the request.
    """

    def callInThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        """
        Run C{f} now.
        """
        f(*args, **kwargs)

    def callFromThread(self, f: Callable[..., object], *args: object, **kwargs: object) -> None:
        """
        Run C{f} now.
        """
        f(*args, **kwargs)


class StubTestCase(SynchronousTestCase):
    """
    Requests through L{StubTreq}, synchronously.

    L{twisted.web.static.File} sends a body through a pull producer that
    Twisted drives with L{twisted.internet.task.cooperate}, on the global
    reactor.  Here it runs on L{clock} instead, which L{fetch} advances.

    @ivar clock: the clock of the producers' cooperator.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        cooperator = Cooperator(scheduler=lambda f: self.clock.callLater(0, f))
        self.patch(_producer_helpers, "cooperate", cooperator.cooperate)
        self.addCleanup(cooperator.stop)

    def fetch(self, stub: StubTreq, method: str, url: str, **kwargs: Any) -> tuple[Any, bytes]:
        """
        Make a request and return the response and its whole body.
        """
        response = self.settle(stub, stub.request(method, url, **kwargs))
        return response, self.settle(stub, stub.content(response))

    def settle(self, stub: StubTreq, d: Deferred[Any]) -> Any:
        """
        Pump StubTreq and the clock until C{d} has a result; return it.
        """
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(10_000):
            stub.flush()
            if results:
                break
            self.clock.advance(0)
        self.assertEqual(len(results), 1, "no answer")
        if isinstance(results[0], Failure):
            results[0].raiseException()
        return results[0]


def header(response: Any, name: str) -> str | None:
    """
    The single value of a response header, or None.
    """
    values = response.headers.getRawHeaders(name)
    if values is None:
        return None
    assert len(values) == 1, values
    return str(values[0])
