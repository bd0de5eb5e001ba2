# -*- test-case-name: tests.unit.discovery.test_net -*-
"""
The words for IPv4 broadcast targets that tap.conf, the CLI and discovery
share.  This module imports nothing, so that the configuration's parsers
(read by every command-line client) can name them without loading the
network layer.
"""

__all__ = ["AUTO_BROADCAST", "LIMITED_BROADCAST", "LIMITED_BROADCAST_ADDRESS"]

#: The keyword for the limited broadcast address, every host on the local
#: network segment (C{255.255.255.255}).
LIMITED_BROADCAST = "<broadcast>"

#: The address L{LIMITED_BROADCAST} stands for.
LIMITED_BROADCAST_ADDRESS = "255.255.255.255"

#: The keyword for the broadcast address of each IPv4 interface, read from
#: the kernel.
AUTO_BROADCAST = "auto"
