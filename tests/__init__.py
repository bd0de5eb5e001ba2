"""
The netservices test suite (C{trial tests}, C{pytest}).

Property tests never fail on time: Hypothesis's default deadline (200 ms an
example) is a wall-clock limit that a loaded machine exceeds, so every
property test here runs without one, and a slow example is never an error.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "netservices", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("netservices")
