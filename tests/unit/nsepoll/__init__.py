"""
Unit tests of services.nsepoll.
"""
