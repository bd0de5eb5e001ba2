# -*- test-case-name: tests.integration.test_client_cli -*-
"""
C{netservices fetch URL}: one HTTP request from the command line, through
L{services.client}: the options, how the response and C{-v} are shown, and
the run.  What the arguments ask for is checked first, into a
L{services.cli.fetchplan.Plan}.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import ILogObserver, formatEvent, globalLogBeginner
from zope.interface import implementer

from services import logs
from services.cli import exits
from services.cli.arguments import convert, number, wholeNumber
from services.cli.fetchplan import MISSING, Plan, UnusableArgument, unusableCA, unwritable
from services.client import (
    DEFAULT_USER_AGENT,
    HTTPStatusError,
    Response,
    TLSPolicy,
    download,
    makeClient,
    makePool,
    request,
)

__all__ = ["EXAMPLES", "register", "run"]

DESCRIPTION = """\
Send one HTTP or HTTPS request and print the response body on stdout.

GET by default, POST when -d or --json gives a body.  Redirects are followed
for GET and HEAD (-L: for every method), up to --max-redirs; Authorization
and Cookie go only to the first URL's origin.  https verifies the server's
certificate and host name.  Proxies come from -x, else from http_proxy,
https_proxy and no_proxy (or HTTP_PROXY...); https goes through a proxy in a
CONNECT tunnel.  The body is printed as it came (still compressed, if the
server compressed it) unless --compressed asks for gzip or deflate and decodes
it.  -o does not save an error status (400 or more) as the file: it exits with
22 and leaves the file as it was, unless --keep-error.  Errors are one line on
stderr, with the exit statuses below.
"""

#: Examples for `netservices --help`.
EXAMPLES = (
    "netservices fetch http://127.0.0.1:8080/ -i",
    "netservices fetch http://127.0.0.1:8080/metrics --compressed -m 10 -o metrics.txt",
)

EPILOG = f"""\
examples:
  netservices fetch http://127.0.0.1:8080/ -i
  netservices fetch http://127.0.0.1:8080/status -q verbose=1 -H 'X-Trace: 1' -A probe/1.0 -v
  netservices fetch http://127.0.0.1:8080/metrics --compressed -o metrics.txt -m 60 --retry 3 --max-size 1G
  netservices fetch 'http://[::1]:8080/health' -f
  netservices fetch http://127.0.0.1:8080/ -d name=Ada -f                       # / takes no POST: 405, exit 22
  netservices fetch http://127.0.0.1:8080/ -X PUT --json '{{"n": 1}}' -o out.json  # 405 not saved: exit 22
  netservices fetch http://127.0.0.1:8080/ -X DELETE -o answer.html --keep-error  # saved anyway: exit 0
  netservices fetch https://127.0.0.1:8443/ --cacert ca.pem -u admin:secret -L --max-redirs 3
  netservices fetch https://127.0.0.1:8443/ -k
  https_proxy=http://127.0.0.1:3128 netservices fetch https://example.com/ -v
  netservices fetch http://example.com/ -x http://127.0.0.1:3128

exit status:
{exits.exitCodesText(meanings={exits.FAILURE: "any other error"})}
"""


def register(subparsers: Any) -> None:
    """
    Add the C{fetch} command.
    """
    p = subparsers.add_parser(
        "fetch",
        help="send an HTTP request and print the response",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="an http:// or https:// URL (http:// if none)")
    p.add_argument(
        "-X", "--request", dest="method", metavar="METHOD",
        help="the HTTP method (default: GET, or POST with -d or --json), e.g. -X DELETE",
    )
    p.add_argument(
        "-q", "--query", action="append", default=[], metavar="NAME=VALUE",
        help="add a query parameter to the URL, URL-encoded (repeatable), e.g. -q q=a+b",
    )
    p.add_argument(
        "-d", "--data", action="append", default=[], metavar="NAME=VALUE",
        help="add a form field; the body is sent as application/x-www-form-urlencoded "
        "(repeatable), e.g. -d name=Ada",
    )
    p.add_argument(
        "--json", metavar="TEXT",
        help="send TEXT (checked to be JSON) as the body, as application/json, "
        "e.g. --json '{\"n\": 1}'",
    )
    p.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="add a request header (repeatable), e.g. -H 'Accept: text/plain'",
    )
    p.add_argument(
        "-A", "--user-agent", metavar="UA",
        help=f"the User-Agent (default: {DEFAULT_USER_AGENT}), e.g. -A 'probe/1.0'",
    )
    p.add_argument(
        "-u", "--user", metavar="USER:PASSWORD",
        help="HTTP basic authentication, sent to the first URL's origin only, e.g. -u admin:secret",
    )
    p.add_argument(
        "-x", "--proxy", metavar="URL",
        help="use this HTTP proxy for http and https (overrides http_proxy and https_proxy; "
        "no_proxy still applies; '' for none), e.g. -x http://127.0.0.1:3128",
    )
    p.add_argument(
        "--cacert", metavar="FILE",
        help="also trust the certificate authorities in this PEM file, e.g. --cacert ca.pem",
    )
    p.add_argument(
        "-k", "--insecure", action="store_true",
        help="do not verify https certificates or host names (prints a warning)",
    )
    p.add_argument(
        "-L", "--location", action="store_true",
        help="follow redirects for every method, not only GET and HEAD",
    )
    p.add_argument(
        "--max-redirs", type=_count, default=10, metavar="N",
        help="fail after N redirects (default: 10), e.g. --max-redirs 3",
    )
    p.add_argument(
        "-m", "--max-time", type=_seconds, metavar="SECONDS",
        help="give up after this long, body included (default: no limit), e.g. -m 2.5",
    )
    p.add_argument(
        "--retry", type=_count, default=0, metavar="N",
        help="retry up to N times, with exponential backoff from 0.5 s, after a "
        "connection error or a 502, 503 or 504 (idempotent methods) (default: 0)",
    )
    p.add_argument(
        "--max-size", type=_size, metavar="BYTES",
        help="fail if the body is larger (decoded bytes, with --compressed) "
        "(suffixes K, M, G), e.g. --max-size 10M",
    )
    p.add_argument(
        "--compressed", action="store_true",
        help="ask for a gzip or deflate body and decode it (without it the body is "
        "written as it came, and no Accept-Encoding is sent)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE",
        help="write the body to FILE (through a new FILE.<random>.part, renamed when "
        "complete) instead of stdout, with a progress bar when stderr is a terminal; "
        "an error status is not saved (exit 22) unless --keep-error, e.g. -o page.html",
    )
    p.add_argument(
        "--keep-error", action="store_true",
        help="with -o, save the body of an error status (400 or more) too, and exit 0",
    )
    p.add_argument(
        "-i", "--include", action="store_true",
        help="print the status line and headers before the body",
    )
    p.add_argument(
        "-f", "--fail", action="store_true",
        help="on HTTP status 400 or more, print nothing and exit with 22",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true",
        help="show the request, the response headers, redirects and retries on stderr",
    )
    p.set_defaults(run=run)


_count = wholeNumber(0)
_seconds = number(0, inclusive=False)


def _size(text: str) -> int:
    from services.config import parseSize

    return convert(parseSize)(text)  # type: ignore[no-any-return]


def _statusBlock(response: Response) -> bytes:
    lines = [f"{response.version} {response.status} {response.phrase}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


@implementer(ILogObserver)
class _VerboseObserver:
    """
    Prints netservices' own log events on stderr, curl -v style: C{>} the
    request, C{<} the response headers, C{*} the rest.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        if not str(event.get("log_namespace", "")).startswith("services."):
            return
        text = formatEvent(event)
        lines: list[str]
        if "requestHeaders" in event:
            lines = [f"> {text}"] + [f"> {n}: {v}" for n, v in event["requestHeaders"]]
        elif "responseHeaders" in event:
            lines = [f"< {text}"] + [f"< {n}: {v}" for n, v in event["responseHeaders"]]
        else:
            lines = [f"* {text}"]
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()


class _ProgressBar:
    """
    A tqdm progress bar for C{-o}, shown only when stderr is a terminal.
    """

    def __init__(self, name: str, stream: IO[str]) -> None:
        self._name = name
        self._stream = stream
        self._bar: Any = None

    def __call__(self, received: int, total: int | None) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=self._name, unit="B", unit_scale=True,
                unit_divisor=1024, file=self._stream, leave=True,
            )
        self._bar.update(received - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run(reactor: Any, args: argparse.Namespace) -> Deferred[int]:
    """
    Run C{fetch} with parsed C{args}; fires with the exit status.
    """
    return ensureDeferred(fetch(reactor, args, os.environ, sys.stdout.buffer, sys.stderr))


async def fetch(
    reactor: Any,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    stdout: IO[bytes],
    stderr: IO[str],
) -> int:
    """
    Send the request C{args} describe; write the response to C{stdout} (or
    C{-o FILE}) and errors to C{stderr}.

    @return: the exit status (L{services.cli.exits}).
    """

    def fail(code: int, message: str) -> int:
        stderr.write(f"netservices fetch: {message}\n")
        stderr.flush()
        return code

    try:
        plan = Plan.fromArgs(args, environ)
    except UnusableArgument as e:
        return fail(exits.USAGE, str(e))
    problem = unusableCA(args.cacert)
    if problem is not None:
        return fail(exits.USAGE, f"--cacert {args.cacert}: {problem}")
    try:
        tls = TLSPolicy(cafile=args.cacert, verify=not args.insecure)
    except Exception as e:
        return fail(exits.USAGE, f"--cacert {args.cacert}: not a usable PEM file ({exits.sslText(e)})")
    problem = unwritable(args.output)
    if problem is not None:
        return fail(exits.WRITE_ERROR, f"-o {args.output}: {problem}")
    if args.insecure:
        fail(0, "warning: --insecure: https certificates and host names are NOT verified")
    if args.verbose:
        logs.setLevel("debug")
        globalLogBeginner.beginLoggingTo([_VerboseObserver(stderr)], redirectStandardIO=False)

    def onResponse(response: Response) -> None:
        if args.fail and response.status >= 400:
            raise exits.HTTPError(response.status, response.phrase, response.url)
        if args.include:
            stdout.write(_statusBlock(response))
            stdout.flush()

    pool = makePool(reactor)
    client = makeClient(reactor, pool=pool, proxies=plan.proxies, tls=tls, userAgent=plan.userAgent)
    options: dict[str, Any] = {
        "params": plan.params or None,
        "data": plan.form or None,
        "headers": plan.headers,
        "auth": plan.auth,
        "userAgent": plan.userAgent,
        "followRedirects": True if args.location else None,
        "maxRedirects": args.max_redirs,
        "retries": args.retry,
        "timeout": args.max_time,
        "maxSize": args.max_size,
        "onResponse": onResponse,
        "reactor": reactor,
        "compressed": args.compressed,
    }
    if plan.json is not MISSING:
        options["json"] = plan.json
    bar = None
    try:
        if args.output:
            if stderr.isatty():
                bar = _ProgressBar(os.path.basename(args.output), stderr)
            await download(
                client, plan.url, args.output, method=plan.method, progress=bar,
                keepError=args.keep_error, **options,
            )
        else:
            await request(client, plan.method, plan.url, sink=_writer(stdout), **options)
    except Exception as e:
        if bar is not None:
            bar.close()
        code, message = exits.describe(e, plan.where())
        if isinstance(e, HTTPStatusError) and e.path is not None:
            message += "; --keep-error saves it"
        return fail(code, message)
    finally:
        await pool.closeCachedConnections()
    if bar is not None:
        bar.close()
    return exits.OK



def _writer(stream: IO[bytes]) -> Any:
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write
