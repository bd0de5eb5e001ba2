# -*- test-case-name: tests.integration.test_haproxy -*-
"""
Integration tests with a real HAProxy (Debian's C{haproxy} package, see
tests/system-deps.sh) in front of two netservices instances, on loopback
ports only: the PROXY protocol (C{send-proxy} and C{send-proxy-v2}) and a
rolling restart with no failed request.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from tests.support import (
    ROOT,
    Daemon,
    HAProxy,
    freePort,
    haproxyExecutable,
    isolatedConfig,
    roundTrip,
    waitUntil,
)


def echoFrom(source: str, port: int, payload: bytes) -> tuple[bytes, int]:
    """
    Connect to C{127.0.0.1:port} from C{source}, send C{payload},
    half-close, and return the echo and the client's own port.
    """
    with socket.socket() as s:
        s.settimeout(10)
        s.bind((source, 0))
        clientPort = s.getsockname()[1]
        s.connect(("127.0.0.1", port))
        return roundTrip(s, payload), clientPort


class Instance:
    """
    One netservices instance behind HAProxy: C{haproxy:} echo and web
    listeners on fixed ports, so that it can be restarted on the same
    addresses, and a web access log.
    """

    def __init__(self, directory: Path) -> None:
        self.port = freePort()
        self.webPort = freePort()
        self.accessLog = directory / f"access-{self.port}.log"
        self.daemon = self._start()

    def _start(self) -> Daemon:
        daemon = Daemon(
            ["--log-level", "debug"],
            isolatedConfig(
                echo=f"listen = haproxy:tcp:{self.port}:interface=127.0.0.1",
                web=(
                    f"listen = haproxy:tcp:{self.webPort}:interface=127.0.0.1\n"
                    f"access_log = {self.accessLog}"
                ),
            ),
        )
        daemon.waitForLog(f"echo listening on haproxy:tcp:{self.port}")
        daemon.waitForLog(f"web listening on haproxy:tcp:{self.webPort}")
        return daemon

    def restart(self) -> None:
        """
        Stop the daemon (SIGTERM) and start a new one on the same port.
        """
        self.daemon.stop()
        self.daemon = self._start()

    def stop(self) -> None:
        """
        Stop the daemon.
        """
        self.daemon.stop()


class HAProxyTests(TestCase):
    """
    HAProxy in front of two instances, with a C{send-proxy} backend and a
    C{send-proxy-v2} backend over the same instances.
    """

    def setUp(self) -> None:
        haproxyExecutable()
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-haproxy-"))
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.instances = {"a": Instance(self.directory), "b": Instance(self.directory)}
        for instance in self.instances.values():
            self.addCleanup(instance.stop)
        self.v1, self.v2, self.web1, self.web2 = freePort(), freePort(), freePort(), freePort()
        config = ""
        # web1 balances requests (mode http, which retries a request that an
        # instance dropped); the others balance connections (mode tcp).
        http = "    mode http\n"
        for name, port, option, service, mode, retries in [
            ("v1", self.v1, "send-proxy", "port", "", ""),
            ("v2", self.v2, "send-proxy-v2", "port", "", ""),
            ("web1", self.web1, "send-proxy", "webPort", http,
             "    retry-on conn-failure empty-response response-timeout\n"),
            ("web2", self.web2, "send-proxy-v2", "webPort", "", ""),
        ]:
            config += f"frontend {name}\n{mode}    bind 127.0.0.1:{port}\n"
            config += f"    default_backend {name}\n"
            config += f"backend {name}\n{mode}{retries}    balance roundrobin\n"
            for server, instance in self.instances.items():
                config += (
                    f"    server {server} 127.0.0.1:{getattr(instance, service)} {option} "
                    "check inter 100ms rise 1 fall 2\n"
                )
        self.haproxy = HAProxy(self.directory, config)
        self.addCleanup(self.haproxy.stop)
        self.waitUp()

    def waitUp(self, timeout: float = 10) -> None:
        """
        Wait until haproxy sees every server up.
        """
        waitUntil(
            lambda: all(s["status"] == "UP" for s in self.haproxy.servers().values()),
            timeout,
            "every server UP in haproxy",
        )

    def test_realClient(self) -> None:
        """
        With C{send-proxy} and C{send-proxy-v2}, echo works through HAProxy
        and the instances see the real client (127.0.0.2 and its port), not
        HAProxy; a client that talks to an instance directly, without a
        header, is closed and logged at debug level, without a traceback.
        """
        seen = []
        for frontend in (self.v1, self.v2):
            for i in range(2):  # round robin: once on each instance
                payload = b"through haproxy %d" % i
                echoed, clientPort = echoFrom("127.0.0.2", frontend, payload)
                self.assertEqual(echoed, payload)
                seen.append(f"echo: 127.0.0.2:{clientPort} connected")

        def allSeen() -> bool:
            logs = "".join(i.daemon.log() for i in self.instances.values())
            return all(line in logs for line in seen)

        waitUntil(allSeen, 10, "the real client addresses in the instances' logs")
        for instance in self.instances.values():
            self.assertIn("echo: 127.0.0.2:", instance.daemon.log())

        instance = self.instances["a"]
        echoed, clientPort = echoFrom("127.0.0.1", instance.port, b"no header here\r\n")
        self.assertEqual(echoed, b"")
        instance.daemon.waitForLog(
            f"PROXY protocol: closing 127.0.0.1:{clientPort}: not a PROXY protocol header"
        )
        for instance in self.instances.values():
            self.assertNotIn("Traceback", instance.daemon.log())

    def test_webRealClient(self) -> None:
        """
        HTTP works through HAProxy with both PROXY versions; C{/status} and
        the access log show the real client (127.0.0.2), not HAProxy.
        """
        clients = []
        for frontend in (self.web1, self.web2):
            for path in ("/", "/status"):
                connection = http.client.HTTPConnection(
                    "127.0.0.1", frontend, timeout=10, source_address=("127.0.0.2", 0)
                )
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                clientPort = connection.sock.getsockname()[1]
                connection.close()
                self.assertEqual(response.status, 200)
                if path == "/":
                    self.assertIn(b"Hello World", body)
                else:
                    self.assertEqual(json.loads(body)["client"], f"127.0.0.2:{clientPort}")
                clients.append(clientPort)

        def logged() -> str:
            return "".join(
                i.accessLog.read_text() for i in self.instances.values() if i.accessLog.exists()
            )

        waitUntil(lambda: logged().count("\n") >= 4, 10, "four lines in the access logs")
        lines = logged().splitlines()
        self.assertEqual(len(lines), 4)
        for line in lines:
            self.assertTrue(line.startswith("127.0.0.2 - - ["), line)

    def test_openConnectionsShowRealClient(self) -> None:
        """
        While a client holds an echo connection through HAProxy
        (C{send-proxy}), the C{/status} of the instance it reached lists that
        connection with the real client's address (127.0.0.2 and its port)
        and the address it connected to, not HAProxy's.
        """
        with socket.socket() as held:
            held.settimeout(10)
            held.bind(("127.0.0.2", 0))
            held.connect(("127.0.0.1", self.v1))
            held.sendall(b"held")
            self.assertEqual(held.recv(16), b"held")
            client = "127.0.0.2:%d" % held.getsockname()[1]

            def listed() -> dict | None:
                # Round robin: successive requests reach both instances.
                connection = http.client.HTTPConnection("127.0.0.1", self.web2, timeout=10)
                connection.request("GET", "/status?format=json")
                document = json.loads(connection.getresponse().read())
                connection.close()
                for entry in document["connections"]["newest"]:
                    if entry["service"] == "echo" and entry["client"] == client:
                        return entry  # type: ignore[no-any-return]
                return None

            entry = waitUntil(listed, 10, f"{client} in the open connections of /status")
        self.assertEqual(entry["bytesIn"], 4)
        # The PROXY header's destination: the address the client reached.
        self.assertEqual(entry["local"], f"127.0.0.1:{self.v1}")

    def test_rollingRestart(self) -> None:
        """
        Restarting each instance in turn (drain it in HAProxy, wait for its
        sessions to end, restart it, put it back) while echo clients and wrk
        run through HAProxy fails no request.
        """
        wrk = shutil.which("wrk")
        if wrk is None:
            raise SkipTest("wrk is not installed (tests/system-deps.sh installs it)")
        benchmark = subprocess.Popen(
            # Long enough to outlast the restarts on a loaded machine; it is
            # stopped with SIGINT (wrk then prints its report) once they are done.
            [wrk, "-t1", "-c4", "-d60s", f"http://127.0.0.1:{self.web1}/"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.addCleanup(lambda: benchmark.poll() is None and benchmark.kill())
        stop = threading.Event()
        results = {"ok": 0, "failed": []}  # type: dict
        lock = threading.Lock()
        deadline = time.monotonic() + 40

        def client(k: int) -> None:
            n = 0
            while not stop.is_set() and time.monotonic() < deadline and n < 20000:
                n += 1
                payload = b"%d-%d" % (k, n)
                try:
                    echoed, _ = echoFrom("127.0.0.2", self.v1, payload)
                    error = None if echoed == payload else f"echo {echoed!r} for {payload!r}"
                except OSError as e:
                    error = repr(e)
                with lock:
                    if error is None:
                        results["ok"] += 1
                    else:
                        results["failed"].append(error)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        try:
            waitUntil(lambda: results["ok"] >= 100, 10, "load through haproxy")
            for name, instance in self.instances.items():
                self.rollingRestart(name, instance)
                target = results["ok"] + 100
                waitUntil(lambda t=target: results["ok"] >= t, 10, "load after the restart")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertIsNone(benchmark.poll(), "the restarts outlasted wrk's run")
        benchmark.send_signal(signal.SIGINT)
        report = benchmark.communicate(timeout=30)[0]
        self.assertEqual(results["failed"], [])
        self.assertGreater(results["ok"], 400)
        self.assertNotIn("Socket errors", report)
        self.assertNotIn("Non-2xx", report)
        self.assertGreater(int(re.search(r"(\d+) requests in", report).group(1)), 1000, report)
        for instance in self.instances.values():  # both new instances served
            log = instance.daemon.log()
            self.assertTrue("echo: 127.0.0.2:" in log and "web: 127.0.0.1 connected" in log)

    def rollingRestart(self, name: str, instance: Instance) -> None:
        """
        The documented procedure, for one instance.
        """
        backends = ("v1", "v2", "web1", "web2")
        for backend in backends:
            self.assertEqual(self.haproxy.command(f"set server {backend}/{name} state drain"), "\n")
        for backend in backends:
            server = f"{backend}/{name}"
            self.waitFor(
                lambda s=server: self.haproxy.servers()[s]["scur"] == "0",
                f"{server} to have no session",
            )
        instance.restart()
        for backend in backends:
            self.haproxy.command(f"set server {backend}/{name} state ready")
        self.waitUp()

    def waitFor(self, condition: Callable[[], bool], what: str) -> None:
        """
        Wait up to 10 seconds for C{condition}.
        """
        waitUntil(condition, 10, what)


class ContribConfigTests(SynchronousTestCase):
    """
    The example configuration shipped in contrib/haproxy.
    """

    def test_valid(self) -> None:
        """
        HAProxy accepts contrib/haproxy/haproxy.cfg, and its servers send
        the PROXY header.
        """
        path = ROOT / "contrib" / "haproxy" / "haproxy.cfg"
        check = subprocess.run(
            [haproxyExecutable(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        servers = [line for line in path.read_text().splitlines() if line.strip().startswith("server ")]
        self.assertEqual(len(servers), 4)
        self.assertTrue(all("send-proxy" in line for line in servers))
