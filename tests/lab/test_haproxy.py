# -*- test-case-name: tests.lab.test_haproxy -*-
"""
HAProxy on a host of its own in the network lab, in front of two
instances on a back segment, with C{send-proxy-v2}: the instances see the
real client's lab address, not the proxy's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

from tests.netlab import Lab
from tests.support import HAProxy, haproxyExecutable, isolatedConfig, waitUntil


class HAProxyTests(TestCase):
    """
    C{client} and C{proxy} on a front segment; C{proxy}, C{web1} and
    C{web2} on a back segment, which the client cannot reach.  The
    instances trust PROXY headers from the proxy's back address only.
    """

    def setUp(self) -> None:
        haproxyExecutable()
        vars(self).update(Lab.shared(self, type(self).build))

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        The hosts, an instance on each back host (echo and web behind
        C{haproxy:} endpoints, with an access log) and HAProxy balancing
        both services over them round robin: the attributes of each test.
        """
        front, back = lab.segment("front"), lab.segment("back")
        client = lab.host("client", front)
        proxy = lab.host("proxy", front, back)
        frontAddress = proxy.ipv4(front)
        trusted = f"trusted_proxies = {proxy.ipv4(back)}"
        instances = {}
        hosts = {}
        servers: dict[int, str] = {7007: "", 7080: ""}
        for name in ("web1", "web2"):
            host = lab.host(name, back)
            address = host.ipv4(back)
            accessLog = host.directory / "access.log"
            daemon = host.daemon(
                isolatedConfig(
                    echo=f"listen = haproxy:tcp:7007:interface={address}\n{trusted}",
                    web=(
                        f"listen = haproxy:tcp:7080:interface={address}\n{trusted}\n"
                        f"access_log = {accessLog}"
                    ),
                ),
                ["--log-level", "debug"],
            )
            instances[name] = (daemon, accessLog)
            hosts[name] = host
            for port in servers:
                servers[port] += (
                    f"    server {name} {address}:{port} send-proxy-v2 check inter 100ms rise 1 fall 2\n"
                )
        config = "".join(
            f"frontend f{port}\n    bind {frontAddress}:{port}\n    default_backend b{port}\n"
            f"backend b{port}\n    balance roundrobin\n{lines}"
            for port, lines in servers.items()
        )
        for daemon, _ in instances.values():
            daemon.waitForLog("echo listening on haproxy:tcp:7007")
            daemon.waitForLog("web listening on haproxy:tcp:7080")
        # A short directory: the admin socket's path must fit in 97 bytes.
        directory = Path(tempfile.mkdtemp(prefix="nslab-haproxy-"))
        lab.addCleanup(shutil.rmtree, directory, True)
        haproxy = HAProxy(directory, config, wrapper=proxy.command([], 300))
        lab.addCleanup(haproxy.stop)
        lab.watch(haproxy.process)
        waitUntil(
            lambda: (
                len(haproxy.servers()) == 4
                and all(s["status"] == "UP" for s in haproxy.servers().values())
            ),
            15,
            "every server UP in haproxy",
        )
        return {
            "client": client,
            "clientAddress": client.ipv4(front),
            "frontAddress": frontAddress,
            "instances": instances,
            "hosts": hosts,
            "back": back,
        }

    def test_echoRealClient(self) -> None:
        """
        Four echo connections from the client through the proxy host are
        echoed, two by each instance (round robin), and each instance logs
        the client's own address and port, not the proxy's.
        """
        payloads = [f"through the proxy host {i}" for i in range(4)]
        results = self.client.call("tests.labclients.echoes", self.frontAddress, 7007, payloads)
        self.assertEqual([(r["echo"], r["error"]) for r in results], [(p, None) for p in payloads])
        expected = {f"echo: {self.clientAddress}:{r['port']} connected" for r in results}

        def seen() -> dict[str, int] | None:
            logs = {name: daemon.log() for name, (daemon, _) in self.instances.items()}
            if not all(any(line in log for log in logs.values()) for line in expected):
                return None
            return {name: sum(line in log for line in expected) for name, log in logs.items()}

        counts = waitUntil(seen, 15, "the client's address in the instances' logs")
        self.assertEqual(counts, {"web1": 2, "web2": 2})

    def test_webRealClient(self) -> None:
        """
        Four requests for C{/status} from the client through the proxy host
        (C{netservices fetch}, then urllib) are answered; C{/status} and
        both instances' access logs show the client's lab address.
        """

        def read() -> dict[str, list[str]]:
            return {
                name: log.read_text().splitlines() if log.exists() else []
                for name, (_, log) in self.instances.items()
            }

        before = {name: len(lines) for name, lines in read().items()}
        url = f"http://{self.frontAddress}:7080/status"
        done = self.client.run(["netservices", "fetch", url, "-m", "20"])
        self.assertEqual(done.returncode, 0, done.stderr)
        bodies = [done.stdout.decode()]
        bodies += [r["body"] for r in self.client.call("tests.labclients.gets", [url] * 3)]
        for body in bodies:
            self.assertEqual(json.loads(body)["client"].rsplit(":", 1)[0], self.clientAddress)

        def added() -> dict[str, list[str]] | None:
            found = {name: lines[before[name] :] for name, lines in read().items()}
            return found if sum(map(len, found.values())) >= 4 else None

        logged = waitUntil(added, 15, "four more lines in the access logs")
        self.assertEqual({name: len(v) for name, v in logged.items()}, {"web1": 2, "web2": 2})
        for line in logged["web1"] + logged["web2"]:
            self.assertTrue(line.startswith(f"{self.clientAddress} - - ["), line)

    def test_untrustedSource(self) -> None:
        """
        A host of the back segment other than the proxy (web2) that connects
        to an instance (web1) itself, with a PROXY header claiming to be the
        client, is closed before anything is echoed (or reset), and web1
        logs why with web2's own address.
        """
        web1, web2 = self.hosts["web1"], self.hosts["web2"]
        header = f"PROXY TCP4 {self.clientAddress} {web1.ipv4(self.back)} 40000 7007\r\nspoofed"
        [result] = web2.call("tests.labclients.echoes", web1.ipv4(self.back), 7007, [header])
        self.assertEqual(result["echo"], "")
        daemon = self.instances["web1"][0]
        daemon.waitForLog(
            f"PROXY protocol: closing {web2.ipv4(self.back)}:{result['port']}: "
            "not a trusted PROXY protocol source"
        )
