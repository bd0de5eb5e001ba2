"""
Unit tests of services.net.
"""
