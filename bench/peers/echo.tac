"""
The minimal Twisted echo as a twistd application, for the start-up
comparison (same launcher as netservices and twistd web):

    BENCH_PORT=7007 twistd -n -y echo.tac
"""

import os

from twisted.application import internet, service
from twisted.internet import protocol
from twisted.protocols.wire import Echo

application = service.Application("echo")
internet.TCPServer(
    int(os.environ["BENCH_PORT"]), protocol.Factory.forProtocol(Echo), interface="127.0.0.1"
).setServiceParent(application)
