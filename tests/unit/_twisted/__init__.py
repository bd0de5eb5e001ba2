"""
Unit tests of services._twisted.
"""
