"""
What every service stands on: addresses, endpoint strings, listeners, TLS, the PROXY protocol,
systemd sockets, UDP helpers, connection caps and drain.
"""
