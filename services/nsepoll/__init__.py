# -*- test-case-name: tests.unit.nsepoll.test_reactor -*-
"""
The C{nsepoll} reactor: Twisted's epoll reactor with a write-through fast
path (L{services.nsepoll._reactor}; the transports' side of it is
L{services.nsepoll.fastpath}).

C{twistd --reactor nsepoll} selects it (the dropin is
C{twisted/plugins/netservices_reactor.py}); a program of your own installs
it before anything imports C{twisted.internet.reactor}::

    from services import nsepoll
    nsepoll.install()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.nsepoll._reactor import NetservicesReactor

__all__ = ["install"]


def install() -> NetservicesReactor:
    """
    Install L{NetservicesReactor} as the global reactor and return it.

    The reactor module is imported here, not with the package, so that
    L{services.nsepoll.fastpath} costs nothing to a process on another
    reactor.
    """
    from services.nsepoll._reactor import install as _install

    return _install()
