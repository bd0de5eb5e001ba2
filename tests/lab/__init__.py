"""
The network lab: every service across hosts in network namespaces.
"""
