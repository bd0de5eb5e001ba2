"""
Unit tests of services.client.
"""
