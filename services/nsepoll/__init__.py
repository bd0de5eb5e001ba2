"""
The C{nsepoll} reactor: Twisted's epoll reactor with a write-through fast path.
"""
