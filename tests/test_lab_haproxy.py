# -*- test-case-name: tests.test_lab_haproxy -*-
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

from twisted.trial.unittest import TestCase

from tests.lab import Lab
from tests.support import HAProxy, haproxyExecutable, isolatedConfig, waitUntil


class HAProxyTests(TestCase):
    """
    C{client} and C{proxy} on a front segment; C{proxy}, C{web1} and
    C{web2} on a back segment, which the client cannot reach.
    """

    def setUp(self) -> None:
        haproxyExecutable()
        lab = Lab.create(self)
        front, back = lab.segment("front"), lab.segment("back")
        self.client = lab.host("client", front)
        proxy = lab.host("proxy", front, back)
        self.frontAddress = proxy.ipv4(front)
        self.clientAddress = self.client.ipv4(front)
        self.instances = {}
        servers: dict[int, str] = {7007: "", 8080: ""}
        for name in ("web1", "web2"):
            host = lab.host(name, back)
            address = host.ipv4(back)
            accessLog = host.directory / "access.log"
            daemon = host.daemon(
                isolatedConfig(
                    echo=f"listen = haproxy:tcp:7007:interface={address}",
                    web=f"listen = haproxy:tcp:8080:interface={address}\naccess_log = {accessLog}",
                ),
                ["--log-level", "debug"],
            )
            self.instances[name] = (daemon, accessLog)
            for port in servers:
                servers[port] += (
                    f"    server {name} {address}:{port} send-proxy-v2 check inter 100ms rise 1 fall 2\n"
                )
        config = "".join(
            f"frontend f{port}\n    bind {self.frontAddress}:{port}\n    default_backend b{port}\n"
            f"backend b{port}\n    balance roundrobin\n{lines}"
            for port, lines in servers.items()
        )
        for daemon, _ in self.instances.values():
            daemon.waitForLog("echo listening on haproxy:tcp:7007")
            daemon.waitForLog("web listening on haproxy:tcp:8080")
        # A short directory: the admin socket's path must fit in 97 bytes.
        directory = Path(tempfile.mkdtemp(prefix="nslab-haproxy-"))
        self.addCleanup(shutil.rmtree, directory, True)
        haproxy = HAProxy(directory, config, wrapper=proxy.command([], 120))
        self.addCleanup(haproxy.stop)
        waitUntil(
            lambda: (
                len(haproxy.servers()) == 4
                and all(s["status"] == "UP" for s in haproxy.servers().values())
            ),
            15,
            "every server UP in haproxy",
        )

    def test_echoRealClient(self) -> None:
        """
        Four echo connections from the client through the proxy host are
        echoed, two by each instance (round robin), and each instance logs
        the client's own address and port, not the proxy's.
        """
        payloads = [f"through the proxy host {i}" for i in range(4)]
        results = self.client.call("tests.labclients.echoes", self.frontAddress, 7007, payloads)
        self.assertEqual([r["echo"] for r in results], payloads)
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
        url = f"http://{self.frontAddress}:8080/status"
        done = self.client.run(["netservices", "fetch", url, "-m", "20"])
        self.assertEqual(done.returncode, 0, done.stderr)
        bodies = [done.stdout.decode()]
        bodies += [r["body"] for r in self.client.call("tests.labclients.gets", [url] * 3)]
        for body in bodies:
            self.assertEqual(json.loads(body)["client"].rsplit(":", 1)[0], self.clientAddress)

        def lines() -> dict[str, list[str]] | None:
            found = {
                name: log.read_text().splitlines() if log.exists() else []
                for name, (_, log) in self.instances.items()
            }
            return found if sum(map(len, found.values())) >= 4 else None

        logged = waitUntil(lines, 15, "four lines in the access logs")
        self.assertEqual({name: len(v) for name, v in logged.items()}, {"web1": 2, "web2": 2})
        for line in logged["web1"] + logged["web2"]:
            self.assertTrue(line.startswith(f"{self.clientAddress} - - ["), line)
