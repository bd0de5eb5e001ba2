"""
Tests for the twistd dropin and for packaging: an installed copy of
netservices, run from another directory, is listed by C{twistd --help}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin, getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from services import __version__

from tests.support import ROOT, servicesImportedBy, twistdCommand


class PluginTests(SynchronousTestCase):
    """
    The dropin names our service maker.
    """

    def test_found(self) -> None:
        """
        Twisted's plugin system finds the netservices service maker, and it
        points to services.daemon.tap.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
        maker = makers["netservices"]
        verifyObject(IPlugin, maker)
        verifyObject(IServiceMaker, maker)
        from services.daemon.tap import Options, makeService

        self.assertIs(maker.options, Options)
        self.assertIs(maker.makeService, makeService)

    def test_dropinImportsNothingOfOurs(self) -> None:
        """
        Importing the dropin does not import the services package (plugin
        scans import every dropin).
        """
        self.assertEqual(servicesImportedBy("netservices.py"), [])

    def test_editableInstallListedFromElsewhere(self) -> None:
        """
        With the development (editable) install, twistd run from an
        unrelated directory lists netservices.
        """
        result = subprocess.run(
            twistdCommand() + ["--help"], capture_output=True, text=True, cwd=tempfile.gettempdir()
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("netservices", result.stdout)


class WheelTests(SynchronousTestCase):
    """
    The wheel ships the package and the two dropin files, and works when
    installed into a fresh virtual environment.
    """

    def buildWheel(self) -> Path:
        out = Path(self.mktemp()).absolute()
        out.mkdir(parents=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--wheel-dir", str(out), str(ROOT)],
            check=True,
            capture_output=True,
        )
        (wheel,) = out.glob("netservices-*.whl")
        return wheel

    def test_wheelInstallsAndIsListed(self) -> None:
        """
        The wheel holds services/ (with py.typed) and the two dropins
        (twisted/plugins/netservices.py and netservices_reactor.py) and
        nothing of Twisted's own; once installed in a fresh venv, `twistd
        --help` run from another directory lists netservices, `twistd
        netservices --version` prints our version and `twistd
        --help-reactors` lists nsepoll.
        """
        wheel = self.buildWheel()
        names = zipfile.ZipFile(wheel).namelist()
        self.assertIn("twisted/plugins/netservices.py", names)
        self.assertIn("twisted/plugins/netservices_reactor.py", names)
        self.assertIn("services/py.typed", names)
        self.assertIn("services/daemon/tap.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertFalse([n for n in names if n.endswith("dropin.cache") or n.startswith("tests/")])

        env_dir = Path(self.mktemp()).absolute()
        # A venv without pip of its own (bootstrapping pip into it took
        # 13 s): this interpreter's pip installs into it with --python, the
        # same as its own would; --no-compile leaves byte-compiling the
        # dependencies (16 s) to the imports that need it.
        venv.EnvBuilder(with_pip=False).create(env_dir)
        python = env_dir / "bin" / "python"
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python),
             "install", "--quiet", "--no-compile", str(wheel)],
            check=True, capture_output=True, env=environ,
        )
        elsewhere = tempfile.mkdtemp()
        listed = subprocess.run(
            [str(env_dir / "bin" / "twistd"), "--help"],
            capture_output=True, text=True, cwd=elsewhere, env=environ,
        )
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("netservices", listed.stdout)
        version = subprocess.run(
            [str(env_dir / "bin" / "twistd"), "netservices", "--version"],
            capture_output=True, text=True, cwd=elsewhere, env=environ,
        )
        self.assertEqual(version.stdout.strip(), f"netservices {__version__}", version.stderr)
        reactors = subprocess.run(
            [str(env_dir / "bin" / "twistd"), "--help-reactors"],
            capture_output=True, text=True, cwd=elsewhere, env=environ,
        )
        self.assertIn("nsepoll", reactors.stdout)
