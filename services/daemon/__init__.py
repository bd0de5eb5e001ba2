"""
The daemon: the twistd plugin's Options and makeService, the service tree, workers.
"""
