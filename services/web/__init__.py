"""
The HTTP service: a Site with limits, HTTP/2, static files, status, health and metrics.
"""
