"""
C{netservices throughput} across hosts of the network lab (L{tests.netlab}),
next to iperf3 on the same path: a daemon and an iperf3 server in one
host, both clients in another.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from twisted.trial.unittest import SkipTest, TestCase

from tests.netlab import Lab
from tests.support import isolatedConfig, waitUntil

#: How far apart ours and iperf3's throughput may be across the lab's veth
#: path: iperf3 is C at both ends, ours one Python process at each.
RATIO = 100


class LabThroughputTests(TestCase):
    """
    Throughput and loss between two lab hosts, ours and iperf3's.
    """

    def setUp(self) -> None:
        if shutil.which("iperf3") is None:
            raise SkipTest("iperf3 is not installed (tests/system-deps.sh installs it)")
        self.lab = Lab.create(self)
        lan = self.lab.segment("lan")
        self.server = self.lab.host("server", lan)
        self.client = self.lab.host("client", lan)
        self.address = self.server.ipv4(lan)
        self.daemon = self.server.daemon(
            isolatedConfig(
                web="listen = tcp:8080:interface=127.0.0.1",
                discard="enabled = yes\nlisten = tcp:10009",
                udp_echo=f"enabled = yes\nlisten = udp:8007:interface={self.address}",
            )
        )
        self.daemon.waitForTCP(10009, self.address)
        self.daemon.waitForUDP(8007)

    def ours(self, *argv: str) -> dict[str, Any]:
        done = self.client.run(["netservices", "throughput", self.address, *argv, "--json"], timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def iperf3(self, *argv: str) -> dict[str, Any]:
        log = self.server.directory / "iperf3.log"
        with open(log, "wb") as out:
            server = self.server.popen(["iperf3", "-s", "-1", "--forceflush", "-p", "5201"], stdout=out)
        self.addCleanup(lambda: server.poll() is None and server.kill())
        # Not a probe connection: the one-off server would take it for its client.
        waitUntil(lambda: b"Server listening" in log.read_bytes(), 15, "the iperf3 server")
        done = self.client.run(["iperf3", "-c", self.address, "-p", "5201", *argv, "--json"], timeout=60)
        server.wait(30)
        self.assertEqual(done.returncode, 0, done.stdout)
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def test_uploadAndUdpNextToIperf3(self) -> None:
        """
        Across hosts an upload counts exactly the bytes the discard server
        read (its own counter), at a rate within L{RATIO} of iperf3's TCP
        figure on the same path; and over a path that drops nothing, UDP
        round trips lose exactly none, as iperf3's UDP test loses none.
        """
        upload = self.ours("-t", "1", "-P", "2")
        status = self.server.run(["curl", "-s", "http://127.0.0.1:8080/status"])
        read = json.loads(status.stdout)["services"]["discard"]["counters"]["bytesIn"]
        self.assertEqual(upload["end"]["sum_sent"]["bytes"], read)
        udp = self.ours("--udp", "-t", "1", "--rate", "40", "--wait", "20")["end"]["udp"]
        self.assertEqual((udp["sent"], udp["received"], udp["lost"]), (40, 40, 0))

        tcp = self.iperf3("-t", "1", "-P", "2")["end"]["sum_received"]["bits_per_second"]
        ours = upload["end"]["sum_sent"]["bits_per_second"]
        self.assertTrue(tcp / RATIO <= ours <= tcp * RATIO, (ours, tcp))
        theirs = self.iperf3("-u", "-b", "1M", "-t", "1")["end"]["sum"]
        self.assertEqual(theirs["lost_packets"], 0)
