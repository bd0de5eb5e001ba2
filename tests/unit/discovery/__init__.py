"""
Unit tests of services.discovery.
"""
