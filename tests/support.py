"""
The helpers that more than one test module uses: free loopback ports, real
C{twistd -n netservices} and C{haproxy} processes, certificates, real
transports over loopback sockets driven by hand, and the probes that lab
tests run inside lab hosts.  A helper that only one test module uses stays
in that module; a test module never imports another.

Nothing here sleeps for correctness: waits poll a condition until a deadline
and fail loudly when it passes.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from twisted.internet import error, tcp
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, SynchronousTestCase
from zope.interface import implementer

if TYPE_CHECKING:
    from services.nsepoll._reactor import NetservicesReactor

T = TypeVar("T")

#: The repository, whose tap.conf and twisted/plugins the tests use.
ROOT = Path(__file__).resolve().parent.parent


#: Where L{freePort} looks: below the kernel's ephemeral range (32768 and
#: up on Linux), so that no client connection of a test running beside this
#: one is handed the port between the moment it is chosen and the moment a
#: daemon binds it; above every default port of netservices.
_PORTS = range(20000, 32768)


#: How many processes may run the suite at once, each with its own share
#: of L{_PORTS} (make test runs two).
_SHARES = 4


def _workerIndex() -> int:
    """
    This process's place among the processes that run the suite at once:
    trial -jN runs its workers in C{_trial_temp/N}, pytest-xdist names them
    C{gwN}; 0 when alone.
    """
    xdist = os.environ.get("PYTEST_XDIST_WORKER", "")
    if xdist.startswith("gw") and xdist[2:].isdigit():
        return int(xdist[2:])
    cwd = Path.cwd()
    if cwd.parent.name.startswith("_trial_temp") and cwd.name.isdigit():
        return int(cwd.name)
    return 0


def freePort(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """
    A port that is free on C{host} right now, for both TCP and UDP, chosen
    at random in this process's share of L{_PORTS}, so that the suite's
    processes running at once never choose the same one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    share = len(_PORTS) // _SHARES
    first = _PORTS.start + (_workerIndex() % _SHARES) * share
    for _ in range(200):
        port = random.randrange(first, first + share)
        try:
            for each in (kind, socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM):
                with socket.socket(family, each) as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free port on {host} in {first}..{first + share - 1}")


def hasIPv6Loopback() -> bool:
    """
    Whether this machine can bind and connect on C{::1}.
    """
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


#: How long a wait for a daemon to start (to log a line, to accept) may
#: take, in seconds.  The waits fail at once when the daemon exits, so this
#: bounds only a daemon that hangs; it is generous because a loaded 2-core
#: machine can take many times the usual second to start twistd.
STARTUP_LIMIT = 60.0


def waitUntil(
    condition: Callable[[], T | None], timeout: float = 10.0, what: str = "condition"
) -> T:
    """
    Poll C{condition} until it returns something true, or raise
    C{AssertionError} after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def canConnect(host: str, port: int) -> bool:
    """
    Whether a TCP connection to C{host:port} succeeds now.
    """
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def readAll(sock: socket.socket) -> bytes:
    """
    Read from C{sock} until the peer closes it.
    """
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def roundTrip(sock: socket.socket, payload: bytes) -> bytes:
    """
    Send C{payload} on the connected C{sock}, half-close, and read the echo
    to the end.
    """
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    return readAll(sock)


def temporaryDirectory(testCase: Any) -> Path:
    """
    A new empty directory under the system's temporary directory, removed
    when C{testCase} ends.  (Trial's C{mktemp} makes paths relative to the
    current directory, which under pytest is the repository.)
    """
    path = Path(tempfile.mkdtemp(prefix="netservices-test-"))
    testCase.addCleanup(shutil.rmtree, path, True)
    return path


def isolatedConfig(**sections: str) -> str:
    """
    A tap.conf with the given sections (name to body text; underscores
    stand for dashes) and every other service that has an C{enabled} key
    turned off, so that test daemons never take the default ports.
    """
    from services.config import SECTIONS

    text = []
    for name, cls in SECTIONS.items():
        body = sections.pop(name.replace("-", "_"), None)
        if body is not None:
            text.append(f"[{name}]\n{body}\n")
        elif "enabled" in {f.name for f in dataclasses.fields(cls)}:
            text.append(f"[{name}]\nenabled = no\n")
    if sections:
        raise ValueError(f"no such sections: {', '.join(sections)}")
    return "\n".join(text)


def servicesImportedBy(dropin: str) -> list[str]:
    """
    The modules of the C{services} package that loading the twistd dropin
    C{twisted/plugins/DROPIN} imports, in a fresh interpreter (plugin scans
    load every dropin, so they should import none).
    """
    path = ROOT / "twisted" / "plugins" / dropin
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'services' or m.startswith('services.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def twistdCommand() -> list[str]:
    """
    The C{twistd} of the interpreter running the tests.
    """
    candidate = Path(sys.executable).parent / "twistd"
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("twistd")
    if found is None:
        raise RuntimeError("twistd is not installed next to the test interpreter")
    return [found]


class Daemon:
    """
    A real C{twistd -n netservices} in its own temporary directory.

    C{wrapper} is a command line that runs it (C{ip netns exec NS timeout
    ...}); it must exec the daemon or pass SIGTERM on to it.

    @ivar directory: its working directory (pidfile, log, sockets).
    @ivar process: the running process.
    """

    def __init__(
        self,
        args: Sequence[str],
        config: str | None = None,
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
        twistdArgs: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-test-"))
        self.logPath = self.directory / "twistd.log"
        command = [*wrapper, *twistdCommand()] + [
            "--pidfile=",
            "--logfile",
            str(self.logPath),
            *twistdArgs,
            "-n",
            "netservices",
        ]
        if config is not None:
            path = self.directory / "tap.conf"
            path.write_text(config)
            command += ["--config", str(path)]
        command += list(args)
        environment = dict(os.environ)
        environment.pop("NETSERVICES_CONFIG", None)
        environment.update(env or {})
        self._output = open(self.directory / "output", "wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=environment,
            preexec_fn=preexec,
        )

    def log(self) -> str:
        """
        What the daemon has logged so far.
        """
        text = ""
        for path in (self.logPath, self.directory / "output"):
            try:
                text += path.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def waitForLog(self, text: str, timeout: float = STARTUP_LIMIT) -> str:
        """
        Wait until the log contains C{text}; fail early if the daemon exits.
        """

        def check() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"twistd exited with {self.process.returncode} before logging "
                    f"{text!r}:\n{self.log()}"
                )
            log = self.log()
            return log if text in log else None

        return waitUntil(check, timeout, f"{text!r} in the twistd log")

    def waitForTCP(
        self, port: int, host: str = "127.0.0.1", timeout: float = STARTUP_LIMIT
    ) -> None:
        """
        Wait until the daemon accepts TCP connections on C{host:port} and
        twistd has opened its log file (the listeners accept as soon as
        they are bound, before twistd starts logging).
        """

        def check() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"twistd exited with {self.process.returncode}:\n{self.log()}"
                )
            return canConnect(host, port) and self.logPath.exists()

        waitUntil(check, timeout, f"twistd to listen on {host}:{port}")

    def terminate(self) -> None:
        """
        Send the daemon SIGTERM.
        """
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int:
        """
        SIGTERM the daemon and wait for it to exit; return its status.
        """
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        return self.process.returncode


def ReactorDaemon(reactor: str, config: str) -> Daemon:
    """
    A L{Daemon} run with C{twistd --reactor REACTOR} (twistd's own options
    come before the subcommand).
    """
    return Daemon([], config, twistdArgs=[f"--reactor={reactor}"])


#: Run by L{lackingInternals}: twistd, on a Twisted that lacks the private
#: names given before C{--} (as C{FASTPATH=module:Attr.attr}).
_LACKING = """
import sys
split = sys.argv.index("--")
lacking, sys.argv = sys.argv[1:split], sys.argv[split + 1:]
from services._twisted import PrivateName, reactor
reactor.PRIVATE_NAMES += tuple(
    PrivateName(path, "absent on purpose", ("tests",), fastPaths=(fast,))
    for fast, path in (spec.split("=", 1) for spec in lacking)
)
from twisted.scripts.twistd import run
run()
"""


def lackingInternals(lacking: dict[str, str]) -> list[str]:
    """
    A C{wrapper} for L{Daemon}: twistd runs as on a Twisted release that
    lacks one more private name for each fast path of C{lacking} (fast path
    to a name that does not exist), as a newer Twisted could.
    """
    return [sys.executable, "-c", _LACKING, *(f"{k}={v}" for k, v in lacking.items()), "--"]


def runTwistd(
    args: Sequence[str],
    timeout: float = 30.0,
    cwd: str | None = None,
    twistdArgs: Sequence[str] = ("--pidfile=", "-n"),
) -> subprocess.CompletedProcess[str]:
    """
    Run C{twistd TWISTDARGS netservices ARGS} to completion (for runs
    expected to exit by themselves, such as configuration errors, or the
    parent of a daemonized twistd, which exits once its child has started).

    @param twistdArgs: twistd's own options (default: no pidfile, in the
        foreground).
    """
    command = twistdCommand() + [*twistdArgs, "netservices", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=cwd or tempfile.gettempdir()
    )


def processGone(pid: int) -> bool:
    """
    Whether process C{pid} has exited (a zombie waiting for a parent that
    does not reap it counts as exited).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


class DaemonizedTwistd:
    """
    A real daemonized C{twistd netservices} (no C{-n}) in its own temporary
    directory, with its pidfile and log file there.

    @ivar directory: its working directory.
    @ivar pid: the daemon's process id, from its pidfile.
    @ivar started: the run of the parent twistd, which exits once the
        daemon has started.
    """

    def __init__(self, config: str, args: Sequence[str] = ()) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="netservices-test-"))
        self.pidPath = self.directory / "twistd.pid"
        self.logPath = self.directory / "twistd.log"
        (self.directory / "tap.conf").write_text(config)
        self.started = runTwistd(
            ["--config", "tap.conf", *args],
            cwd=str(self.directory),
            twistdArgs=(f"--pidfile={self.pidPath}", f"--logfile={self.logPath}"),
        )
        if self.started.returncode != 0:
            raise AssertionError(
                f"daemonized twistd failed ({self.started.returncode}): {self.started.stderr}"
            )
        self.pid = int(waitUntil(lambda: self.pidPath.exists() and self.pidPath.read_text(), 10, "the pidfile"))

    def log(self) -> str:
        """
        What the daemon has logged so far.
        """
        try:
            return self.logPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def waitForLog(self, text: str, count: int = 1, timeout: float = STARTUP_LIMIT) -> str:
        """
        Wait until the log contains C{text} (C{count} times); fail early if
        the daemon exits.
        """

        def check() -> str | None:
            if processGone(self.pid):
                raise AssertionError(f"the daemon exited before logging {text!r}:\n{self.log()}")
            log = self.log()
            return log if log.count(text) >= count else None

        return waitUntil(check, timeout, f"{text!r} in the daemon's log")

    def stop(self, timeout: float = 15.0) -> None:
        """
        SIGTERM the daemon and wait for it to exit (SIGKILL after
        C{timeout} seconds); remove its directory.
        """
        if not processGone(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            try:
                waitUntil(lambda: processGone(self.pid), timeout, "the daemon to exit")
            except AssertionError:
                os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


def getEach(port: int, paths: Sequence[str], threads: int = 8) -> list[object]:
    """
    GET each of C{paths} from C{127.0.0.1:port}, one connection per request,
    from C{threads} threads at once (so that every worker of a daemon takes
    some); return the failures (statuses other than 200, errors).
    """
    import http.client
    import threading

    failures: list[object] = []

    def client(mine: Sequence[str]) -> None:
        for path in mine:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures.append((path, response.status))
            except OSError as e:
                failures.append((path, e))
            finally:
                connection.close()

    running = [threading.Thread(target=client, args=(paths[k::threads],)) for k in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(120)
    return failures


def isolatedNetwork(command: Sequence[str], pingGroups: bool = False) -> list[str]:
    """
    C{command} run in a network namespace of its own (C{unshare -n}) with
    only its loopback interface, up; the namespace goes away with the
    command.  With C{pingGroups}, every group there may open unprivileged
    ICMP sockets (C{net.ipv4.ping_group_range}, which is per namespace).
    Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN).
    """
    setup = "ip link set lo up"
    if pingGroups:
        setup += " && echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range"
    return ["unshare", "-n", "sh", "-c", setup + ' && exec "$@"', "sh", *command]


def canIsolateNetwork() -> bool:
    """
    Whether L{isolatedNetwork} works here.
    """
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    done = subprocess.run(isolatedNetwork(["true"]), capture_output=True, check=False)
    return done.returncode == 0


async def turnUntil(
    reactor: object, condition: Callable[[], T | None], timeout: float = 10.0, what: str = "condition"
) -> T:
    """
    Let C{reactor} run until C{condition} returns something true, or raise
    C{AssertionError} after C{timeout} seconds: L{waitUntil} for tests whose
    sockets the reactor itself serves.
    """
    from twisted.internet.task import deferLater

    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await deferLater(reactor, 0.01)  # type: ignore[arg-type]


def makeCertificate(
    directory: Path, name: str = "server", hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path]:
    """
    Write a self-signed certificate for C{hosts} (IP addresses and DNS
    names) and its key as PEM files in C{directory}.

    @return: the certificate and key paths.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certPath = directory / f"{name}.crt"
    keyPath = directory / f"{name}.key"
    certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyPath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certPath, keyPath


def haproxyExecutable() -> str:
    """
    The haproxy program, which Debian installs in /usr/sbin.
    """
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SkipTest("haproxy is not installed (tests/system-deps.sh installs it)")
    return found


class HAProxy:
    """
    A foreground C{haproxy} with its own configuration and an admin socket,
    run by the command line C{wrapper} when given (C{ip netns exec ...}).
    """

    def __init__(self, directory: Path, config: str, wrapper: Sequence[str] = ()) -> None:
        self.directory = directory
        self.admin = directory / "admin.sock"
        path = directory / "haproxy.cfg"
        path.write_text(
            "global\n"
            f"    stats socket {self.admin} mode 600 level admin\n"
            "    maxconn 512\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 2s\n"
            "    timeout client 10s\n"
            "    timeout server 10s\n"
            "    retries 3\n"
            "    option redispatch\n" + config
        )
        executable = haproxyExecutable()
        check = subprocess.run([executable, "-c", "-q", "-f", str(path)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self._output = open(directory / "haproxy.out", "wb")
        self.process = subprocess.Popen(
            [*wrapper, executable, "-db", "-f", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        waitUntil(self.admin.exists, 10, "haproxy's admin socket")

    def command(self, text: str) -> str:
        """
        Run one command on the admin socket and return its answer.
        """
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.admin))
            s.sendall(text.encode() + b"\n")
            answer = b""
            while data := s.recv(65536):
                answer += data
        return answer.decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """
        C{show stat} for servers, as C{"backend/server"} to its fields.
        """
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            f"{row['pxname']}/{row['svname']}": row
            for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def stop(self) -> None:
        """
        Stop haproxy and wait for it.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


class BufferingTransport(StringTransport):
    """
    A L{StringTransport} with a send buffer like Twisted's socket
    transports': a write that takes it over C{bufferSize} bytes pauses the
    registered producer; L{peerReads} takes bytes out as a peer that reads
    would, and resumes the producer once the buffer is empty.  Whether the
    transport reads (C{producerState}) and whether it was aborted are
    recorded.
    """

    bufferSize = 1024
    producerPaused = False
    aborted = False
    offset = 0
    _tempDataLen = 0

    @property
    def dataBuffer(self) -> bytes:
        """
        What is queued, as Twisted's socket transports name it.
        """
        return self.value()

    def write(self, data: bytes) -> None:
        """
        Queue C{data}; pause the producer when the buffer is full.
        """
        StringTransport.write(self, data)
        producer = self.producer
        if producer is not None and not self.producerPaused and len(self.value()) > self.bufferSize:
            self.producerPaused = True
            producer.pauseProducing()

    def writeSequence(self, data: Sequence[bytes]) -> None:
        """
        Queue the pieces of C{data} as one write.
        """
        self.write(b"".join(data))

    def peerReads(self, size: int | None = None) -> bytes:
        """
        The peer reads C{size} bytes (all if L{None}); an empty buffer
        resumes the producer.
        """
        queued = self.value()
        taken, rest = (queued, b"") if size is None else (queued[:size], queued[size:])
        self.clear()
        self.io.write(rest)
        if not rest and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()
        return taken

    def abortConnection(self) -> None:
        """
        Record the abort.
        """
        self.aborted = True
        self.disconnecting = True


class HalfClosingTransport(StringTransport):
    """
    A L{StringTransport} that records a write shutdown
    (C{loseWriteConnection}) and an abort, as a TCP transport has them.
    """

    writeClosed = False
    aborted = False

    def loseWriteConnection(self) -> None:
        """
        Record the write shutdown.
        """
        self.writeClosed = True

    def abortConnection(self) -> None:
        """
        Record the abort.
        """
        self.aborted = True


def chromiumExecutable() -> str:
    """
    The headless browser (Debian's C{chromium} package, see
    tests/system-deps.sh), or skip.
    """
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise SkipTest("chromium is not installed (tests/system-deps.sh installs it)")
    return found


def headlessChromium(
    url: str, directory: Path, *options: str, budget: int = 5000, timeout: float = 90.0
) -> subprocess.CompletedProcess[bytes]:
    """
    Load C{url} in a headless Chromium with a fresh profile under
    C{directory}, without any network traffic of its own (no updates, sync
    or QUIC), and let the page run for C{budget} milliseconds of virtual
    time (which stands still while a request is pending, so the page's own
    requests all complete whatever the load); C{options} says what to
    produce (C{--dump-dom}, C{--screenshot=PATH}).
    """
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=directory))
    command = [
        chromiumExecutable(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget}",
        *options,
        url,
    ]
    return subprocess.run(command, capture_output=True, timeout=timeout, check=True)


def h2Socket(port: int, host: str = "127.0.0.1") -> Any:
    """
    A TLS connection to C{host:port} (certificate unchecked) on which ALPN
    chose C{h2}, with a 10-second timeout.
    """
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=10)
    sock = context.wrap_socket(raw, server_hostname=host)
    if sock.selected_alpn_protocol() != "h2":
        sock.close()
        raise AssertionError(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
    return sock


def closedByPeer(sock: Any, timeout: float = 20.0) -> bool:
    """
    Read and discard until the peer closes C{sock} (True), or C{timeout}
    seconds pass (False).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:  # reset, or TLS torn down
            return True
    return False


def defaultSignals() -> None:
    """
    A C{preexec_fn} that gives a child process the default SIGINT and
    SIGQUIT.  A test run started in the background of a non-interactive
    shell, or by a runner whose workers ignore them (pytest-xdist), passes
    them on ignored, and neither a shell's C{trap} nor Python's Ctrl-C
    handling can then see them: a test that stops a child with SIGINT, as
    a terminal would, needs them back.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def buildReactor(test: SynchronousTestCase) -> NetservicesReactor:
    """
    A L{services.nsepoll._reactor.NetservicesReactor} that is never run nor
    installed, and whose descriptors are closed when the test ends.
    """
    from services.nsepoll._reactor import NetservicesReactor

    reactor = NetservicesReactor()

    def close() -> None:
        for selectable in list(reactor._selectables.values()):
            for remove in (reactor.removeReader, reactor.removeWriter):
                try:
                    remove(selectable)
                except OSError:  # its socket was closed first
                    pass
            if selectable is not reactor.waker and not getattr(selectable, "disconnected", False):
                selectable.connectionLost(Failure(error.ConnectionDone()))
        reactor.waker.connectionLost(None)
        reactor._poller.close()

    test.addCleanup(close)
    return reactor


@implementer(IPushProducer)
class RecordingProducer:
    """
    A streaming producer that records what its consumer asks of it.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


def tcpPair() -> tuple[socket.socket, socket.socket]:
    """
    Two ends of a TCP connection on 127.0.0.1 (server end first).
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=5)
        server, _ = listener.accept()
    return server, client


class RecordingSocket:
    """
    A socket that records the flags of each C{send} and, when C{limit} is
    set, takes at most that many bytes on the first C{send}; everything else
    is the real socket's.
    """

    def __init__(self, sock: socket.socket, limit: int | None = None) -> None:
        self._sock = sock
        self.limit = limit
        self.sends: list[tuple[bytes, int]] = []

    def send(self, data: Any, flags: int = 0) -> int:
        data = bytes(data)
        if self.limit is not None:
            data, self.limit = data[: self.limit], None
        self.sends.append((data, flags))
        return self._sock.send(data, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Connection:
    """
    A twisted.web channel over a real TCP transport on one end of a loopback
    connection; the test is the client on the other end.  Nothing runs a
    reactor: L{pump} calls C{doWrite} where one would.
    """

    def __init__(self, test: SynchronousTestCase, root: Any, cls: type = tcp.Server,
                 reactor: Any = None) -> None:
        # Imported here: lab hosts import this module, and need no web.
        from twisted.web.server import Site

        ours, self.peer = tcpPair()
        test.addCleanup(self.peer.close)
        test.addCleanup(ours.close)
        self.reactor = reactor if reactor is not None else MemoryReactorClock()
        site = Site(root, reactor=self.reactor)
        site.log = lambda request: None  # type: ignore[method-assign]
        self.channel = site.buildProtocol(None)
        self.transport = cls(ours, self.channel, ("127.0.0.1", 4321), None, 1, self.reactor)
        self.channel.makeConnection(self.transport)
        self.http = self.channel._channel  # the HTTPChannel that requests see

    def request(self, path: bytes, headers: bytes = b"") -> None:
        """
        Send a GET of C{path} with C{headers} (whole header lines).
        """
        self.channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")

    def pump(self, timeout: float = 10.0) -> bytes:
        """
        Read one whole response (by its Content-Length) as the client,
        letting the transport write what it queued whenever its socket is
        writable (as a reactor would), for at most C{timeout} seconds.
        """
        received = bytearray()
        self.peer.setblocking(False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                while True:
                    data = self.peer.recv(1 << 20)
                    if not data:
                        return bytes(received)
                    received += data
            except BlockingIOError:
                pass
            head, found, body = bytes(received).partition(b"\r\n\r\n")
            if found and len(body) >= int(response(head + found)[1].get(b"content-length", b"0")):
                break
            flush = getattr(self.reactor, "_flush", None)
            if flush is not None:
                flush()
            if self.transport in self.reactor.getWriters():
                select.select([self.peer], [self.transport.socket], [], 0.05)
                self.transport.doWrite()
            else:
                select.select([self.peer], [], [], 0.05)
        return bytes(received)


def response(raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """
    Split one HTTP response into status line, headers and body.
    """
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines)
    return status, headers, body


# Run inside lab hosts by tests.netlab.Host.call (JSON in and out).


def peersWhen(
    port: int, names: list[str], timeout: float = 20.0, present: bool = True
) -> dict[str, Any]:
    """
    Poll C{/status} on this host's web C{port} until its discovery peers are
    exactly C{names} (or, with C{present} false, include none of them),
    for at most C{timeout} seconds: the peers by name, how long it took, and
    when it was done (C{time.monotonic()}, the same clock in every host).
    """
    started = time.monotonic()
    while True:
        url = f"http://127.0.0.1:{port}/status"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                peers = json.load(answer)["services"]["discovery"]["peers"]
        except OSError:  # the daemon is not listening yet
            peers = []
        found = {peer["name"]: peer for peer in peers}
        done = sorted(found) == sorted(names) if present else not set(found) & set(names)
        if done or time.monotonic() - started > timeout:
            return {"peers": found, "seconds": time.monotonic() - started, "at": time.monotonic()}
        time.sleep(0.02)


def endpointsEcho(endpoints: list[str]) -> dict[str, bool]:
    """
    Whether each C{host:port} (C{[host]:port}) echo endpoint answers.
    """
    found = {}
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect((host, int(port)))
                s.sendall(b"ping")
                found[endpoint] = s.recv(4) == b"ping"
        except OSError:
            found[endpoint] = False
    return found
