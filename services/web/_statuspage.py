# -*- test-case-name: tests.test_statuspage -*-
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
document and shows each counter's rate per second between two polls.  The
page and the script only ever insert text (escaped here, C{textContent}
there): peer names and addresses come from the network.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from twisted.web.iweb import IRequest

from services.web._pages import JSONResource

__all__ = ["REFRESH", "StatusResource", "peerLink", "prefersHTML", "renderPage"]

#: Seconds between two refreshes of the page.
REFRESH = 2.0

#: Counters that are current values: they get no rate.
_GAUGES = frozenset({"current", "peers"})

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2430;background:#f6f7f9}
h1{font-size:1.4em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}
header p{margin:.3em 0;color:#555}
table{border-collapse:collapse;background:#fff;margin:0 0 .8em;min-width:24em}
th,td{padding:.25em .7em;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.3em 0}
.up{color:#137333;font-weight:600}.down{color:#b3261e;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:0 1.2em;align-items:flex-start}
.muted{color:#777}
"""

_SCRIPT = """
(function () {
  "use strict";
  var previous = null, refreshes = 0;
  var GAUGES = {current: 1, peers: 1};
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function cell(value, cls) {
    var td = el("td", null, cls);
    if (value instanceof Node) { td.appendChild(value); } else { td.textContent = value === undefined ? "" : String(value); }
    return td;
  }
  function table(caption, head, rows, numeric) {
    var t = el("table");
    if (caption) { t.appendChild(el("caption", caption)); }
    var tr = el("tr");
    head.forEach(function (h) { tr.appendChild(el("th", h)); });
    t.appendChild(tr);
    if (!rows.length) {
      var empty = el("tr"), td = el("td", "none", "muted");
      td.colSpan = head.length; empty.appendChild(td); t.appendChild(empty);
    }
    rows.forEach(function (row) {
      var r = el("tr");
      row.forEach(function (v, i) { r.appendChild(cell(v, numeric && numeric[i] ? "n" : "")); });
      t.appendChild(r);
    });
    return t;
  }
  function fill(id, nodes) {
    var box = document.getElementById(id);
    if (!box) { return; }
    box.textContent = "";
    nodes.forEach(function (n) { box.appendChild(n); });
  }
  function duration(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), parts = [];
    if (d) { parts.push(d + "d"); }
    if (d || h) { parts.push(h + "h"); }
    if (d || h || m) { parts.push(m + "m"); }
    parts.push(s % 60 + "s");
    return parts.join(" ");
  }
  function isIP(text) { return /^[0-9A-Fa-f:.]+$/.test(String(text)); }
  function link(address, port) {
    var host = String(address).indexOf(":") >= 0 ? "[" + address + "]" : String(address);
    var text = host + ":" + port;
    var ok = isIP(address) && port > 0 && port < 65536 && Math.floor(port) === port;
    return {text: text, href: ok ? "http://" + text + "/" : null};
  }
  function rate(service, name, value, doc) {
    if (GAUGES[name] || !previous) { return "\\u2013"; }
    var before = ((previous.services[service] || {}).counters || {})[name];
    var dt = doc.uptime - previous.uptime;
    if (before === undefined || !(dt > 0)) { return "\\u2013"; }
    return ((value - before) / dt).toFixed(1);
  }
  function render(doc) {
    refreshes += 1;
    document.getElementById("version").textContent = doc.version;
    document.getElementById("uptime").textContent = duration(doc.uptime);
    document.getElementById("client").textContent = doc.client || "";
    document.getElementById("refreshed").textContent =
      "refresh #" + refreshes + " at " + new Date().toLocaleTimeString();
    var names = Object.keys(doc.services).sort();
    fill("services", [table(null, ["service", "state", "listeners"], names.map(function (n) {
      var s = doc.services[n];
      return [n, s.listening ? "listening" : "not listening", s.addresses.join(" ")];
    }))]);
    var state = document.querySelectorAll("#services tr td:nth-child(2)");
    Array.prototype.forEach.call(state, function (td) {
      td.className = td.textContent === "listening" ? "up" : "down";
    });
    fill("counters", names.filter(function (n) { return doc.services[n].counters; })
      .map(function (n) {
        var c = doc.services[n].counters;
        return table(n, ["counter", "value", "per second"], Object.keys(c).sort().map(
          function (k) { return [k, c[k], rate(n, k, c[k], doc)]; }), [0, 1, 1]);
      }));
    var peers = [];
    names.forEach(function (n) {
      (doc.services[n].peers || []).forEach(function (p) { peers.push(p); });
    });
    fill("peers", [table(null, ["name", "id", "address", "endpoints", "age (s)"],
      peers.map(function (p) {
        return [p.name, p.id, p.address, endpoints(p), p.age];
      }), [0, 0, 0, 0, 1])]);
    var w = doc.workers;
    if (w) {
      var nodes = [el("p", "worker " + w.this + " of " + w.count + " answered")];
      w.workers.forEach(function (worker) { nodes.push(counterTables("worker " + worker.worker, worker.services)); });
      nodes.push(counterTables("totals", w.totals));
      fill("workers", nodes);
    } else { fill("workers", [el("p", "one process (no workers)", "muted")]); }
    var c = doc.connections;
    if (c) {
      var by = Object.keys(c.byService).sort().map(function (k) { return k + ": " + c.byService[k]; });
      fill("connections", [
        el("p", c.open + " open (" + by.join(", ") + "); the " + c.newest.length + " newest:"),
        table(null, ["service", "client", "local", "age (s)", "bytes in", "bytes out", "state"],
          c.newest.map(function (x) {
            return [x.service, x.client, x.local, x.age, x.bytesIn, x.bytesOut, x.state];
          }), [0, 0, 0, 1, 1, 1, 0])]);
    }
    previous = doc;
  }
  function endpoints(p) {
    var span = el("span"), services = p.services || {};
    Object.keys(services).sort().forEach(function (name) {
      (services[name] || []).forEach(function (port) {
        var l = link(p.address, port);
        if (span.childNodes.length) { span.appendChild(document.createTextNode(" ")); }
        if (l.href && name === "web") {
          var a = el("a", name + " " + l.text); a.href = l.href; span.appendChild(a);
        } else { span.appendChild(document.createTextNode(name + " " + l.text)); }
      });
    });
    return span;
  }
  function counterTables(caption, services) {
    var box = el("div", null, "grid");
    Object.keys(services || {}).sort().forEach(function (n) {
      var c = services[n];
      box.appendChild(table(caption + ": " + n, ["counter", "value"],
        Object.keys(c).sort().map(function (k) { return [k, c[k]]; }), [0, 1]));
    });
    return box;
  }
  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", "?format=json");
    request.setRequestHeader("Accept", "application/json");
    request.onload = function () {
      if (request.status === 200) {
        try { render(JSON.parse(request.responseText)); } catch (e) { failed(String(e)); }
      } else { failed("HTTP " + request.status); }
      setTimeout(poll, REFRESH_MS);
    };
    request.onerror = function () { failed("no answer"); setTimeout(poll, REFRESH_MS); };
    request.send();
  }
  function failed(why) {
    document.getElementById("refreshed").textContent = "refresh failed (" + why + "), retrying";
  }
  poll();
})();
"""


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


_SCRIPT = _SCRIPT.replace("REFRESH_MS", str(int(REFRESH * 1000)))

#: Only the page's own inline style and script, and requests to itself.
_POLICY = (
    "default-src 'none'; "
    f"style-src {_hash(_CSS)}; script-src {_hash(_SCRIPT)}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
).encode("ascii")


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
<title>netservices status</title><link rel="icon" href="data:,"><style>{_CSS}</style></head>
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
<script>{_SCRIPT}</script>
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
        request.setHeader(b"content-security-policy", _POLICY)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return body

