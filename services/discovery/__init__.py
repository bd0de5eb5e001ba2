"""
Finding netservices instances on the LAN: UDP announces and queries, and DNS-SD over mDNS.
"""
