# -*- test-case-name: tests.unit.net.test_netlayer -*-
"""
Tests for the shape of the network layer (L{services.net}), the reactor
(L{services.nsepoll}) and the log and stats modules: what they import of
netservices, read from their source, function-level imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import services

_ROOT = Path(services.__file__).parent

#: What each bottom layer may import of netservices.
_ALLOWED = {
    "services._twisted": ("services._twisted",),
    "services.logs": ("services._twisted",),
    "services.stats": (),
    "services.net": ("services._twisted", "services.logs", "services.stats", "services.net"),
    "services.nsepoll": (
        "services._twisted",
        "services.logs",
        "services.stats",
        "services.net",
        "services.nsepoll",
    ),
}


def _moduleName(path: Path) -> str:
    parts = list(path.relative_to(_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _isModule(name: str) -> bool:
    """
    Whether C{name} is a module or package of netservices.
    """
    path = _ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _ourImports(path: Path) -> set[str]:
    """
    The modules of netservices that the module at C{path} imports, at any
    level of its code.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "services":
                # A submodule, or a name of the package itself (its version,
                # its dataclass decorator): the package, below every layer.
                names = [f"services.{alias.name}" for alias in node.names]
                names = [name if _isModule(name) else "services" for name in names]
            else:
                names = [node.module]
        else:
            continue
        found.update(n for n in names if n == "services" or n.startswith("services."))
    return found


def _layer(module: str) -> str | None:
    for layer in sorted(_ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


class LayerTests(SynchronousTestCase):
    """
    The bottom layers import nothing above them, and the network layer's
    modules do not import each other in a circle.
    """

    def test_nothingAbove(self) -> None:
        """
        C{services._twisted} imports only itself, C{services.logs} only
        C{services._twisted}, C{services.stats} nothing of ours, and
        C{services.net} and C{services.nsepoll} only those below them.
        """
        wrong = []
        for path in sorted(_ROOT.rglob("*.py")):
            module = _moduleName(path)
            layer = _layer(module)
            if layer is None:
                continue
            for imported in sorted(_ourImports(path)):
                if imported == "services" and layer in ("services.net", "services.nsepoll"):
                    continue
                if not any(imported == a or imported.startswith(a + ".") for a in _ALLOWED[layer]):
                    wrong.append(f"{module} imports {imported}")
        self.assertEqual(wrong, [])

    def test_noCycles(self) -> None:
        """
        No module of C{services.net} imports, directly or through others of
        the layer, itself.
        """
        graph = {
            _moduleName(path): {i for i in _ourImports(path) if i.startswith("services.net.")}
            for path in (_ROOT / "net").glob("*.py")
        }
        cycles = []

        def visit(module: str, path: tuple[str, ...]) -> None:
            for imported in graph.get(module, ()):
                if imported in path:
                    cycles.append(" -> ".join(path[path.index(imported):] + (imported,)))
                else:
                    visit(imported, path + (imported,))

        for module in graph:
            visit(module, (module,))
        self.assertEqual(cycles, [])

    def test_moduleSizes(self) -> None:
        """
        Each module of the network layer and the reactor is under about 400
        lines, or its docstring says why it is one module.
        """
        long = []
        for path in [*(_ROOT / "net").glob("*.py"), *(_ROOT / "nsepoll").glob("*.py")]:
            text = path.read_text()
            if text.count("\n") > 400 and "Why one module: " not in (ast.get_docstring(ast.parse(text)) or ""):
                long.append(path.name)
        self.assertEqual(long, [])
