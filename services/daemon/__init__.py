"""
The daemon, C{twistd netservices}: the only layer that turns configuration
sections into the values services take.

  - L{services.daemon.tap}: the twistd plugin's C{Options} and C{makeService};
  - L{services.daemon.tree}: the service tree built from a L{Config};
  - L{services.daemon.values}: each section's values;
  - L{services.daemon.small}: the small services' flags and place in the tree;
  - L{services.daemon.workers}: the supervisor of C{--workers}, with
    L{services.daemon.sharedlisteners} (what it binds for them),
    L{services.daemon.workerlog} (their log, relayed),
    L{services.daemon.workerprocess} (the worker's side) and
    L{services.daemon.workerstats} (their counters files).
"""
