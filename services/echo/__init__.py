"""
RFC 862 echo over TCP, UDP, UNIX datagram and SEQPACKET sockets, its siblings (discard,
chargen, daytime, time, qotd), and the clients that probe them.
"""
