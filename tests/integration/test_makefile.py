# -*- test-case-name: tests.integration.test_makefile -*-
"""
Tests for the Makefile: what C{make run} and C{make test} install, and how
C{make run} stops, with real make and twistd processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from tests.support import ROOT, canConnect, defaultSignals, freePort, isolatedConfig, twistdCommand, waitUntil


def make(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """
    Start C{make -C ROOT ARGS}.
    """
    if shutil.which("make") is None:
        raise AssertionError("make is not installed")
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        preexec_fn=defaultSignals,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


class InstallTests(TestCase):
    """
    C{make run} installs the package alone; C{make test} the test extras.
    """

    def dryRun(self, target: str) -> str:
        venv = tempfile.mkdtemp(prefix="netservices-venv-")
        self.addCleanup(shutil.rmtree, venv, True)
        process = make("-n", target, f"VENV={venv}/v")
        out, err = process.communicate(timeout=60)
        self.assertEqual(process.returncode, 0, err)
        return out

    def test_run(self) -> None:
        """
        C{make run} installs C{.} without the test extras.
        """
        out = self.dryRun("run")
        self.assertIn("pip install --quiet -e .\n", out)
        self.assertNotIn("[test]", out)

    def test_test(self) -> None:
        """
        C{make test} installs the test extras (which also satisfy a later
        C{make run}).
        """
        out = self.dryRun("test")
        self.assertIn("pip install --quiet -e '.[test]'", out)


class RunStopTests(TestCase):
    """
    Stopping C{make run} (Ctrl-C in its terminal, or SIGTERM to make) stops
    the daemon, and make reports no error.
    """

    def start(self) -> tuple[subprocess.Popen[str], int]:
        """
        C{make run} over this interpreter's installation (a venv directory
        whose C{bin} is ours, marked installed), on an echo port of its own.
        """
        venv = Path(tempfile.mkdtemp(prefix="netservices-venv-"))
        self.addCleanup(shutil.rmtree, venv, True)
        (venv / "bin").symlink_to(Path(twistdCommand()[0]).parent)
        (venv / ".installed").touch()
        port = freePort()
        config = venv / "tap.conf"
        config.write_text(isolatedConfig(echo=f"listen = tcp:{port}:interface=127.0.0.1"))
        process = make("run", f"VENV={venv}", f"ARGS=--config {config}", start_new_session=True)
        self.addCleanup(lambda: process.poll() is None and os.killpg(process.pid, signal.SIGKILL))

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"make run exited: {process.communicate()}")
            return canConnect("127.0.0.1", port)

        waitUntil(listening, 30, "make run to listen")
        return process, port

    def assertStoppedQuietly(self, process: subprocess.Popen[str], port: int) -> None:
        out, err = process.communicate(timeout=60)
        self.assertNotIn("make: ***", err)
        self.assertEqual(err, "")
        self.assertIn("Server Shut Down.", out)
        self.assertFalse(canConnect("127.0.0.1", port))

    def test_ctrlC(self) -> None:
        """
        SIGINT to the whole process group, as a terminal sends it.
        """
        process, port = self.start()
        os.killpg(process.pid, signal.SIGINT)
        self.assertStoppedQuietly(process, port)

    def test_sigterm(self) -> None:
        """
        SIGTERM to make alone.
        """
        process, port = self.start()
        process.send_signal(signal.SIGTERM)
        self.assertStoppedQuietly(process, port)
