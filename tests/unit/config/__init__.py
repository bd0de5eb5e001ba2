"""
Unit tests of services.config.
"""
