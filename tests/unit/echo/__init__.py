"""
Unit tests of services.echo.
"""
