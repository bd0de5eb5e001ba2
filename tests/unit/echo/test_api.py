"""
Tests for L{services.echo}'s public API: every name of C{__all__} is there
with a docstring, nothing else public is offered, and importing the package
costs none of its modules until a name is used.
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import services.echo

from tests.support import ROOT


class PublicNamesTests(SynchronousTestCase):
    """
    C{__all__} is exactly what the package exports.
    """

    def test_everyNameResolves(self) -> None:
        """
        Each name of C{__all__} is an attribute of the package, defined in
        one of its private modules; each class and function has its own
        docstring.
        """
        for name in services.echo.__all__:
            value = getattr(services.echo, name)
            if isinstance(value, int):  # a constant, documented where defined
                continue
            self.assertTrue(value.__module__.startswith("services.echo._"), name)
            self.assertTrue((value.__doc__ or "").strip(), name)

    def test_allIsTheMapping(self) -> None:
        """
        C{__all__} lists each exported name once, and only those.
        """
        names = services.echo.__all__
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(set(names), set(services.echo._MODULES))

    def test_unknownName(self) -> None:
        """
        A name the package does not export is an L{AttributeError}, as for
        any module.
        """
        self.assertRaises(AttributeError, getattr, services.echo, "readQuotes")


class LazyImportTests(SynchronousTestCase):
    """
    The package imports a module only for the names used.
    """

    def test_lazy(self) -> None:
        """
        In a fresh interpreter, importing C{services.echo} imports none of
        its modules, and using L{services.echo.TCPProber} imports only the
        clients' module.
        """
        code = (
            "import sys, services.echo\n"
            "before = sorted(m for m in sys.modules if m.startswith('services.echo.'))\n"
            "services.echo.TCPProber\n"
            "after = sorted(m for m in sys.modules if m.startswith('services.echo.'))\n"
            "print(before, after)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=str(ROOT),
        )
        self.assertEqual(result.stdout.strip(), "[] ['services.echo._client']")
