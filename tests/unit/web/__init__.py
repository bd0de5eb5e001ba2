"""
Unit tests of services.web.
"""
