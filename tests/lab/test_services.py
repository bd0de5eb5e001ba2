# -*- test-case-name: tests.lab.test_services -*-
"""
The services across hosts of the network lab (L{tests.netlab}): a daemon in
one host, real clients in another, over IPv4 and IPv6 on a bridged segment.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from twisted.trial.unittest import TestCase

from tests.netlab import Lab, escape
from tests.support import isolatedConfig, makeCertificate, waitUntil

MB = 1024 * 1024


class LabTestCase(TestCase):
    """
    A lab of one segment with a C{server} host (address 1) and a
    C{client} host (address 2), shared by the tests of a class (they only
    read from the daemon that L{build} starts in it).
    """

    def setUp(self) -> None:
        vars(self).update(Lab.shared(self, type(self).build))

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        Build the lab's hosts (and a subclass, its daemon): the attributes
        that each test gets.
        """
        lan = lab.segment("lan")
        server = lab.host("server", lan)
        return {
            "lab": lab,
            "lan": lan,
            "server": server,
            "client": lab.host("client", lan),
            "v4": server.ipv4(lan),
            "v6": server.ipv6(lan),
        }

    def assertRan(self, done: object, stdout: bytes | None = None) -> None:
        """
        Assert that a C{CompletedProcess} exited 0 (and printed C{stdout}).
        """
        self.assertEqual(done.returncode, 0, done.stderr)  # type: ignore[attr-defined]
        if stdout is not None:
            self.assertEqual(done.stdout, stdout)  # type: ignore[attr-defined]


class EchoTests(LabTestCase):
    """
    TCP echo across hosts.
    """

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        An echo daemon on the server's IPv4 and IPv6 addresses.
        """
        hosts = super().build(lab)
        v6 = escape(hosts["v6"])
        daemon = hosts["server"].daemon(
            isolatedConfig(echo=f"listen = tcp:7007\n tcp6:7007:interface={v6}"),
            ["--log-level", "debug"],
        )
        daemon.waitForTCP(7007, hosts["v4"])
        daemon.waitForTCP(7007, hosts["v6"])
        return {**hosts, "daemon": daemon}

    def test_tenMegabytes(self) -> None:
        """
        10 MB of random bytes sent by C{netservices echo} from another host
        come back whole (same sha256), over IPv4 and over IPv6; the server
        logs the client's own lab address.
        """
        payload = os.urandom(10 * MB)
        cases = [
            (self.v4, self.client.ipv4(self.lan)),
            (self.v6, f"[{self.client.ipv6(self.lan)}]"),
        ]
        log = self.daemon.log()
        seen = {f"echo: {client}:": log.count(f"echo: {client}:") for _, client in cases}
        for address, clientAddress in cases:
            done = self.client.run(
                ["netservices", "echo", address, "7007", "--timeout", "20"], input=payload
            )
            self.assertRan(done)
            self.assertEqual(len(done.stdout), len(payload))
            self.assertEqual(
                hashlib.sha256(done.stdout).hexdigest(), hashlib.sha256(payload).hexdigest()
            )
            marker = f"echo: {clientAddress}:"
            waitUntil(lambda m=marker: self.daemon.log().count(m) > seen[m], 15, marker)

    def test_concurrent(self) -> None:
        """
        20 connections at once from another host, 256 KiB each in random
        chunks, all echoed byte for byte.
        """
        result = self.client.call("tests.labclients.load", self.v4, 7007, 20, 256 * 1024, 30)
        self.assertEqual((result["ok"], result["errors"]), (20, []))


class WebTests(LabTestCase):
    """
    The web service and static files across hosts.
    """

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        A web daemon on the server's IPv4 and IPv6 addresses, serving a
        directory with an index page and 2 MiB of random bytes.
        """
        hosts = super().build(lab)
        server = hosts["server"]
        root = server.directory / "www"
        root.mkdir()
        (root / "index.html").write_text("<p>lab index</p>\n")
        blob = os.urandom(2 * MB)
        (root / "blob.bin").write_bytes(blob)
        accessLog = server.directory / "access.log"
        daemon = server.daemon(
            isolatedConfig(
                web=(
                    f"listen = tcp:7080\n tcp6:7080:interface={escape(hosts['v6'])}\n"
                    f"static_dir = {root}\naccess_log = {accessLog}"
                )
            )
        )
        daemon.waitForTCP(7080, hosts["v4"])
        daemon.waitForTCP(7080, hosts["v6"])
        return {**hosts, "daemon": daemon, "blob": blob, "accessLog": accessLog}

    def fetch(self, url: str, *args: str) -> bytes:
        """
        C{netservices fetch URL ARGS} from the client host; its output.
        """
        done = self.client.run(["netservices", "fetch", url, "-m", "20", *args])
        self.assertRan(done)
        return done.stdout

    def test_helloAndStatus(self) -> None:
        """
        C{/} answers Hello World across hosts over IPv4 and IPv6, and
        C{/status} reports the client's lab address, as the access log does.
        """
        clientV4, clientV6 = self.client.ipv4(self.lan), self.client.ipv6(self.lan)
        before = len(self.accessLog.read_text().splitlines())
        self.assertIn(b"Hello World", self.fetch(f"http://{self.v4}:7080/"))
        self.assertIn(b"Hello World", self.fetch(f"http://[{self.v6}]:7080/"))
        status = json.loads(self.fetch(f"http://{self.v4}:7080/status"))
        self.assertEqual(status["client"].rsplit(":", 1)[0], clientV4)
        status = json.loads(self.fetch(f"http://[{self.v6}]:7080/status"))
        self.assertEqual(status["client"].rsplit(":", 1)[0], f"[{clientV6}]")
        lines = waitUntil(
            lambda: (
                (found := self.accessLog.read_text().splitlines()[before:])
                and len(found) >= 4
                and found
            ),
            15,
            "four more lines in the access log",
        )
        self.assertEqual([line.split(" ", 1)[0] for line in lines], [clientV4, clientV6] * 2)

    def test_static(self) -> None:
        """
        A 2 MiB static file downloaded from another host (C{fetch -o}) is
        the file (sha256); over IPv6, an index page and a byte range too.
        """
        out = self.client.directory / f"blob-{os.getpid()}-{id(self)}.bin"
        self.fetch(f"http://{self.v4}:7080/static/blob.bin", "-o", str(out))
        self.assertEqual(
            hashlib.sha256(out.read_bytes()).digest(), hashlib.sha256(self.blob).digest()
        )
        self.assertEqual(self.fetch(f"http://[{self.v6}]:7080/static/"), b"<p>lab index</p>\n")
        ranged = self.fetch(
            f"http://[{self.v6}]:7080/static/blob.bin", "-H", "Range: bytes=1000-1999"
        )
        self.assertEqual(ranged, self.blob[1000:2000])


class UdpEchoTests(LabTestCase):
    """
    UDP echo across hosts, with datagrams up to the largest, fragmented.
    """

    #: From the smallest probe to the largest UDP payload over IPv4: 1472
    #: bytes fill one 1500-byte Ethernet frame, larger ones are fragmented.
    SIZES = (64, 1472, 1473, 8192, 32768, 65507)

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        A UDP echo daemon on the server's IPv4 and IPv6 addresses.
        """
        hosts = super().build(lab)
        daemon = hosts["server"].daemon(
            isolatedConfig(
                udp_echo=f"enabled = yes\nlisten = udp:7008:interface={hosts['v4']}\n"
                f" udp6:7008:interface={escape(hosts['v6'])}"
            )
        )
        daemon.waitForLog("udp-echo listening on udp6:")
        daemon.waitForUDP(7008)
        return {**hosts, "daemon": daemon}

    def test_sizes(self) -> None:
        """
        Every size from 64 to 65,507 bytes is echoed whole to another host
        over IPv4 and IPv6; those over one frame really were fragmented
        both ways: the server's IP reassembled them, then the client's.
        """
        hosts = (self.server, self.client)
        before = [host.call("tests.labclients.reassembled") for host in hosts]
        for address in (self.v4, self.v6):
            results = self.client.call(
                "tests.labclients.udpEchoes", address, 7008, list(self.SIZES)
            )
            self.assertEqual(results, {str(size): "ok" for size in self.SIZES})
        after = [host.call("tests.labclients.reassembled") for host in hosts]
        fragmented = len([size for size in self.SIZES if size > 1472])
        for first, then in zip(before, after):
            self.assertGreaterEqual(then["ipv4"] - first["ipv4"], fragmented)
            self.assertGreaterEqual(then["ipv6"] - first["ipv6"], fragmented)

    def test_cliProbes(self) -> None:
        """
        C{netservices echo --udp} probes of 65,507 bytes from another host
        all come back.
        """
        done = self.client.run(
            ["netservices", "echo", self.v4, "7008", "--udp", "--count", "3", "--interval", "0.1",
             "--size", "65507", "--timeout", "5"]
        )  # fmt: skip
        self.assertRan(done)
        self.assertIn(b"3 probes sent, 3 echoed, 0% lost", done.stdout)


class TLSTests(LabTestCase):
    """
    TLS echo and HTTPS across hosts, with a certificate for the server's
    IPv4 lab address only.
    """

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        TLS echo on the server's IPv4 and IPv6 addresses and HTTPS on its
        IPv4 address, with a certificate for that address.
        """
        hosts = super().build(lab)
        v4, v6 = hosts["v4"], hosts["v6"]
        cert, key = makeCertificate(hosts["server"].directory, hosts=(v4,))
        daemon = hosts["server"].daemon(
            isolatedConfig(
                echo=f"listen = ssl:7443\n ssl:7443:interface={escape(v6)}",
                web="listen = ssl:8443",
                tls=f"certificate = {cert}\nkey = {key}",
            )
        )
        daemon.waitForTCP(7443, v4)
        daemon.waitForTCP(7443, v6)
        daemon.waitForTCP(8443, v4)
        return {**hosts, "daemon": daemon, "cert": cert}

    def test_echo(self) -> None:
        """
        TLS echo from another host verifies the server's certificate for its
        address and echoes 64 KiB whole over TLS 1.3; at the IPv6 address,
        which the certificate does not name, verification fails.
        """
        result = self.client.call("tests.labclients.tlsEcho", self.v4, 7443, str(self.cert), 65536)
        self.assertEqual(result, {"same": True, "received": 65536, "version": "TLSv1.3"})
        result = self.client.call("tests.labclients.tlsEcho", self.v6, 7443, str(self.cert), 16)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", result.get("error", ""))

    def test_https(self) -> None:
        """
        C{netservices fetch --cacert} gets Hello World over HTTPS from
        another host.
        """
        url = f"https://{self.v4}:8443/"
        done = self.client.run(
            ["netservices", "fetch", url, "--cacert", str(self.cert), "-m", "20"]
        )
        self.assertRan(done)
        self.assertIn(b"Hello World", done.stdout)


class WorkersTests(LabTestCase):
    """
    Worker processes serving another host.
    """

    @classmethod
    def build(cls, lab: Lab) -> dict[str, Any]:
        """
        A daemon with two workers sharing its echo and web listeners.
        """
        hosts = super().build(lab)
        daemon = hosts["server"].daemon(
            isolatedConfig(echo="listen = tcp:7007", web="listen = tcp:7080"), ["--workers", "2"]
        )
        for worker in (1, 2):
            daemon.waitForLog(f"[worker-{worker}] echo listening")
            daemon.waitForLog(f"[worker-{worker}] web listening")
        return {**hosts, "daemon": daemon}

    def test_sharedListeners(self) -> None:
        """
        With two workers, 40 connections at once from another host are all
        echoed, and C{/status} from that host counts them in both workers'
        totals.
        """
        result = self.client.call("tests.labclients.load", self.v4, 7007, 40, 64 * 1024, 30)
        self.assertEqual((result["ok"], result["errors"]), (40, []))
        status = self.client.call(
            "tests.labclients.statusWhen",
            f"http://{self.v4}:7080/status",
            ["workers", "totals", "echo", "accepted"],
            40,
        )
        workers = status["workers"]
        self.assertEqual(workers["count"], 2)
        self.assertEqual(workers["totals"]["echo"]["accepted"], 40)
        self.assertEqual(sum(w["services"]["echo"]["accepted"] for w in workers["workers"]), 40)
