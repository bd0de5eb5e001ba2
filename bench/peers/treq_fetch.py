"""
The minimal Twisted peer for downloads: treq streaming a URL's body into a
file, as the treq documentation shows it.

    python treq_fetch.py URL OUTPUT
"""

from __future__ import annotations

import sys

import treq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react


async def main(reactor: object, url: str, output: str) -> None:
    response = await treq.get(url, unbuffered=True)
    with open(output, "wb") as f:
        await treq.collect(response, f.write)


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor, sys.argv[1], sys.argv[2])))
