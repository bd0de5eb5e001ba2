# -*- test-case-name: tests.integration.test_plugin -*-
"""
The C{twistd} dropin for netservices: C{twistd -n netservices}.

Plugin scanning imports every dropin, so this file names the module that
builds the service and imports nothing of ours.
"""

from twisted.application.service import ServiceMaker

netservices = ServiceMaker(
    "netservices",
    "services.daemon.tap",
    "Echo (TCP), UDP discovery and HTTP services on one reactor.",
    "netservices",
)
