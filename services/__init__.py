"""
netservices: Twisted network services (echo, discovery, web) and clients.

Every protocol is importable on its own; see the README for examples.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
