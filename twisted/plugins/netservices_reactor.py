# -*- test-case-name: tests.unit.nsepoll.test_reactor -*-
"""
The C{twistd} reactor dropin of netservices: C{twistd --reactor nsepoll}.

Plugin scanning imports every dropin, so this file only names the module
that installs the reactor and imports nothing of ours.
"""

from twisted.application.reactors import Reactor

nsepoll = Reactor(
    "nsepoll",
    "services.nsepoll",
    "epoll(4) reactor with write-through TCP/UNIX connections (netservices).",
)
