# -*- test-case-name: tests.unit.discovery.test_peers -*-
"""
The table of the other instances that discovery has heard.

Anyone on the segment can send announces, so the table holds each source to
a fair share: a source (one address and port: one socket) may place at most
C{maxPerSource} peers and C{maxPortsPerSource} distinct ports in it, nobody
is remembered for longer than C{maxTtl} whatever ttl it announces, and the
ports that the loop guards take from the table are at most
L{MAX_GUARDED_PORTS}.  One forging socket therefore costs a few entries for
a minute, not the whole table for an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTime

from services.discovery._wire import Message
from services.stats import DiscoveryStats

__all__ = ["MAX_GUARDED_PORTS", "STATUS_PEERS", "Peer", "PeerTable", "describe"]

#: At most this many announced ports join the loop guards (of the 28,000
#: or so ephemeral ports a client may be using).
MAX_GUARDED_PORTS = 1024
#: C{/status} lists this many peers; beyond, it counts them.
STATUS_PEERS = 32


def describe(address: tuple[Any, ...]) -> str:
    """
    C{host:port}, or C{[host]:port} for IPv6.
    """
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Peer:
    """
    Another instance, as last heard.

    @ivar id: its instance id.
    @ivar name: its name.
    @ivar host: the address its datagram came from.
    @ivar port: the port its datagram came from.
    @ivar services: service name to port numbers.
    @ivar ttl: seconds it may be remembered after C{lastSeen}.
    @ivar lastSeen: when it was last heard, by the time of the table's reactor.
    @ivar endpoints: service name to the C{host:port} endpoints that can be
        connected to from where it was heard.
    @ivar via: the local interface it was heard on, or C{""}.
    """

    id: str
    name: str
    host: str
    port: int
    services: Mapping[str, Sequence[int]]
    ttl: int
    lastSeen: float
    endpoints: Mapping[str, Sequence[str]] = field(default_factory=dict)
    via: str = ""

    @property
    def address(self) -> str:
        """
        C{host:port} (C{[host]:port} for IPv6).
        """
        return describe((self.host, self.port))

    @property
    def source(self) -> tuple[str, int]:
        """
        The address and port its datagram came from.
        """
        return (self.host, self.port)

    def asDict(self, now: float) -> dict[str, Any]:
        """
        A JSON-serializable description: C{name}, C{id}, C{address},
        C{services} (name to list of ports), C{endpoints} (name to list of
        C{host:port}), C{via}, C{age} (seconds since last heard) and C{ttl}.
        """
        return {
            "name": self.name,
            "id": self.id,
            "address": self.address,
            "services": {name: list(ports) for name, ports in self.services.items()},
            "endpoints": {name: list(found) for name, found in self.endpoints.items()},
            "via": self.via,
            "age": round(max(0.0, now - self.lastSeen), 3),
            "ttl": self.ttl,
        }


class PeerTable:
    """
    The instances heard, by instance id, each forgotten once its ttl has
    passed without news of it (see the module docstring for the limits).

    @ivar onExpired: called with each peer the table forgets, whoever asked
        it to (a sweep, or a reader of the table).
    """

    def __init__(
        self,
        reactor: IReactorTime,
        maxPeers: int = 1024,
        stats: DiscoveryStats | None = None,
        *,
        maxPerSource: int = 16,
        maxPortsPerSource: int = 64,
        maxTtl: int = 3600,
        onExpired: Callable[[Peer], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.maxPeers = maxPeers
        self.maxPerSource = maxPerSource
        self.maxPortsPerSource = maxPortsPerSource
        self.maxTtl = maxTtl
        self.stats = stats if stats is not None else DiscoveryStats()
        self.onExpired = onExpired
        self._peers: dict[str, Peer] = {}
        self._bySource: dict[tuple[str, int], set[str]] = {}
        # The endpoints of each peer by path (interface, IPv6?), with when heard.
        self._paths: dict[str, dict[tuple[str, bool], tuple[Mapping[str, Sequence[str]], float]]] = {}

    def heard(
        self,
        message: Message,
        address: tuple[Any, ...],
        endpoints: Mapping[str, Sequence[str]] | None = None,
        via: str = "",
    ) -> Peer | None:
        """
        Record an announce or reply from C{address}.

        @param endpoints: where its services can be reached from here; its
            source address with each announced port if L{None}.
        @param via: the interface it was heard on.
        @return: the new L{Peer} if this instance was not known, else L{None}.
        """
        source = (str(address[0]), int(address[1]))
        known = self._peers.get(message.id)
        if known is None and not self._room(source):
            self.stats.peersRefused += 1
            return None
        services = self._withinBudget(source, message.id, message.services)
        if endpoints is None:
            endpoints = {
                name: [describe((source[0], p)) for p in ports] for name, ports in services.items()
            }
        else:
            endpoints = {
                name: [e for e in found if int(e.rpartition(":")[2]) in services.get(name, ())]
                for name, found in endpoints.items()
            }
        ttl = message.ttl
        if ttl > self.maxTtl:
            self.stats.ttlCapped += 1
            ttl = self.maxTtl
        if known is not None and known.source != source:
            self._unindex(known)
        now = self.reactor.seconds()
        peer = self._peers[message.id] = Peer(
            message.id,
            message.name,
            source[0],
            source[1],
            services,
            ttl,
            now,
            self._merged(message.id, (via, ":" in source[0]), endpoints, now, ttl),
            via,
        )
        self._bySource.setdefault(source, set()).add(message.id)
        self.stats.peers = len(self._peers)
        return None if known is not None else peer

    def _merged(
        self,
        id: str,
        path: tuple[str, bool],
        endpoints: Mapping[str, Sequence[str]],
        now: float,
        ttl: float,
    ) -> dict[str, tuple[str, ...]]:
        """
        The endpoints heard from C{id} over every path (interface and
        family) that has been heard within C{ttl}, C{endpoints} (heard now
        over C{path}) first: an instance heard over IPv4 and IPv6 lists
        both families' endpoints.
        """
        paths = self._paths.setdefault(id, {})
        paths[path] = (endpoints, now)
        for key, (_, seen) in list(paths.items()):
            if now - seen >= ttl:
                del paths[key]
        merged: dict[str, list[str]] = {}
        for found, _ in sorted(paths.values(), key=lambda entry: entry[0] is not endpoints):
            for name, listed in found.items():
                into = merged.setdefault(name, [])
                into.extend(e for e in listed if e not in into)
        return {name: tuple(found) for name, found in merged.items() if found}

    def _room(self, source: tuple[str, int]) -> bool:
        """
        Whether a new peer from C{source} may be recorded (after forgetting
        the expired ones, if the table or the source's share is full).
        """
        for _ in range(2):
            full = len(self._peers) >= self.maxPeers
            if not full and len(self._bySource.get(source, ())) < self.maxPerSource:
                return True
            self.expire()
        return False

    def _withinBudget(
        self, source: tuple[str, int], id: str, services: Mapping[str, Sequence[int]]
    ) -> dict[str, tuple[int, ...]]:
        """
        C{services}, less the ports that would take C{source} past its share
        of distinct ports (those its other peers announced are free).
        """
        used: set[int] = set()
        for other in self._bySource.get(source, ()):
            if other != id:
                for ports in self._peers[other].services.values():
                    used.update(ports)
        kept: dict[str, tuple[int, ...]] = {}
        refused = 0
        for name, ports in services.items():
            mine = []
            for port in ports:
                if port in used or len(used) < self.maxPortsPerSource:
                    used.add(port)
                    mine.append(port)
                else:
                    refused += 1
            if mine:
                kept[name] = tuple(mine)
        self.stats.portsRefused += refused
        return kept

    def _unindex(self, peer: Peer) -> None:
        ids = self._bySource.get(peer.source)
        if ids is not None:
            ids.discard(peer.id)
            if not ids:
                del self._bySource[peer.source]

    def expire(self) -> list[Peer]:
        """
        Forget the peers whose ttl has passed, telling C{onExpired} of each;
        return them.
        """
        now = self.reactor.seconds()
        gone = [p for p in self._peers.values() if now - p.lastSeen >= p.ttl]
        for peer in gone:
            del self._peers[peer.id]
            self._paths.pop(peer.id, None)
            self._unindex(peer)
        self.stats.peersExpired += len(gone)
        self.stats.peers = len(self._peers)
        if self.onExpired is not None:
            for peer in gone:
                self.onExpired(peer)
        return gone

    def peers(self) -> list[Peer]:
        """
        The live peers, by name then id.
        """
        self.expire()
        return sorted(self._peers.values(), key=lambda p: (p.name, p.id))

    def snapshot(self) -> list[dict[str, Any]]:
        """
        The live peers as JSON-serializable dictionaries (see
        L{Peer.asDict}).
        """
        now = self.reactor.seconds()
        return [peer.asDict(now) for peer in self.peers()]

    def summary(self, limit: int = STATUS_PEERS) -> dict[str, Any]:
        """
        What C{/status} shows, bounded whatever the table holds: C{peers},
        the first C{limit} of L{snapshot}; and, when there are more,
        C{peersOmitted} (how many more) and C{sources} (how many source
        addresses they came from).
        """
        peers = self.peers()
        now = self.reactor.seconds()
        found: dict[str, Any] = {"peers": [peer.asDict(now) for peer in peers[:limit]]}
        if len(peers) > limit:
            found["peersOmitted"] = len(peers) - limit
            found["sources"] = len({peer.host for peer in peers})
        return found

    def guardedPorts(self) -> frozenset[int]:
        """
        The ports the peers announced, for the loop guards: at most
        L{MAX_GUARDED_PORTS}, the longest-known peers' first.
        """
        self.expire()
        found: set[int] = set()
        for peer in self._peers.values():
            for ports in peer.services.values():
                for port in ports:
                    if len(found) >= MAX_GUARDED_PORTS:
                        return frozenset(found)
                    found.add(port)
        return frozenset(found)

    def __len__(self) -> int:
        return len(self._peers)
