# -*- test-case-name: tests.lab.test_lab -*-
"""
A network lab for integration tests: hosts as Linux network namespaces on
bridged segments, running real C{twistd -n netservices} daemons and real
clients, so that traffic crosses interfaces between hosts instead of
loopback.

    lab = Lab.create(self)                 # skips when namespaces cannot be made
    # or, for a lab built once for the tests of a class: Lab.shared(self, build)
    lan = lab.segment("lan")               # 198.18.0.0/24 and 2001:db8::/64
    lan6 = lab.segment("v6", ipv4=False)   # IPv6 only: 2001:db8:1::/64
    a = lab.host("a", lan)                 # a.ipv4(lan) == "198.18.0.1", on eth0
    b = lab.host("b", lan, lan6)           # "198.18.0.2" on eth0, "2001:db8:1::1" on eth1
    daemon = b.daemon(isolatedConfig(echo="listen = tcp:7007"))
    daemon.waitForTCP(7007, b.ipv4(lan))
    done = a.run(["netservices", "echo", b.ipv4(lan), "7007"], input=b"hi\\n")
    a.python("import socket; ...")         # a snippet run by the tests' interpreter in a
    a.call("tests.labclients.udpEchoes", b.ipv4(lan), 7008, [64, 65507])  # JSON in and out
    a.waitForTCP(address, port); b.waitForUDP(port)  # polls with a bound, no sleeps
    lab.addCleanup(f, *args); lab.watch(popen)  # for processes other than daemons

Layout: segment number M is the bridge C{brM} in a bridge namespace of
its own, with the /24 C{198.18.M.0} and the /64 C{2001:db8:M::} (M in hex);
the Nth host attached to it gets address N on it (C{198.18.M.N},
C{2001:db8:M::N}, IPv6 without duplicate address detection, so an address
is usable as soon as it is added) on a veth pair whose host end is C{ethK}
for the host's Kth segment.  Nothing is linked to the machine's own
namespace and no host has a default route: only on-link routes exist.

Addresses are written as the kernel writes them (C{2001:db8::1} on
segment 0).

Names: every namespace is C{nslab-<pid>-<lab>-<host>} (and
C{nslab-<pid>-<lab>-bridges}); a lab's teardown (an
C{addCleanup} of L{Lab.create}, and an C{atexit} and SIGTERM handler for
interruptions) stops what runs inside and deletes them.  Creating a lab
first deletes the namespaces of earlier runs whose process is gone.

Bounds: every process started in a host runs under C{timeout(1)}, so even
a killed test run leaves nothing running longer than its time limit.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from twisted.trial.unittest import SkipTest

from tests.clientservers import cliEnvironment
from tests.support import STARTUP_LIMIT, Daemon

#: The prefix of every namespace name a lab makes (then the owner's pid).
PREFIX = "nslab-"

#: Default time limit of a daemon started in a host, in seconds.
DAEMON_LIMIT = 120.0

#: Default time limit of a client command run in a host, in seconds.
CLIENT_LIMIT = 30.0

_live: set[Lab] = set()

#: The lab that L{Lab.shared} keeps: [test class, lab, what its build returned].
_shared: list[Any] = []

T = TypeVar("T")


def ip(*args: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """
    Run C{ip ARGS}; raise C{RuntimeError} with its error output if it fails
    and C{check} is set.
    """
    done = subprocess.run(
        ["ip", *args], check=False, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _pidAlive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _killInside(namespace: str) -> None:
    """
    SIGKILL every process still running inside C{namespace}.
    """
    pids = ip("netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _deleteNamespace(namespace: str) -> None:
    _killInside(namespace)
    ip("netns", "delete", namespace, check=False)


def removeLeftovers() -> list[str]:
    """
    Delete the lab namespaces of earlier runs whose process has gone (and
    kill what still runs in them); return their names.  Namespaces of labs
    of live processes, such as another test run in parallel, stay.
    """
    removed = []
    listing = ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split(" ", 1)[0]
        found = re.match(re.escape(PREFIX) + r"(\d+)-", name)
        if found and not _pidAlive(int(found.group(1))):
            _deleteNamespace(name)
            removed.append(name)
    return removed


def labUnavailable() -> str | None:
    """
    Why this machine cannot build a lab, or C{None} when it can.
    """
    if not sys.platform.startswith("linux"):
        return "the network lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the network lab needs root (to create network namespaces)"
    try:
        probe = f"{PREFIX}{os.getpid()}-probe"
        made = ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        return f"the network lab needs iproute2's ip (tests/system-deps.sh installs it): {e}"
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    veth = ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
    bridge = ip("-n", probe, "link", "add", "b0", "type", "bridge", check=False)
    _deleteNamespace(probe)
    for what, done in (("veth pair", veth), ("bridge", bridge)):
        if done.returncode != 0:
            return f"cannot create a {what} in a network namespace: {done.stderr.strip()}"
    for tool in ("timeout", "sh"):
        if shutil.which(tool) is None:
            return f"the network lab needs {tool}"
    return None


def _dropShared() -> None:
    if _shared:
        _shared[1].teardown()
        _shared.clear()


def _teardownAll() -> None:
    for lab in list(_live):
        lab.teardown()


def _onSignal(number: int, frame: Any) -> None:
    _teardownAll()
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)


_hooksInstalled = False


def _installHooks() -> None:
    global _hooksInstalled
    if _hooksInstalled:
        return
    _hooksInstalled = True
    atexit.register(_teardownAll)
    # Only take SIGTERM over when nobody else handles it: a runner that
    # does is expected to unwind, which runs the cleanups and atexit.
    # Signal handlers can only be set from the main thread.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _onSignal)


class Segment:
    """
    One LAN segment: a bridge, an IPv4 /24 (unless IPv6-only) and an IPv6 /64.

    @ivar name: the lab's name for it.
    @ivar number: M of C{198.18.M.0/24}, C{2001:db8:M::/64} and C{brM}.
    @ivar ipv4Network: C{"198.18.M.0/24"}, or C{None} on an IPv6-only segment.
    @ivar ipv6Network: C{"2001:db8:M::/64"} (compressed: C{"2001:db8::/64"}
        for segment 0), or C{None} on an IPv4-only one.
    """

    def __init__(self, name: str, number: int, ipv4: bool, ipv6: bool) -> None:
        self.name = name
        self.number = number
        self.bridge = f"br{number}"
        self.ipv4Network = f"198.18.{number}.0/24" if ipv4 else None
        self.ipv6Network = str(ipaddress.IPv6Network(f"2001:db8:{number:x}::/64")) if ipv6 else None
        self.members = 0

    @property
    def ipv4Broadcast(self) -> str:
        """
        The segment's IPv4 broadcast address, C{198.18.M.255}.
        """
        if self.ipv4Network is None:
            raise ValueError(f"segment {self.name} has no IPv4")
        return f"198.18.{self.number}.255"


class Host:
    """
    A host of the lab: a network namespace with loopback up and one
    interface on each of its segments.

    @ivar name: the lab's name for it.
    @ivar namespace: its network namespace, C{nslab-<pid>-<lab>-<name>}.
    @ivar directory: a scratch directory for its files (configurations, logs).
    """

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.namespace = lab.prefix + name
        self.directory = lab.directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self._interfaces: dict[str, str] = {}
        self._addresses: dict[str, tuple[str | None, str | None]] = {}
        self._daemons: list[Daemon] = []

    def interface(self, segment: Segment) -> str:
        """
        The name of this host's interface on C{segment} (C{ethK}).
        """
        return self._interfaces[segment.name]

    def ipv4(self, segment: Segment) -> str:
        """
        This host's IPv4 address on C{segment}.
        """
        return self._address(segment, 0)

    def ipv6(self, segment: Segment) -> str:
        """
        This host's IPv6 address on C{segment}.
        """
        return self._address(segment, 1)

    def _address(self, segment: Segment, family: int) -> str:
        address = self._addresses[segment.name][family]
        if address is None:
            raise ValueError(f"segment {segment.name} has no {('IPv4', 'IPv6')[family]}")
        return address

    def command(self, argv: Sequence[str], limit: float) -> list[str]:
        """
        The command line that runs C{argv} in this host for at most C{limit}
        seconds (SIGTERM, then SIGKILL 5 seconds later).
        """
        return ["ip", "netns", "exec", self.namespace, "timeout", "-k", "5", f"{limit:g}", *argv]

    def run(
        self,
        argv: Sequence[str],
        input: bytes | None = None,
        timeout: float = CLIENT_LIMIT,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """
        Run C{argv} in this host to completion within C{timeout} seconds and
        return its result (output as bytes); a bare program name is looked
        up next to the tests' interpreter first (C{netservices}, C{twistd}).
        The environment is the tests' own with the repository on
        C{PYTHONPATH} and without proxy variables (nothing in the lab could
        reach a proxy), plus C{env}.
        """
        return subprocess.run(
            self.command([_program(argv[0]), *argv[1:]], timeout),
            check=False,
            input=input,
            capture_output=True,
            env=cliEnvironment(dict(env or {})),
            cwd=cwd or self.directory,
            timeout=timeout + 10,
        )

    def popen(
        self, argv: Sequence[str], timeout: float = CLIENT_LIMIT, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """
        Start C{argv} in this host, for at most C{timeout} seconds; the
        caller waits for it (C{Popen} keyword arguments pass through).
        """
        kwargs.setdefault("cwd", self.directory)
        kwargs.setdefault("env", cliEnvironment())
        return subprocess.Popen(self.command([_program(argv[0]), *argv[1:]], timeout), **kwargs)

    def python(
        self, code: str, *args: str, timeout: float = CLIENT_LIMIT, input: bytes | None = None
    ) -> str:
        """
        Run the Python snippet C{code} (with C{sys.argv[1:] == args}) by the
        tests' interpreter in this host, with the repository on its path (so
        that it may import C{tests.echoload} and the like); return its
        standard output, or raise C{AssertionError} with its error output
        when it fails.
        """
        done = self.run(
            [sys.executable, "-c", code, *args],
            input=input,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"python in {self.name} exited with {done.returncode}:\n"
                f"{done.stderr.decode(errors='replace')}"
            )
        return done.stdout.decode()

    def call(self, function: str, *args: Any, timeout: float = CLIENT_LIMIT, **kwargs: Any) -> Any:
        """
        Call C{function} (C{"module.name"}, e.g. one of L{tests.labclients})
        in this host with these JSON-serialisable arguments, in a new
        interpreter, and return what it returns (a JSON value).
        """
        module, name = function.rsplit(".", 1)
        output = self.python(_CALL, module, name, json.dumps([args, kwargs]), timeout=timeout)
        return json.loads(output)

    def waitForTCP(
        self,
        address: str,
        port: int,
        timeout: float = STARTUP_LIMIT,
        alive: Callable[[], None] | None = None,
    ) -> None:
        """
        Wait until a TCP connection from this host to C{address:port}
        succeeds, polling for at most C{timeout} seconds; C{alive} is called
        while waiting and may raise to fail early (a daemon that exited).
        """
        self._waitFor(
            _TCP_PROBE,
            (address, str(port)),
            timeout,
            alive,
            f"TCP {address}:{port} from {self.name}",
        )

    def waitForUDP(
        self, port: int, timeout: float = STARTUP_LIMIT, alive: Callable[[], None] | None = None
    ) -> None:
        """
        Wait until some socket of this host is bound to UDP C{port} (any
        address, IPv4 or IPv6), polling for at most C{timeout} seconds.
        """
        self._waitFor(
            _UDP_PROBE, (str(port),), timeout, alive, f"UDP port {port} bound in {self.name}"
        )

    def _waitFor(
        self,
        code: str,
        args: Sequence[str],
        timeout: float,
        alive: Callable[[], None] | None,
        what: str,
    ) -> None:
        probe = self.popen(
            [sys.executable, "-c", code, f"{timeout:g}", *args],
            timeout=timeout + 5,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while probe.poll() is None:
                if alive is not None:
                    alive()
                try:
                    probe.wait(0.05)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if probe.poll() is None:
                probe.kill()
                probe.wait()
            assert probe.stderr is not None
            error = probe.stderr.read().decode(errors="replace").strip()
            probe.stderr.close()
        if probe.returncode != 0:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {error}")

    def daemon(
        self,
        config: str | None,
        args: Sequence[str] = (),
        limit: float = DAEMON_LIMIT,
        twistdArgs: Sequence[str] = (),
    ) -> LabDaemon:
        """
        Start C{twistd -n netservices} in this host with this tap.conf text
        (written to its directory) and these arguments, for at most
        C{limit} seconds; the lab stops it at teardown if the test has not.
        """
        daemon = LabDaemon(self, config, args, limit, twistdArgs)
        self._daemons.append(daemon)
        return daemon

    def stopDaemons(self) -> None:
        """
        Stop every daemon started in this host.
        """
        for daemon in self._daemons:
            daemon.stop()
        self._daemons.clear()


def escape(address: str) -> str:
    """
    C{address} as it goes into a Twisted endpoint string (colons escaped):
    C{tcp6:7007:interface=} + C{escape("2001:db8::1")}.
    """
    return address.replace(":", "\\:")


def _program(name: str) -> str:
    if os.sep in name:
        return name
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# Calls a function with JSON arguments and prints its JSON result.
_CALL = """\
import importlib, json, sys
module, name, arguments = sys.argv[1:]
args, kwargs = json.loads(arguments)
result = getattr(importlib.import_module(module), name)(*args, **kwargs)
sys.stdout.write(json.dumps(result))
"""

# A connection attempt every 50 ms until one succeeds or the bound passes.
_TCP_PROBE = """\
import socket, sys, time
limit, host, port = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + limit
while True:
    try:
        socket.create_connection((host, port), timeout=1).close()
        break
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"last error: {e}")
        time.sleep(0.05)
"""

# A look at the namespace's UDP sockets every 50 ms until the port is bound.
_UDP_PROBE = """\
import sys, time
limit, port = float(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + limit
def bound():
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local = line.split()[1]
                if int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False
while not bound():
    if time.monotonic() > deadline:
        sys.exit("not bound")
    time.sleep(0.05)
"""


class LabDaemon(Daemon):
    """
    A L{Daemon} running in a lab host (under C{ip netns exec} and a time
    limit); C{waitForTCP} connects from inside that host.

    @ivar host: the host it runs in.
    """

    def __init__(
        self,
        host: Host,
        config: str | None,
        args: Sequence[str],
        limit: float,
        twistdArgs: Sequence[str],
    ) -> None:
        self.host = host
        super().__init__(args, config, twistdArgs=twistdArgs, wrapper=host.command([], limit))

    def terminate(self) -> None:
        """
        Send SIGTERM to twistd itself, the child of C{timeout(1)}, so that
        C{stop()} returns twistd's own exit status (C{timeout} passes on
        its child's status, but a signal sent to C{timeout} itself would
        make it report 143).
        """
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            try:
                os.kill(int(children[0]), signal.SIGTERM)
                return
            except ProcessLookupError:
                pass
        super().terminate()

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"twistd exited with {self.process.returncode}:\n{self.log()}")

    def waitForTCP(self, port: int, host: str = "", timeout: float = STARTUP_LIMIT) -> None:
        """
        Wait until the daemon accepts TCP connections on C{host:port}, as
        seen from its own lab host (C{host} is an address: the default
        C{""} is the host's first IPv4 or IPv6 address).
        """
        address = host or self.host.lab.firstAddress(self.host)
        self.host.waitForTCP(address, port, timeout, self._alive)

    def waitForUDP(self, port: int, timeout: float = STARTUP_LIMIT) -> None:
        """
        Wait until the daemon's host has a socket bound to UDP C{port}.
        """
        self.host.waitForUDP(port, timeout, self._alive)


class Lab:
    """
    A set of hosts (network namespaces) on segments (bridges in a bridge
    namespace), removed by L{teardown}.

    @ivar prefix: the start of every namespace name, C{nslab-<pid>-<n>-}.
    @ivar directory: scratch directory of the hosts' files.
    """

    _count = 0

    def __init__(self, directory: str | Path) -> None:
        Lab._count += 1
        self.prefix = f"{PREFIX}{os.getpid()}-{Lab._count}-"
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segments: dict[str, Segment] = {}
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._bridges = self.prefix + "bridges"
        self._removeDirectory = False
        self._watched: list[subprocess.Popen[Any]] = []
        self._cleanups: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        _installHooks()
        _live.add(self)
        self._addNamespace(self._bridges)
        # The bridge namespace forwards frames only: no IPv6 of its own
        # (no link-local addresses, router or listener reports from it).
        self._inside(
            self._bridges,
            "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; "
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; ip link set lo up",
        )

    @classmethod
    def create(cls, testCase: Any) -> Lab:
        """
        A new, empty lab whose teardown is a cleanup of C{testCase} (a trial
        C{TestCase}); skip the test with the reason when this machine cannot
        build one.  Leftovers of earlier runs are removed first, and so is
        the lab that L{shared} keeps for another class.
        """
        if _shared and _shared[0] is not type(testCase):
            _dropShared()
        reason = labUnavailable()
        if reason is not None:
            raise SkipTest(reason)
        removeLeftovers()
        lab = cls(testCase.mktemp())
        testCase.addCleanup(lab.teardown)
        return lab

    @classmethod
    def shared(cls, testCase: Any, build: Callable[[Lab], T]) -> T:
        """
        What C{build(lab)} returned for a lab shared by the tests of
        C{testCase}'s class: built for the first of them, and again for any
        later one that finds one of its daemons gone, so that a test that
        breaks the lab does not decide the outcome of the next.  The shared
        lab is torn down when a test of another class asks for one, and at
        exit.  Skip the test with the reason when no lab can be built.

        For tests that only read from the services the lab runs (sharing
        saves a daemon start per test, seconds on a loaded machine); a test
        that changes them wants L{create}.
        """
        key = type(testCase)
        if _shared and _shared[0] is key and _shared[1].healthy():
            return cast(T, _shared[2])
        _dropShared()
        reason = labUnavailable()
        if reason is not None:
            raise SkipTest(reason)
        removeLeftovers()
        lab = cls(tempfile.mkdtemp(prefix=PREFIX))
        lab._removeDirectory = True
        try:
            value = build(lab)
        except BaseException:
            lab.teardown()
            raise
        _shared[:] = [key, lab, value]
        return value

    def healthy(self) -> bool:
        """
        Whether every daemon started in the lab, and every process given to
        L{watch}, is still running.
        """
        daemons = [d.process for h in self.hosts.values() for d in h._daemons]
        return all(p.poll() is None for p in daemons + self._watched)

    def watch(self, process: subprocess.Popen[Any]) -> None:
        """
        Count C{process} (one started in a host, such as HAProxy) among
        those that L{healthy} checks.
        """
        self._watched.append(process)

    def addCleanup(self, function: Callable[..., object], *args: Any) -> None:
        """
        Call C{function(*args)} at teardown, before the daemons stop (the
        last added first), as C{TestCase.addCleanup} does for a test.
        """
        self._cleanups.append((function, args))

    def _addNamespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._namespaces.append(name)

    def _inside(self, namespace: str, script: str) -> None:
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, "sh", "-ec", script],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if done.returncode != 0:
            raise RuntimeError(f"in {namespace}: {script}: {done.stderr.strip()}")

    def segment(self, name: str, ipv4: bool = True, ipv6: bool = True) -> Segment:
        """
        Add a segment (a bridge) with an IPv4 /24 and/or an IPv6 /64.
        """
        if name in self.segments:
            raise ValueError(f"segment {name} exists")
        if not (ipv4 or ipv6):
            raise ValueError("a segment needs IPv4 or IPv6")
        segment = Segment(name, len(self.segments), ipv4, ipv6)
        if segment.number > 255:
            raise ValueError("at most 256 segments")
        # No snooping: multicast floods to every port, as on a plain switch,
        # so that group traffic never depends on listener reports.
        ip(
            "-n", self._bridges, "link", "add", segment.bridge, "type", "bridge",
            "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0",
        )  # fmt: skip
        ip("-n", self._bridges, "link", "set", segment.bridge, "up")
        self.segments[name] = segment
        return segment

    def host(self, name: str, *segments: Segment) -> Host:
        """
        Add a host attached to C{segments} in this order (C{eth0}, C{eth1}...),
        with loopback up, an address on each segment and no default route.
        """
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        if not re.fullmatch(r"[a-z0-9]{1,12}", name):
            raise ValueError(f"host name {name!r}: 1 to 12 lowercase letters or digits")
        host = Host(self, name)
        self._addNamespace(host.namespace)
        self.hosts[name] = host
        # So that every address of the host (link-local ones too) skips
        # duplicate address detection, and the host never configures itself
        # from router advertisements: for all interfaces, and for each one
        # before it goes up (the veth ends exist before this script runs).
        script = [
            f"echo 0 > /proc/sys/net/ipv6/conf/{scope}/{key}"
            for scope in ("all", "default")
            for key in ("accept_dad", "accept_ra", "forwarding")
        ]
        script.append("echo 0 > /proc/sys/net/ipv4/ip_forward")
        script.append("ip link set lo up")
        for index, segment in enumerate(segments):
            segment.members += 1
            number = segment.members
            if number > 254:
                raise ValueError(f"segment {segment.name} is full")
            port = f"h{len(self.hosts)}s{segment.number}"
            interface = f"eth{index}"
            ip(
                "-n", self._bridges, "link", "add", port, "type", "veth",
                "peer", "name", interface, "netns", host.namespace,
            )  # fmt: skip
            ip("-n", self._bridges, "link", "set", port, "master", segment.bridge, "up")
            v4 = f"198.18.{segment.number}.{number}" if segment.ipv4Network else None
            v6 = f"2001:db8:{segment.number:x}::{number:x}" if segment.ipv6Network else None
            v6 = v6 and str(ipaddress.IPv6Address(v6))  # as the kernel and logs write it
            if v4 is not None:
                script.append(f"ip addr add {v4}/24 brd + dev {interface}")
            conf = f"/proc/sys/net/ipv6/conf/{interface}"
            script.append(f"echo 0 > {conf}/accept_dad; echo 0 > {conf}/accept_ra")
            if v6 is None:
                script.append(f"echo 1 > {conf}/disable_ipv6")
            else:
                script.append(f"ip -6 addr add {v6}/64 nodad dev {interface}")
            script.append(f"ip link set {interface} up")
            host._interfaces[segment.name] = interface
            host._addresses[segment.name] = (v4, v6)
        self._inside(host.namespace, "; ".join(script))
        self._waitForCarrier(host)
        return host

    def _waitForCarrier(self, host: Host, timeout: float = 10.0) -> None:
        """
        Wait until every interface of C{host} is up with a carrier (the
        bridge end came up too), polling for at most C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        interfaces = set(host._interfaces.values())
        while True:
            listing = ip("-n", host.namespace, "-o", "link", "show", "up").stdout
            up = {
                line.split(":")[1].strip().split("@")[0]
                for line in listing.splitlines()
                if "LOWER_UP" in line
            }
            if interfaces <= up:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"interfaces {sorted(interfaces - up)} of {host.name} never came up"
                )
            time.sleep(0.02)

    def firstAddress(self, host: Host) -> str:
        """
        The first address of C{host}: IPv4 on its first segment, or IPv6
        where that segment has no IPv4.
        """
        name = next(iter(host._addresses))
        v4, v6 = host._addresses[name]
        return v4 or v6 or ""

    def teardown(self) -> None:
        """
        Stop every daemon and process in the lab and delete its namespaces
        (and so every interface and bridge); safe to call more than once.
        """
        _live.discard(self)
        while self._cleanups:
            function, args = self._cleanups.pop()
            function(*args)
        for host in self.hosts.values():
            host.stopDaemons()
        for namespace in reversed(self._namespaces):
            _deleteNamespace(namespace)
        self._namespaces.clear()
        if self._removeDirectory:
            shutil.rmtree(self.directory, ignore_errors=True)
