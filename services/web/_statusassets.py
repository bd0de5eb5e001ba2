# -*- test-case-name: tests.unit.web.test_statuspage -*-
"""
The style and script of the status page (L{services.web._statuspage}),
inline in the page, and the C{Content-Security-Policy} that allows those
two and nothing else from outside.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["CSS", "POLICY", "REFRESH", "SCRIPT"]

#: Seconds between two refreshes of the page.
REFRESH = 2.0

#: The page's style sheet.
CSS = """
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

#: The page's script: it polls C{?format=json} and redraws the sections.
SCRIPT = """
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


SCRIPT = SCRIPT.replace("REFRESH_MS", str(int(REFRESH * 1000)))

#: Only the page's own inline style and script, and requests to itself.
POLICY = (
    "default-src 'none'; "
    f"style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
).encode("ascii")
