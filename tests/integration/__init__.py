"""
Tests against real processes: twistd, the netservices command, haproxy, make.
"""
