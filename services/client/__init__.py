"""
The client side: treq-based requests and downloads, proxies, name resolution and ping.
"""
