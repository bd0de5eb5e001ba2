"""
Unit tests, one package for each subpackage of services.
"""
