# -*- test-case-name: tests.unit.net.test_listen -*-
"""
The network layer: what every service of netservices stands on.

It is internal to netservices (no public API: import its modules by their
full names from within the package).  It imports nothing of netservices
above it: only Twisted, L{services._twisted}, L{services.logs} and
L{services.stats}.

  - L{services.net.addresses}: socket addresses as people read them, and
    trusted networks;
  - L{services.net.descriptions}: stream endpoint strings, read and checked
    (C{haproxy:}, C{ssl:}, C{systemd:}, C{unixseq:} over Twisted's own);
  - L{services.net.endpoints}: the endpoints those strings become, on sockets
    bound here, passed by systemd or handed down by a parent;
  - L{services.net.sockets}: backlog, buffer sizes and C{SO_REUSEPORT};
  - L{services.net.listener}: the listener service and its accept errors;
  - L{services.net.tls}, L{services.net.proxyheader}, L{services.net.seqpacket}:
    TLS contexts, the PROXY protocol and UNIX C{SOCK_SEQPACKET} sockets;
  - L{services.net.datagram}, L{services.net.ownports}: UDP and UNIX datagram
    helpers (endpoint strings, sockets, rate limits) and the loop guard's
    "which ports are ours";
  - L{services.net.interfaces}: the host's network interfaces;
  - L{services.net.connections}, L{services.net.sendtimeout},
    L{services.net.drain}: open connections as C{/status} lists them, the
    send timeout, and the drain on shutdown;
  - L{services.net.defaults}: the one fallback to the global reactor.
"""

__all__: list[str] = []
