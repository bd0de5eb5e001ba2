"""
The reliability battery: real daemons under attack and load on loopback.
"""
