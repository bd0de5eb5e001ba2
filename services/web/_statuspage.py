# -*- test-case-name: tests.unit.web.test_statuspage -*-
"""
C{/status} for people: the status document as one HTML page.

L{StatusResource} answers JSON (the document as it always was) unless the
request prefers HTML: C{?format=html}, or an C{Accept} header that ranks
C{text/html} above C{application/json}, as browsers send.  C{?format=json}
always gets JSON.

The page needs nothing from outside: its CSS and script are inline (and the
only ones its C{Content-Security-Policy} allows).  The server renders every
section, so it reads the same without JavaScript; with it, the script polls
C{?format=json} every L{REFRESH} seconds, redraws the sections from the
document and shows each counter's rate per second between two polls (the
style and script: L{services.web._statusassets}).  The
page and the script only ever insert text (escaped here, C{textContent}
there): peer names and addresses come from the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from twisted.web.iweb import IRequest

from services.web._pages import JSONResource
from services.web._statusassets import CSS, POLICY, REFRESH, SCRIPT

__all__ = ["StatusResource", "peerLink", "prefersHTML", "renderPage"]

#: Counters that are current values: they get no rate.
_GAUGES = frozenset({"current", "peers"})

def _quality(accept: str, wanted: str) -> float:
    """
    The quality that an C{Accept} header gives to C{wanted}, by its most
    specific matching range (RFC 9110 12.5.1); 0 when none matches.
    """
    kind = wanted.split("/")[0] + "/*"
    best, specificity = 0.0, -1
    for item in accept.split(","):
        mediaRange, *parameters = item.split(";")
        mediaRange = mediaRange.strip().lower()
        rank = {wanted: 2, kind: 1, "*/*": 0}.get(mediaRange)
        if rank is None or rank <= specificity:
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, specificity = q, rank
    return best


def prefersHTML(request: IRequest) -> bool:
    """
    Whether C{request} gets the page: C{?format=html}, or (without
    C{?format}) an C{Accept} that ranks C{text/html} above
    C{application/json}.  Everything else gets JSON, as before.
    """
    chosen = request.args.get(b"format")  # type: ignore[attr-defined]
    if chosen:
        return bool(chosen[-1] == b"html")
    accept = request.getHeader(b"accept")
    if not accept:
        return False
    text = accept.decode("latin-1")
    return _quality(text, "text/html") > _quality(text, "application/json")


def peerLink(address: str, port: Any) -> tuple[str, str | None]:
    """
    A peer's endpoint as text, and as an C{http:} URL when the address is an
    IP address and the port a port number (both come from the network).
    """
    try:
        ip = ipaddress.ip_address(address)
        valid = isinstance(port, int) and 0 < port < 65536
    except ValueError:
        return f"{address}:{port}", None
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    text = f"{host}:{port}"
    return text, (f"http://{text}/" if valid else None)


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    parts = []
    if days:
        parts.append(f"{days}d")
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{s % 60}s")
    return " ".join(parts)


def _cell(value: Any, numeric: bool = False, cls: str = "") -> str:
    if numeric:
        cls = "n"
    attribute = f' class="{cls}"' if cls else ""
    return f"<td{attribute}>{value}</td>"


def _table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[int] = (),
    caption: str | None = None,
) -> str:
    """
    A table of cells already escaped (or built from escaped parts).
    """
    out = ["<table>"]
    if caption is not None:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
    rows = list(rows)
    if not rows:
        out.append(f'<tr><td class="muted" colspan="{len(head)}">none</td></tr>')
    for row in rows:
        out.append(
            "<tr>" + "".join(_cell(v, i in numeric) for i, v in enumerate(row)) + "</tr>"
        )
    out.append("</table>")
    return "".join(out)


def _text(value: Any) -> str:
    return escape(str(value))


def _services(document: dict[str, Any]) -> str:
    rows = []
    for name, service in sorted(document["services"].items()):
        up = service["listening"]
        state = '<span class="up">listening</span>' if up else '<span class="down">not listening</span>'
        rows.append([_text(name), state, _text(" ".join(service["addresses"]))])
    return _table(["service", "state", "listeners"], rows)


def _counters(counters: dict[str, int], rates: bool, caption: str) -> str:
    head = ["counter", "value", "per second"] if rates else ["counter", "value"]
    rows = []
    for key, value in sorted(counters.items()):
        row = [_text(key), _text(value)]
        if rates:
            row.append("\u2013")
        rows.append(row)
    return _table(head, rows, (1, 2), caption)


def _endpoints(peer: dict[str, Any]) -> str:
    parts = []
    services = peer.get("services") or {}
    for name, ports in sorted(services.items()):
        for port in ports or ():
            text, href = peerLink(str(peer.get("address", "")), port)
            label = f"{name} {text}"
            if href is not None and name == "web":
                parts.append(f'<a href="{escape(href)}">{escape(label)}</a>')
            else:
                parts.append(escape(label))
    return " ".join(parts)


def _peers(document: dict[str, Any]) -> str:
    rows = []
    for _, service in sorted(document["services"].items()):
        for peer in service.get("peers") or ():
            rows.append(
                [
                    _text(peer.get("name", "")),
                    _text(peer.get("id", "")),
                    _text(peer.get("address", "")),
                    _endpoints(peer),
                    _text(peer.get("age", "")),
                ]
            )
    return _table(["name", "id", "address", "endpoints", "age (s)"], rows, (4,))


def _counterGrid(caption: str, services: dict[str, dict[str, int]]) -> str:
    tables = [
        _counters(counters, False, f"{caption}: {name}")
        for name, counters in sorted(services.items())
    ]
    return '<div class="grid">' + "".join(tables) + "</div>"


def _workers(document: dict[str, Any]) -> str:
    workers = document.get("workers")
    if workers is None:
        return '<p class="muted">one process (no workers)</p>'
    out = [f"<p>worker {_text(workers['this'])} of {_text(workers['count'])} answered</p>"]
    for worker in workers["workers"]:
        out.append(_counterGrid(f"worker {worker.get('worker')}", worker.get("services", {})))
    out.append(_counterGrid("totals", workers["totals"]))
    return "".join(out)


def _connections(document: dict[str, Any]) -> str:
    connections = document.get("connections")
    if connections is None:
        return '<p class="muted">no stream service</p>'
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(connections["byService"].items()))
    newest = connections["newest"]
    rows = [
        [
            _text(c["service"]),
            _text(c["client"]),
            _text(c["local"]),
            _text(c["age"]),
            _text(c["bytesIn"]),
            _text(c["bytesOut"]),
            _text(c["state"]),
        ]
        for c in newest
    ]
    return (
        f"<p>{_text(connections['open'])} open ({_text(counts)}); "
        f"the {len(newest)} newest:</p>"
        + _table(
            ["service", "client", "local", "age (s)", "bytes in", "bytes out", "state"],
            rows,
            (3, 4, 5),
        )
    )


def renderPage(document: dict[str, Any]) -> bytes:
    """
    The status page for a status document (see L{services.web._service.statusFor}).
    """
    services = document["services"]
    counters = "".join(
        _counters(service["counters"], True, name)
        for name, service in sorted(services.items())
        if "counters" in service
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netservices status</title><link rel="icon" href="data:,"><style>{CSS}</style></head>
<body>
<header><h1>netservices <span id="version">{_text(document["version"])}</span></h1>
<p>up <span id="uptime">{_text(_duration(document["uptime"]))}</span>
&middot; you are <span id="client">{_text(document.get("client", ""))}</span>
&middot; <span id="refreshed">as rendered by the server (with JavaScript the page refreshes
every {REFRESH:g} s); <a href="?format=json">JSON</a></span></p></header>
<h2>Services</h2><div id="services">{_services(document)}</div>
<h2>Counters</h2><div id="counters" class="grid">{counters}</div>
<h2>Discovery peers</h2><div id="peers">{_peers(document)}</div>
<h2>Workers</h2><div id="workers">{_workers(document)}</div>
<h2>Open connections</h2><div id="connections">{_connections(document)}</div>
<script>{SCRIPT}</script>
</body></html>
"""
    return page.encode("utf-8")


class StatusResource(JSONResource):
    """
    C{/status}: the status document as JSON, or as the page when the client
    prefers HTML (L{prefersHTML}).
    """

    def render_GET(self, request: IRequest) -> bytes:
        """
        Send the page or the JSON document; either way C{Vary: Accept}.
        """
        request.setHeader(b"vary", b"Accept")
        if not prefersHTML(request):
            return JSONResource.render_GET(self, request)
        code, value = self.document(request)
        body = renderPage(value)
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", POLICY)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return body

