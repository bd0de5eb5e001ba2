"""
Unit tests of services.daemon.
"""
