# -*- test-case-name: tests.unit.test_layout -*-
"""
The layout's rules, checked on the source of every module under
C{services/}.

L{readTree} parses each module with L{ast} into a L{Graph}: every import
(at module level and inside functions, relative forms resolved, C{from
services import x} resolved to the module C{services.x}), and the few other
things a rule looks at (attribute names, string constants, comments, exits).
Each rule is a pure function from a graph to the list of its offences, one
line each (C{importer -> imported, line N}), so that a failure names every
edge to fix; each rule also has a test on a small synthetic graph, so that
it cannot pass by finding nothing.

The rules (the package's architecture, bottom up):
  - C{services._twisted} imports only Twisted (with its extras' packages),
    zope, the standard library and itself;
  - C{services} imports nothing of ours, C{services.logs} and
    C{services.stats} only C{_twisted}; C{services.net} and
    C{services.nsepoll} import only each other (one way), C{_twisted},
    C{logs}, C{stats} and C{services};
  - the library packages (echo, discovery, web, client) import only the
    layers below them and themselves, never config, daemon, cli or each
    other;
  - only C{services.daemon} and C{services.cli} import C{services.config};
  - no import cycles (imports under C{if TYPE_CHECKING:} do not run, and do
    not count here; they count for every layering rule);
  - no module over 400 lines without a paragraph starting "Why one module: "
    in its docstring;
  - no private Twisted name outside C{services._twisted};
  - the global reactor is imported only where it is defaulted, installed or
    run (L{REACTOR_ALLOWED});
  - nothing below the entry points exits the process (L{EXIT_ALLOWED});
  - each library package's C{__all__} is exactly its documented public API,
    and its modules are private by name;
  - the README's examples import only those public names.

Why one module: the reader, the rules and their tests are read together
(a rule's test is the only statement of what it means), and nothing else
uses them.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import itertools
import re
import sys
import textwrap
import tokenize
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support import ROOT

#: The package whose layout is checked.
PACKAGE = "services"

#: The library packages: their C{__init__} is the public API.
LIBRARY = ("services.echo", "services.discovery", "services.web", "services.client")

#: The layers every library package may import (besides itself).
BELOW_LIBRARY = (
    "services",
    "services._twisted",
    "services.logs",
    "services.stats",
    "services.net",
    "services.nsepoll",
)

#: The bottom of the package: C{services} (the version) imports nothing
#: of ours; C{logs} and C{stats} only C{_twisted}, which is below them (it
#: imports only Twisted: C{logs} reaches the log publisher's observers
#: through it).
BOTTOM = {
    "services": (),
    "services.logs": ("services._twisted",),
    "services.stats": ("services._twisted",),
}

#: What C{services._twisted} may import besides Twisted, zope, the standard
#: library and itself: the packages of Twisted's own C{tls} and C{http2}
#: extras, whose objects Twisted's internals hand over (the HTTP/2
#: connection's priority tree, the TLS connection).
TWISTED_EXTRAS = ("OpenSSL", "service_identity", "idna", "h2", "hpack", "hyperframe", "priority")

#: What C{services.net} and C{services.nsepoll} may import of ours.
BELOW_NET = ("services", "services._twisted", "services.logs", "services.stats")

#: The layers that may import C{services.config}: the daemon turns config
#: sections into values; the CLI uses its value parsers.
CONFIG_USERS = ("services.config", "services.daemon", "services.cli")

#: Where the global reactor may be imported, as (module, scope): the one
#: default, the reactor package itself (which installs it), the daemon's
#: installation of the configured reactor, and the CLI's C{react}.  A
#: module ending in C{.*} stands for the package's modules, a scope C{*}
#: for the whole module; any other scope is a function (or class) and
#: everything nested in it.
REACTOR_ALLOWED = (
    ("services.net.defaults", "defaultReactor"),
    ("services.nsepoll", "*"),
    ("services.nsepoll.*", "*"),
    ("services.daemon.tap", "installConfiguredReactor"),
    ("services.cli", "main"),
)

#: Where the process may exit (C{raise SystemExit}, C{sys.exit()}...), in
#: the form of L{REACTOR_ALLOWED}: the CLI, and twistd's entry points
#: (C{Options} and C{makeService}).
EXIT_ALLOWED = (
    ("services.cli", "*"),
    ("services.cli.*", "*"),
    ("services.daemon.tap", "Options"),
    ("services.daemon.tap", "makeService"),
)

#: How many lines a module may have without saying why in its docstring.
LONG_MODULE = 400

#: The paragraph of a long module's docstring that says why it is one.
WHY_ONE_MODULE = "Why one module: "

#: A dotted Twisted path with a private part, in a string
#: (C{"twisted.web._http2"}, C{"twisted.internet.posixbase:_NO_FILEDESC"}).
_PRIVATE_TWISTED_PATH = re.compile(r"\btwisted(?:\.[A-Za-z]\w*)*[.:]_[A-Za-z]\w*")


@dataclass(frozen=True)
class Import:
    """
    One name bound by an import statement (or a module imported by name,
    C{import_module("...")}).

    @ivar importer: the module that imports.
    @ivar module: the module named in the statement, relative forms resolved
        (C{"twisted.internet"} for C{from twisted.internet import reactor}).
    @ivar name: the name imported from C{module}, or L{None} for C{import
        module}.
    @ivar target: the module the importer depends on: C{module.name} when
        that is a module of ours, C{module} otherwise.
    @ivar line: the statement's line.
    @ivar scope: the enclosing classes and functions (C{"Options.parse"}),
        empty at module level.
    @ivar typeOnly: whether the import is under C{if TYPE_CHECKING:}.
    """

    importer: str
    module: str
    name: str | None
    target: str
    line: int
    scope: str = ""
    typeOnly: bool = False

    def __str__(self) -> str:
        imported = (
            self.target
            if self.name is None or self.target != self.module
            else (f"{self.module}:{self.name}")
        )
        return f"{self.importer} -> {imported}, line {self.line}"


@dataclass(frozen=True)
class Use:
    """
    Something a module's code does that a rule looks at.

    @ivar kind: C{"attribute"} (C{x.name}, read or set), C{"string"} (a
        string constant that is not a docstring), C{"comment"},
        C{"definition"} (a name defined in a class body: a method or a class
        attribute, which may override one of a base class) or C{"exit"}
        (C{raise SystemExit}, C{sys.exit()}, C{os._exit()}, C{exit()}).
    @ivar text: the name, string, comment or exit.
    @ivar line: where.
    @ivar scope: as for L{Import}.
    """

    kind: str
    text: str
    line: int
    scope: str = ""


@dataclass(frozen=True)
class Module:
    """
    One module of the package, as a rule sees it.

    @ivar name: its dotted name (a package's is its C{__init__}'s).
    @ivar lines: how many lines it has.
    @ivar docstring: its docstring, cleaned, or C{""}.
    @ivar imports: what it imports.
    @ivar uses: what else it does that a rule looks at.
    @ivar isPackage: whether it is a package's C{__init__}.
    """

    name: str
    lines: int = 1
    docstring: str = ""
    imports: tuple[Import, ...] = ()
    uses: tuple[Use, ...] = ()
    isPackage: bool = False


@dataclass(frozen=True)
class Graph:
    """
    Every module of the package, by name, with its imports.
    """

    modules: Mapping[str, Module]

    def imports(self) -> Iterator[Import]:
        """
        Every import of every module, in module order.
        """
        for name in sorted(self.modules):
            yield from self.modules[name].imports

    def internal(self) -> Iterator[Import]:
        """
        The imports whose target is one of the graph's modules.
        """
        return (i for i in self.imports() if i.target in self.modules)


@dataclass(frozen=True)
class Attribute:
    """
    One attribute of a package module, as the C{__all__} rule sees it.

    @ivar kind: C{"class"}, C{"function"}, C{"module"} or C{"value"}.
    @ivar ours: whether it is defined in our package.
    @ivar documented: whether it has a docstring of its own.
    """

    kind: str
    ours: bool = True
    documented: bool = True


@dataclass(frozen=True)
class Surface:
    """
    A library package's public face: its C{__all__} (L{None} when it has
    none) and its attributes.
    """

    name: str
    all: tuple[str, ...] | None
    attributes: Mapping[str, Attribute] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadmeImport:
    """
    One import of ours in the README: C{from module import name}, or
    C{import module} (name L{None}).
    """

    module: str
    name: str | None
    line: int

    def __str__(self) -> str:
        statement = (
            f"import {self.module}"
            if self.name is None
            else (f"from {self.module} import {self.name}")
        )
        return f"README.md line {self.line}: {statement}"


# The reader.


def _isTypeChecking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _docstringNodes(tree: ast.AST) -> set[int]:
    """
    The ids of the string constants of C{tree} that are docstrings.
    """
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.add(id(first.value))
    return found


class _Reader(ast.NodeVisitor):
    """
    Collects one module's imports and uses.
    """

    def __init__(self, module: str, isPackage: bool, known: set[str], docstrings: set[int]) -> None:
        self.module = module
        parts = module.split(".")
        self.package = parts if isPackage else parts[:-1]
        self.known = known
        self.docstrings = docstrings
        self.scope: list[str] = []
        self.typeOnly = 0
        self.imports: list[Import] = []
        self.uses: list[Use] = []

    def _add(self, module: str, name: str | None, line: int) -> None:
        target = module
        if name is not None and f"{module}.{name}" in self.known:
            target = f"{module}.{name}"
        elif name is None and module.split(".")[0] == PACKAGE:
            # import services.a.b: the longest prefix that is a module.
            parts = module.split(".")
            while len(parts) > 1 and ".".join(parts) not in self.known:
                parts.pop()
            target = ".".join(parts)
        self.imports.append(
            Import(self.module, module, name, target, line, ".".join(self.scope), self.typeOnly > 0)
        )

    def _use(self, kind: str, text: str, line: int) -> None:
        self.uses.append(Use(kind, text, line, ".".join(self.scope)))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, None, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package[: len(self.package) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        for alias in node.names:
            self._add(module, None if alias.name == "*" else alias.name, node.lineno)

    def visit_If(self, node: ast.If) -> None:
        if not _isTypeChecking(node.test):
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.typeOnly += 1
        for statement in node.body:
            self.visit(statement)
        self.typeOnly -= 1
        for statement in node.orelse:
            self.visit(statement)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(expression)
        self.scope.append(node.name)
        for statement in node.body:
            names: list[str] = []
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [statement.name]
            elif isinstance(statement, ast.Assign):
                names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names = [statement.target.id]
            for name in names:
                self._use("definition", name, statement.lineno)
            self.visit(statement)
        self.scope.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expression in [*node.decorator_list, node.args]:
            self.visit(expression)
        if node.returns is not None:
            self.visit(node.returns)
        self.scope.append(node.name)
        for statement in node.body:
            self.visit(statement)
        self.scope.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._use("attribute", node.attr, node.lineno)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings:
            self._use("string", node.value, node.lineno)

    def visit_Raise(self, node: ast.Raise) -> None:
        exception = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exception, ast.Name) and exception.id == "SystemExit":
            self._use("exit", "raise SystemExit", node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if isinstance(function, ast.Name) and function.id in ("exit", "quit"):
            self._use("exit", f"{function.id}()", node.lineno)
        elif (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and (function.value.id, function.attr) in (("sys", "exit"), ("os", "_exit"))
        ):
            self._use("exit", f"{function.value.id}.{function.attr}()", node.lineno)
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self._add(first.value, None, node.lineno)
        self.generic_visit(node)


def _comments(source: str) -> Iterator[tuple[str, int]]:
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                yield token.string, token.start[0]
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover (ast parsed it)
        return


def moduleName(path: str) -> tuple[str, bool]:
    """
    The dotted name of the module at C{path} (relative, with C{/}), and
    whether it is a package's C{__init__}.
    """
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def parseModules(sources: Mapping[str, str]) -> Graph:
    """
    The graph of the modules C{sources} (relative path to source text).
    """
    names = {path: moduleName(path) for path in sources}
    known = {name for name, _ in names.values()}
    modules = {}
    for path, source in sources.items():
        name, isPackage = names[path]
        tree = ast.parse(source, path)
        reader = _Reader(name, isPackage, known, _docstringNodes(tree))
        reader.visit(tree)
        uses = reader.uses + [Use("comment", text, line) for text, line in _comments(source)]
        modules[name] = Module(
            name,
            lines=len(source.splitlines()),
            docstring=ast.get_docstring(tree) or "",
            imports=tuple(reader.imports),
            uses=tuple(uses),
            isPackage=isPackage,
        )
    return Graph(modules)


def readTree(root: Path = ROOT, package: str = PACKAGE) -> Graph:
    """
    The graph of every module under C{root/package}.
    """
    sources = {
        path.relative_to(root).as_posix(): path.read_text()
        for path in sorted((root / package).rglob("*.py"))
    }
    return parseModules(sources)


@cache
def realGraph() -> Graph:
    """
    The graph of this checkout's C{services}, read once.
    """
    return readTree()


# The rules: each takes what was read and returns its offences.


def component(name: str) -> str:
    """
    The layer C{name} belongs to: C{services} itself, or the first
    subpackage or module below it (C{services.net} for C{services.net.listen}).
    """
    return ".".join(name.split(".")[:2])


def _within(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _allowed(module: str, scope: str, allowed: Iterable[tuple[str, str]]) -> bool:
    for where, within in allowed:
        inModule = module.startswith(where[:-1]) if where.endswith(".*") else module == where
        if inModule and (within == "*" or scope == within or scope.startswith(within + ".")):
            return True
    return False


def twistedOnly(graph: Graph) -> list[str]:
    """
    Imports of C{services._twisted} of anything but Twisted, zope, the
    standard library, L{TWISTED_EXTRAS} and C{services._twisted} itself.
    """
    offences = []
    for i in graph.imports():
        if not _within(i.importer, ["services._twisted"]):
            continue
        top = i.target.split(".")[0]
        if top in ("twisted", "zope", *TWISTED_EXTRAS) or top in sys.stdlib_module_names:
            continue
        if not _within(i.target, ["services._twisted"]):
            offences.append(str(i))
    return offences


def bottomLayers(graph: Graph) -> list[str]:
    """
    Imports of ours by the bottom of the package: C{services},
    C{services.logs} and C{services.stats} only what L{BOTTOM} gives them;
    C{services.net} and C{services.nsepoll} only L{BELOW_NET} and each
    other, and that in one direction only.
    """
    offences = []
    across: dict[tuple[str, str], list[Import]] = {}
    for i in graph.imports():
        if not _within(i.target, [PACKAGE]):
            continue
        layer, imported = component(i.importer), component(i.target)
        if layer == imported and layer != PACKAGE:
            continue
        if i.importer in BOTTOM:
            if imported not in BOTTOM[i.importer]:
                allowed = " and ".join(BOTTOM[i.importer]) or "nothing of ours"
                offences.append(f"{i} (imports {allowed})")
        elif layer in ("services.net", "services.nsepoll"):
            if imported in ("services.net", "services.nsepoll"):
                across.setdefault((layer, imported), []).append(i)
            elif imported not in BELOW_NET:
                offences.append(f"{i} (above {layer})")
    if len(across) == 2:
        for i in (
            across[("services.net", "services.nsepoll")]
            + across[("services.nsepoll", "services.net")]
        ):
            offences.append(f"{i} (services.net and services.nsepoll import each other)")
    return offences


def libraryImports(graph: Graph) -> list[str]:
    """
    Imports of ours by a library package of anything but the layers below
    it (L{BELOW_LIBRARY}) and itself.
    """
    offences = []
    for i in graph.internal():
        own = component(i.importer)
        if own in LIBRARY and component(i.target) not in (*BELOW_LIBRARY, own):
            offences.append(str(i))
    return offences


def configImporters(graph: Graph) -> list[str]:
    """
    Imports of C{services.config} from outside L{CONFIG_USERS}.
    """
    return [
        str(i)
        for i in graph.internal()
        if component(i.target) == "services.config" and component(i.importer) not in CONFIG_USERS
    ]


def cycles(graph: Graph) -> list[str]:
    """
    One import cycle (C{a -> b, line 3 -> a, line 9}) for each group of
    modules that import each other, imports inside functions included and
    imports under C{if TYPE_CHECKING:} (which never run) left out.
    """
    edges: dict[str, dict[str, int]] = {name: {} for name in graph.modules}
    for i in graph.internal():
        if not i.typeOnly and i.target != i.importer:
            edges[i.importer].setdefault(i.target, i.line)
    offences = []
    for group in _stronglyConnected(edges):
        if len(group) < 2:
            continue
        start = min(group)
        path = _pathBack(edges, start, group)
        steps = " -> ".join(f"{b} (line {edges[a][b]} of {a})" for a, b in itertools.pairwise(path))
        offences.append(f"{start} -> {steps}")
    return offences


def _stronglyConnected(edges: Mapping[str, Mapping[str, int]]) -> list[set[str]]:
    """
    Tarjan's strongly connected components of C{edges}.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    onStack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for successor in sorted(edges[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in onStack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                onStack.discard(member)
                group.add(member)
                if member == node:
                    break
            groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups, key=min)


def _pathBack(edges: Mapping[str, Mapping[str, int]], start: str, group: set[str]) -> list[str]:
    """
    The shortest path from C{start} back to itself inside C{group}.
    """
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(edges[node]):
                if successor not in group:
                    continue
                if successor == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(previous[chain[-1]])
                    return chain[::-1] + [start]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")  # pragma: no cover


def longModules(graph: Graph, limit: int = LONG_MODULE) -> list[str]:
    """
    Modules over C{limit} lines whose docstring has no paragraph starting
    with L{WHY_ONE_MODULE}.
    """
    offences = []
    for name in sorted(graph.modules):
        module = graph.modules[name]
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", module.docstring)]
        if module.lines > limit and not any(p.startswith(WHY_ONE_MODULE) for p in paragraphs):
            offences.append(f"{name}: {module.lines} lines")
    return offences


def leaves(paths: Iterable[str]) -> dict[str, list[str]]:
    """
    The private attribute names (C{"_dataBuffer"}) of private name paths
    (C{"twisted.web.http:HTTPChannel._dataBuffer"}), each with its paths:
    the last attribute with a leading underscore that is not a dunder.  A
    path whose attributes are all public (C{"twisted.web._http2:H2Stream.__init__"})
    has none: its private part is the module, which only an import reaches.
    """
    found: dict[str, list[str]] = {}
    for path in paths:
        for attribute in reversed(path.partition(":")[2].split(".")):
            if attribute.startswith("_") and not attribute.endswith("__"):
                found.setdefault(attribute, []).append(path)
                break
    return found


def privateTwisted(graph: Graph, registered: Mapping[str, Sequence[str]]) -> list[str]:
    """
    Uses of private Twisted names outside C{services._twisted}: imports of
    a Twisted module or name with a leading underscore, strings naming one,
    C{# Twisted private} comments, and any use of a leaf of
    C{registered} (see L{leaves}): C{.leaf}, the string C{"leaf"}, or a
    method or attribute of that name defined in a class (an override).
    A leaf that is also the name of one of our own attributes is reported
    too: it must be renamed, so that this stays a plain grep.
    """
    offences = []
    for name in sorted(graph.modules):
        if _within(name, ["services._twisted"]):
            continue
        module = graph.modules[name]
        for i in module.imports:
            if i.module.split(".")[0] != "twisted":
                continue
            parts = i.module.split(".") + ([i.name] if i.name else [])
            if any(part.startswith("_") for part in parts):
                offences.append(f"{i} (a private Twisted name)")
        for use in module.uses:
            if use.kind == "comment" and "twisted private" in use.text.lower():
                offences.append(f"{name}: comment {use.text.strip()!r}, line {use.line}")
            elif use.kind == "string" and _PRIVATE_TWISTED_PATH.search(use.text):
                offences.append(f"{name}: string {use.text!r}, line {use.line}")
            elif use.kind in ("attribute", "string", "definition") and use.text in registered:
                where = ", ".join(registered[use.text])
                shown = {"attribute": f".{use.text}", "string": repr(use.text)}.get(
                    use.kind, f"defines {use.text} in {use.scope}"
                )
                offences.append(f"{name}: {shown} (registered: {where}), line {use.line}")
    return list(dict.fromkeys(offences))  # one line for two uses on one line


def _isReactorImport(i: Import) -> bool:
    return (i.module == "twisted.internet" and i.name == "reactor") or _within(
        i.module, ["twisted.internet.reactor"]
    )


def reactorImports(graph: Graph, allowed: Sequence[tuple[str, str]] = REACTOR_ALLOWED) -> list[str]:
    """
    Imports of the global reactor outside C{allowed} (see L{REACTOR_ALLOWED}).
    """
    return [
        f"{i} (in {i.scope or 'the module'})"
        for i in graph.imports()
        if _isReactorImport(i) and not _allowed(i.importer, i.scope, allowed)
    ]


def exits(graph: Graph, allowed: Sequence[tuple[str, str]] = EXIT_ALLOWED) -> list[str]:
    """
    Exits of the process outside C{allowed} (see L{EXIT_ALLOWED}).
    """
    offences = []
    for name in sorted(graph.modules):
        for use in graph.modules[name].uses:
            if use.kind == "exit" and not _allowed(name, use.scope, allowed):
                offences.append(
                    f"{name}: {use.text} in {use.scope or 'the module'}, line {use.line}"
                )
    return offences


def privateModules(graph: Graph) -> list[str]:
    """
    Modules of the library packages whose names are public (the package's
    C{__init__} is the public API; everything under it is private by name).
    """
    offences = []
    for name in sorted(graph.modules):
        package = component(name)
        if package in LIBRARY and name != package:
            first = name[len(package) + 1 :].split(".")[0]
            if not first.startswith("_"):
                offences.append(f"{name}: a public name inside {package}")
    return offences


def dishonestAll(surfaces: Iterable[Surface]) -> list[str]:
    """
    What makes a library package's C{__all__} other than exactly its
    documented public API: no C{__all__}, an empty one, a name it does not
    have, a class or function without a docstring, a public class or
    function of ours that C{__all__} leaves out.
    """
    offences = []
    for surface in surfaces:
        if not surface.all:
            offences.append(
                f"{surface.name}: __all__ is {'empty' if surface.all == () else 'missing'}"
            )
        names = surface.all or ()
        for duplicate in sorted({n for n in names if names.count(n) > 1}):
            offences.append(f"{surface.name}.__all__ lists {duplicate} twice")
        for name in names:
            attribute = surface.attributes.get(name)
            if attribute is None:
                offences.append(f"{surface.name}.__all__ lists {name}, which the package lacks")
            elif attribute.kind in ("class", "function") and not attribute.documented:
                offences.append(f"{surface.name}.{name} has no docstring")
        for name, attribute in sorted(surface.attributes.items()):
            public = not name.startswith("_") and attribute.kind in ("class", "function")
            if public and attribute.ours and name not in names:
                offences.append(f"{surface.name}.{name} is public but not in __all__")
    return offences


def readmeImports(text: str) -> list[ReadmeImport]:
    """
    The imports of ours in the README's C{python} blocks (parsed) and in
    its other lines (inline C{from services... import ...}, shell commands).
    """
    found: list[ReadmeImport] = []
    lines = text.splitlines()
    inBlock: set[int] = set()
    fence = re.compile(r"^(\s*)```(\w*)\s*$")
    number = 0
    while number < len(lines):
        opening = fence.match(lines[number])
        if not opening:
            number += 1
            continue
        end = number + 1
        while end < len(lines) and not fence.match(lines[end]):
            end += 1
        if opening.group(2) == "python":
            inBlock.update(range(number, end + 1))
            block = textwrap.dedent("\n".join(lines[number + 1 : end]))
            found += _blockImports(block, number + 2)
        number = end + 1
    for number, line in enumerate(lines, 1):
        if number - 1 not in inBlock:
            found += _lineImports(line, number)
    return sorted(found, key=lambda i: i.line)


def _blockImports(block: str, firstLine: int) -> list[ReadmeImport]:
    try:
        tree = ast.parse(block)
    except SyntaxError:
        found = []
        for offset, line in enumerate(block.splitlines()):
            found += _lineImports(line, firstLine + offset)
        return found
    found = []
    for node in ast.walk(tree):
        line = firstLine + getattr(node, "lineno", 1) - 1
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            found += [ReadmeImport(node.module or "", a.name, line) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [
                ReadmeImport(a.name, None, line)
                for a in node.names
                if a.name.split(".")[0] == PACKAGE
            ]
    return found


_FROM_IMPORT = re.compile(r"\bfrom\s+(services(?:\.\w+)*)\s+import\s+\(?\s*(\w+(?:\s*,\s*\w+)*)")
_IMPORT = re.compile(r"(?<![\w.])import\s+(services(?:\.\w+)*)")


def _lineImports(line: str, number: int) -> list[ReadmeImport]:
    found = []
    for match in _FROM_IMPORT.finditer(line):
        for name in re.split(r"\s*,\s*", match.group(2)):
            found.append(ReadmeImport(match.group(1), name, number))
    for match in _IMPORT.finditer(line):
        found.append(ReadmeImport(match.group(1), None, number))
    return found


def readmePublic(imports: Iterable[ReadmeImport], public: Mapping[str, Sequence[str]]) -> list[str]:
    """
    The README's imports that are not a public name: C{from P import N}
    with C{P} a library package and C{N} in its C{__all__} (C{public}), or
    the reactor's C{install} (C{from services import nsepoll}, C{from
    services.nsepoll import install}); C{import P} of a library package.
    """
    offences = []
    for i in imports:
        if i.name is None:
            fine = i.module in public
        elif i.module == PACKAGE:
            fine = i.name in ("nsepoll", "__version__")
        elif i.module == "services.nsepoll":
            fine = i.name == "install"
        else:
            fine = i.name in public.get(i.module, ())
        if not fine:
            offences.append(str(i))
    return offences


def _kind(value: Any) -> str:
    if inspect.isclass(value):
        return "class"
    if inspect.isfunction(value) or inspect.isbuiltin(value):
        return "function"
    if inspect.ismodule(value):
        return "module"
    return "value"


def _documented(value: Any) -> bool:
    """
    Whether a class or function has a docstring of its own (a dataclass
    without one is given its signature as C{__doc__}: read the source).
    """
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(value))).body[0]
        return bool(ast.get_docstring(node))
    except (OSError, TypeError, SyntaxError, IndexError):
        doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
        return bool(doc)


def readSurface(name: str) -> Surface:
    """
    The public face of the package C{name}, imported: its attributes, the
    names of C{__all__} and C{dir()} included (a package that imports its
    names when first used, with a module C{__getattr__}, has them only
    when asked).
    """
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    attributes = {}
    for attribute in sorted({*vars(package), *dir(package), *(exported or ())}):
        if attribute.startswith("__"):
            continue
        try:
            value = getattr(package, attribute)
        except AttributeError:
            continue
        kind = _kind(value)
        module = value.__name__ if kind == "module" else getattr(value, "__module__", "") or ""
        attributes[attribute] = Attribute(
            kind,
            ours=_within(module, [PACKAGE]),
            documented=_documented(value) if kind in ("class", "function") else True,
        )
    return Surface(name, None if exported is None else tuple(exported), attributes)


# The tests.


class _RuleTestCase(SynchronousTestCase):
    """
    Assertions shared by the rules' tests.
    """

    def assertNoOffences(self, offences: list[str], rule: str) -> None:
        """
        Fail with every offence of C{rule}, one a line.
        """
        if offences:
            self.fail(f"{rule}: {len(offences)} offence(s):\n  " + "\n  ".join(offences))


def _package(path: str) -> str:
    return path + "/__init__.py"


class GraphReaderTests(_RuleTestCase):
    """
    L{readTree} and L{parseModules} find every import, in every form.
    """

    def test_realTree(self) -> None:
        """
        The real tree has more than 50 modules and more than 50 imports
        between them, and the reader finds a function-level import, a
        relative one and a C{from services import} one, so that no rule
        can pass by reading nothing.
        """
        graph = realGraph()
        self.assertGreater(len(graph.modules), 50)
        internal = list(graph.internal())
        self.assertGreater(len(internal), 50)
        self.assertTrue(any(i.scope for i in internal), "no import inside a function")
        for name in ("services", "services.net.defaults", "services._twisted"):
            self.assertTrue(name in graph.modules, f"{name} not read")
        self.assertTrue(graph.modules["services.nsepoll"].isPackage)

    def test_forms(self) -> None:
        """
        Absolute, relative (C{from . import x}, C{from ..y import z}), C{from
        services import x} and function-level imports resolve to the module
        they import; a name imported from a package stays the package; an
        import under C{if TYPE_CHECKING:} is marked.
        """
        graph = parseModules(
            {
                _package("services"): "__version__ = '1'\n",
                _package("services/net"): "",
                "services/net/listen.py": "",
                "services/logs.py": "",
                _package("services/echo"): "from ._tcp import Echo\n",
                "services/echo/_tcp.py": textwrap.dedent(
                    """\
                    from typing import TYPE_CHECKING
                    from . import _udp
                    from .. import logs
                    from ..net.listen import describeAddress
                    from services import __version__, logs as l
                    import services.net.listen
                    if TYPE_CHECKING:
                        from services.net import listen
                    class Echo:
                        def start(self):
                            from twisted.internet import reactor
                    """
                ),
                "services/echo/_udp.py": "",
            }
        )
        found = [
            (i.target, i.line, i.scope, i.typeOnly)
            for i in graph.modules["services.echo._tcp"].imports
        ]
        self.assertEqual(
            found,
            [
                ("typing", 1, "", False),
                ("services.echo._udp", 2, "", False),
                ("services.logs", 3, "", False),
                ("services.net.listen", 4, "", False),
                ("services", 5, "", False),
                ("services.logs", 5, "", False),
                ("services.net.listen", 6, "", False),
                ("services.net.listen", 8, "", True),
                ("twisted.internet", 11, "Echo.start", False),
            ],
        )
        self.assertEqual(
            [i.target for i in graph.modules["services.echo"].imports], ["services.echo._tcp"]
        )

    def test_uses(self) -> None:
        """
        Attributes, strings (docstrings left out), comments, class-body
        definitions, exits and imports by name are read with their scope.
        """
        graph = parseModules(
            {
                "services/a.py": textwrap.dedent(
                    '''\
                    """Doc."""
                    import importlib, sys
                    class C(Base):
                        """Doc."""
                        _x = 1
                        def _m(self):
                            """Doc."""
                            self._y = "_z"  # Twisted private
                            sys.exit(1)
                    def f():
                        raise SystemExit(2)
                    importlib.import_module("services.b")
                    '''
                ),
                "services/b.py": "",
            }
        )
        module = graph.modules["services.a"]
        uses = {(u.kind, u.text, u.line, u.scope) for u in module.uses}
        self.assertTrue(
            {
                ("definition", "_x", 5, "C"),
                ("definition", "_m", 6, "C"),
                ("attribute", "_y", 8, "C._m"),
                ("string", "_z", 8, "C._m"),
                ("comment", "# Twisted private", 8, ""),
                ("exit", "sys.exit()", 9, "C._m"),
                ("exit", "raise SystemExit", 11, "f"),
            }
            <= uses,
            uses,
        )
        self.assertNotIn("Doc.", {u.text for u in module.uses})
        self.assertEqual(module.docstring, "Doc.")
        self.assertIn("services.b", [i.target for i in module.imports])


class TwistedOnlyTests(_RuleTestCase):
    """
    L{twistedOnly}: C{services._twisted} imports only Twisted.
    """

    def test_tree(self) -> None:
        """
        C{services._twisted} imports only Twisted (and its extras'
        packages), zope, the standard library and itself, at module level
        and in functions.
        """
        self.assertNoOffences(twistedOnly(realGraph()), "services._twisted imports only Twisted")

    def test_rule(self) -> None:
        """
        An import of any other module of ours, or of another distribution,
        is an offence; Twisted, its extras' packages (C{priority}), zope,
        the standard library and C{services._twisted} are not.
        """
        graph = parseModules(
            {
                _package("services/_twisted"): "import re\nfrom twisted.web import http\n",
                "services/_twisted/web.py": (
                    "from services._twisted import PrivateName\nfrom zope.interface import Interface\n"
                    "def f():\n    from services.net import listen\n    import treq\n"
                    "import priority\n"
                ),
                _package("services/net"): "",
            }
        )
        self.assertEqual(
            twistedOnly(graph),
            [
                "services._twisted.web -> services.net:listen, line 4",
                "services._twisted.web -> treq, line 5",
            ],
        )


class BottomLayerTests(_RuleTestCase):
    """
    L{bottomLayers}: the network layer, the reactor, logs and stats import
    nothing above them.
    """

    def test_tree(self) -> None:
        """
        C{services} imports nothing of ours, C{services.logs} and
        C{services.stats} only C{services._twisted}; C{services.net} and
        C{services.nsepoll} import only C{_twisted}, C{logs}, C{stats},
        C{services} and each other (one way).
        """
        self.assertNoOffences(
            bottomLayers(realGraph()), "the bottom layers import nothing above them"
        )

    def test_rule(self) -> None:
        """
        Each kind of offence is found; allowed imports are not offences.
        """
        graph = parseModules(
            {
                _package("services"): "from services import logs\n",
                "services/logs.py": "from services import stats\nfrom services._twisted import logger\n",
                "services/stats.py": "import json\n",
                _package("services/net"): "",
                "services/net/listen.py": (
                    "from services import logs, stats, _twisted\nfrom services.net import tls\n"
                    "def f():\n    from services.echo import _tcp\n"
                ),
                "services/net/tls.py": "from services.nsepoll import fastpath\n",
                _package("services/nsepoll"): "",
                "services/nsepoll/fastpath.py": "from services.net.listen import x\nfrom services.config import y\n",
                _package("services/_twisted"): "",
                _package("services/echo"): "",
                "services/echo/_tcp.py": "",
                _package("services/config"): "",
            }
        )
        self.assertEqual(
            bottomLayers(graph),
            [
                "services -> services.logs, line 1 (imports nothing of ours)",
                "services.logs -> services.stats, line 1 (imports services._twisted)",
                "services.net.listen -> services.echo._tcp, line 4 (above services.net)",
                "services.nsepoll.fastpath -> services.config:y, line 2 (above services.nsepoll)",
                (
                    "services.net.tls -> services.nsepoll.fastpath, line 1 "
                    "(services.net and services.nsepoll import each other)"
                ),
                (
                    "services.nsepoll.fastpath -> services.net.listen:x, line 1 "
                    "(services.net and services.nsepoll import each other)"
                ),
            ],
        )


class LibraryImportsTests(_RuleTestCase):
    """
    L{libraryImports}: the library packages stand on the layers below only.
    """

    def test_tree(self) -> None:
        """
        C{services.echo}, C{.discovery}, C{.web} and C{.client} import only
        C{net}, C{nsepoll}, C{logs}, C{stats}, C{_twisted}, C{services} and
        themselves: never C{config}, C{daemon}, C{cli} nor each other.
        """
        self.assertNoOffences(
            libraryImports(realGraph()), "the library imports only the layers below"
        )

    def test_rule(self) -> None:
        """
        An import of config, daemon, cli or another library package is an
        offence, in a function too; the layers below and the package itself
        are not.
        """
        graph = parseModules(
            {
                _package("services"): "",
                _package("services/web"): "from services.web._site import Site\n",
                "services/web/_site.py": (
                    "from services import __version__, logs\nfrom services.net.listen import x\n"
                    "from services.config import WebConfig\n"
                    "def f():\n    from services.discovery import _service\n"
                ),
                _package("services/discovery"): "",
                "services/discovery/_service.py": "from services.daemon.tap import y\nimport services.cli\n",
                _package("services/config"): "",
                _package("services/daemon"): "",
                "services/daemon/tap.py": "",
                _package("services/cli"): "",
                _package("services/net"): "",
                "services/net/listen.py": "",
                "services/logs.py": "",
            }
        )
        self.assertEqual(
            libraryImports(graph),
            [
                "services.discovery._service -> services.daemon.tap:y, line 1",
                "services.discovery._service -> services.cli, line 2",
                "services.web._site -> services.config:WebConfig, line 3",
                "services.web._site -> services.discovery._service, line 5",
            ],
        )


class ConfigImportersTests(_RuleTestCase):
    """
    L{configImporters}: only the daemon (and the CLI) read config.
    """

    def test_tree(self) -> None:
        """
        Only C{services.daemon} (and C{services.cli}, for value parsers)
        import C{services.config}.
        """
        self.assertNoOffences(
            configImporters(realGraph()), "only daemon and cli import services.config"
        )

    def test_rule(self) -> None:
        """
        An import of config by any other layer is an offence; by the daemon,
        the CLI or config itself it is not.
        """
        graph = parseModules(
            {
                _package("services/config"): "",
                "services/config/_values.py": "from services.config import x\n",
                "services/daemon/tap.py": "from services.config import Config\n",
                "services/cli/fetch.py": "from services.config import parseSize\n",
                "services/net/listen.py": "def f():\n    from services import config\n",
                "services/echo/_tcp.py": "import services.config._values\n",
            }
        )
        self.assertEqual(
            configImporters(graph),
            [
                "services.echo._tcp -> services.config._values, line 1",
                "services.net.listen -> services.config, line 2",
            ],
        )


class CycleTests(_RuleTestCase):
    """
    L{cycles}: no module imports itself through others.
    """

    def test_tree(self) -> None:
        """
        No import cycles among the modules of C{services}, imports inside
        functions included.
        """
        self.assertNoOffences(cycles(realGraph()), "no import cycles")

    def test_rule(self) -> None:
        """
        A cycle through a function-level import is reported with its path,
        once per group; a type-only back edge and a chain are not cycles.
        """
        graph = parseModules(
            {
                "services/a.py": "import services.b\n",
                "services/b.py": "\ndef f():\n    from services import c\n",
                "services/c.py": "from services.a import x\n",
                "services/d.py": "import services.a\nfrom typing import TYPE_CHECKING\n",
                "services/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import services.d\n",
            }
        )
        self.assertEqual(
            cycles(graph),
            [
                (
                    "services.a -> services.b (line 1 of services.a) -> services.c (line 3 of services.b)"
                    " -> services.a (line 1 of services.c)"
                )
            ],
        )
        graph = parseModules(
            {
                "services/d.py": "import services.e\n",
                "services/e.py": (
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import services.d\n"
                ),
            }
        )
        self.assertEqual(cycles(graph), [])


class LongModuleTests(_RuleTestCase):
    """
    L{longModules}: a long module says why it is one.
    """

    def test_tree(self) -> None:
        """
        No module of C{services} is over 400 lines unless its docstring has
        a paragraph starting "Why one module: ".
        """
        self.assertNoOffences(longModules(realGraph()), f"modules over {LONG_MODULE} lines say why")

    def test_rule(self) -> None:
        """
        Over the limit without the paragraph is an offence; with it, or the
        words elsewhere than at a paragraph's start, it is not / is.
        """
        long = "\n" * 10
        graph = parseModules(
            {
                "services/a.py": '"""\nA.\n\nWhy one module: one protocol.\n"""\n' + long,
                "services/b.py": '"""\nB.  Why one module: not a paragraph.\n"""\n' + long,
                "services/c.py": '"""\nC.\n"""\n' + long,
                "services/d.py": '"""D."""\n',
            }
        )
        self.assertEqual(
            longModules(graph, limit=5), ["services.b: 13 lines", "services.c: 13 lines"]
        )


class PrivateTwistedTests(_RuleTestCase):
    """
    L{privateTwisted}: private Twisted names only in C{services._twisted}.
    """

    def test_tree(self) -> None:
        """
        Outside C{services._twisted}, no module imports a private Twisted
        module or name, names one in a string, carries a "# Twisted
        private" comment, or uses (C{.leaf}, C{"leaf"}, an override) a leaf
        of a name registered in L{services._twisted.privateNames}.
        """
        from services._twisted import privateNames

        registered = leaves(name.path for name in privateNames())
        self.assertIn("_dataBuffer", registered)
        self.assertNoOffences(
            privateTwisted(realGraph(), registered),
            "no private Twisted name outside services._twisted",
        )

    def test_leaves(self) -> None:
        """
        A registered path's leaf is its last private attribute (a module
        attribute after the colon, or a class's); a dunder is not one.
        """
        self.assertEqual(
            leaves(
                [
                    "twisted.web.http:HTTPChannel._dataBuffer",
                    "twisted.internet.posixbase:_NO_FILEDESC",
                    "twisted.web._http2:H2Stream.__init__",
                    "twisted.web._http2:H2Connection._abortingCall",
                    "twisted.web.http:HTTPChannel._abortingCall",
                ]
            ),
            {
                "_dataBuffer": ["twisted.web.http:HTTPChannel._dataBuffer"],
                "_NO_FILEDESC": ["twisted.internet.posixbase:_NO_FILEDESC"],
                "_abortingCall": [
                    "twisted.web._http2:H2Connection._abortingCall",
                    "twisted.web.http:HTTPChannel._abortingCall",
                ],
            },
        )

    def test_rule(self) -> None:
        """
        Each form is found outside C{services._twisted} and nothing is
        inside it; a leaf that is a name of ours is reported too, and an
        unregistered private-looking name of ours is not.
        """
        offending = textwrap.dedent(
            """\
            from twisted.internet._sslverify import IOpenSSLTrustRoot
            from twisted.web import _http2
            import twisted.protocols.haproxy._info
            from twisted.web.http import HTTPChannel
            class Channel(HTTPChannel):
                def _respondToBadRequestAndDisconnect(self):  # Twisted private
                    self._dataBuffer = []
                    self._mine = getattr(self, "_dataBuffer")
                    return "twisted.web._newclient"
            """
        )
        registered = leaves(
            [
                "twisted.web.http:HTTPChannel._dataBuffer",
                "twisted.web.http:HTTPChannel._respondToBadRequestAndDisconnect",
            ]
        )
        graph = parseModules(
            {"services/web/_limits.py": offending, "services/_twisted/web.py": offending}
        )
        dataBuffer = "(registered: twisted.web.http:HTTPChannel._dataBuffer)"
        self.assertEqual(
            privateTwisted(graph, registered),
            [
                "services.web._limits -> twisted.internet._sslverify:IOpenSSLTrustRoot, line 1 (a private Twisted name)",
                "services.web._limits -> twisted.web:_http2, line 2 (a private Twisted name)",
                "services.web._limits -> twisted.protocols.haproxy._info, line 3 (a private Twisted name)",
                (
                    "services.web._limits: defines _respondToBadRequestAndDisconnect in Channel "
                    "(registered: twisted.web.http:HTTPChannel._respondToBadRequestAndDisconnect), line 6"
                ),
                f"services.web._limits: ._dataBuffer {dataBuffer}, line 7",
                f"services.web._limits: '_dataBuffer' {dataBuffer}, line 8",
                "services.web._limits: string 'twisted.web._newclient', line 9",
                "services.web._limits: comment '# Twisted private', line 6",
            ],
        )


class ReactorImportTests(_RuleTestCase):
    """
    L{reactorImports}: the global reactor is defaulted in one place.
    """

    def test_tree(self) -> None:
        """
        C{from twisted.internet import reactor} appears only in
        L{services.net.defaults.defaultReactor}, in C{services.nsepoll},
        in C{services.daemon.tap.installConfiguredReactor} and in
        C{services.cli.main} (see L{REACTOR_ALLOWED}).
        """
        self.assertNoOffences(
            reactorImports(realGraph()), "the reactor is defaulted only by services.net.defaults"
        )

    def test_rule(self) -> None:
        """
        Every form of importing the global reactor is found outside the
        allowed places, and only there; an allowed function does not allow
        its module.
        """
        graph = parseModules(
            {
                "services/net/defaults.py": (
                    "def defaultReactor():\n    from twisted.internet import reactor\n"
                    "from twisted.internet import reactor\n"
                ),
                "services/echo/_tcp.py": (
                    "class Echo:\n    def __init__(self):\n        from twisted.internet import reactor as clock\n"
                    "import twisted.internet.reactor\nfrom twisted.internet import task\n"
                ),
                "services/nsepoll/_reactor.py": "from twisted.internet import reactor\n",
            }
        )
        self.assertEqual(
            reactorImports(graph),
            [
                "services.echo._tcp -> twisted.internet:reactor, line 3 (in Echo.__init__)",
                "services.echo._tcp -> twisted.internet.reactor, line 4 (in the module)",
                "services.net.defaults -> twisted.internet:reactor, line 3 (in the module)",
            ],
        )


class ExitTests(_RuleTestCase):
    """
    L{exits}: only the entry points end the process.
    """

    def test_tree(self) -> None:
        """
        No C{raise SystemExit}, C{sys.exit()}, C{os._exit()} or C{exit()}
        below the entry points: only in C{services.cli} and in
        C{services.daemon.tap}'s C{Options} and C{makeService}.
        """
        self.assertNoOffences(exits(realGraph()), "only the entry points exit")

    def test_rule(self) -> None:
        """
        Exits in a service or in C{tap.buildService} are offences; in the
        CLI, C{Options} and C{makeService} they are not.
        """
        graph = parseModules(
            {
                "services/daemon/tap.py": (
                    "import sys\nclass Options:\n    def parseOptions(self):\n        raise SystemExit(1)\n"
                    "def makeService(o):\n    sys.exit(1)\ndef buildService(c):\n    raise SystemExit\n"
                ),
                "services/cli/fetch.py": "import sys\ndef run():\n    sys.exit(2)\n",
                "services/web/_service.py": "import os\ndef stop():\n    os._exit(0)\n",
            }
        )
        self.assertEqual(
            exits(graph),
            [
                "services.daemon.tap: raise SystemExit in buildService, line 8",
                "services.web._service: os._exit() in stop, line 3",
            ],
        )


class PublicAPITests(_RuleTestCase):
    """
    L{dishonestAll} and L{privateModules}: each library package's
    C{__init__} is its public API, and all else is private by name.
    """

    def test_tree(self) -> None:
        """
        C{services.echo}, C{.discovery}, C{.web} and C{.client} each have a
        non-empty C{__all__} of attributes they have, classes and functions
        with docstrings, and no public class or function of ours outside
        it.
        """
        self.assertNoOffences(
            dishonestAll(readSurface(name) for name in LIBRARY),
            "the library packages' __all__ is honest",
        )

    def test_privateModules(self) -> None:
        """
        Every module inside a library package is private by name.
        """
        self.assertNoOffences(
            privateModules(realGraph()), "modules inside library packages are private"
        )

    def test_rule(self) -> None:
        """
        A missing or empty C{__all__}, a name listed twice or absent, an
        undocumented class or function, and a public one left out are
        offences; values, modules and names not ours are not.
        """
        surfaces = [
            Surface("services.echo", None),
            Surface("services.web", ()),
            Surface(
                "services.client",
                ("request", "request", "Response", "missing", "TIMEOUT"),
                {
                    "request": Attribute("function"),
                    "Response": Attribute("class", documented=False),
                    "TIMEOUT": Attribute("value", documented=False),
                    "download": Attribute("function"),
                    "Agent": Attribute("class", ours=False),
                    "_api": Attribute("module"),
                    "_helper": Attribute("function"),
                },
            ),
        ]
        self.assertEqual(
            dishonestAll(surfaces),
            [
                "services.echo: __all__ is missing",
                "services.web: __all__ is empty",
                "services.client.__all__ lists request twice",
                "services.client.Response has no docstring",
                "services.client.__all__ lists missing, which the package lacks",
                "services.client.download is public but not in __all__",
            ],
        )

    def test_privateModulesRule(self) -> None:
        """
        A public module or subpackage inside a library package is an
        offence; private ones, and modules elsewhere, are not.
        """
        graph = parseModules(
            {
                _package("services/echo"): "",
                "services/echo/_tcp.py": "",
                "services/echo/client.py": "",
                _package("services/web/pages"): "",
                "services/web/_http2/frames.py": "",
                "services/net/listen.py": "",
            }
        )
        self.assertEqual(
            privateModules(graph),
            [
                "services.echo.client: a public name inside services.echo",
                "services.web.pages: a public name inside services.web",
            ],
        )

    def test_documented(self) -> None:
        """
        L{readSurface} tells a class without a docstring from one with
        one, dataclasses included (which are given a signature as
        C{__doc__}), and finds the names a package gives only when asked
        (a module C{__getattr__}).
        """
        self.assertTrue(_documented(Surface))
        self.assertFalse(_documented(_Undocumented))
        self.assertFalse(_documented(_undocumented))
        lazy = types.ModuleType("tests._lazyPackage")
        lazy.__all__ = ["Surface"]  # type: ignore[attr-defined]

        def attribute(name: str) -> Any:
            if name == "Surface":
                return Surface
            raise AttributeError(name)

        lazy.__getattr__ = attribute  # type: ignore[method-assign]
        self.patch(sys, "modules", {**sys.modules, lazy.__name__: lazy})
        self.assertEqual(
            readSurface(lazy.__name__).attributes["Surface"], Attribute("class", ours=False)
        )
        surface = readSurface("services.nsepoll")
        self.assertEqual(surface.all, ("install",))
        self.assertEqual(
            surface.attributes["install"], Attribute("function", ours=True, documented=True)
        )


@dataclass(frozen=True)
class _Undocumented:
    value: int


def _undocumented() -> None:
    pass


class ReadmeTests(_RuleTestCase):
    """
    L{readmePublic}: the README's examples import only public names.
    """

    def test_readme(self) -> None:
        """
        Every C{from services... import N} of the README (its python blocks
        and its other lines) imports from C{services.echo}, C{.discovery},
        C{.web} or C{.client} a name in that package's C{__all__}, or the
        reactor's C{install}.
        """
        imports = readmeImports((ROOT / "README.md").read_text())
        self.assertGreater(len(imports), 10)
        public = {name: readSurface(name).all or () for name in LIBRARY}
        self.assertNoOffences(readmePublic(imports, public), "the README imports only public names")

    def test_reading(self) -> None:
        """
        Imports are read from python blocks (indented, multi-line, with
        their README line) and from other lines (inline code, shell).
        """
        text = textwrap.dedent(
            """\
            # Title
            Run `from services import nsepoll; nsepoll.install()` first.

            ```python
            from services.echo import (
                EchoFactory,
                EchoConfig,
            )
            import services.web
            ```

              ```python
              from services.web._limits import LimitedSite
              ```

            ```sh
            python -c "from services.client import request"
            ```
            """
        )
        self.assertEqual(
            [(i.module, i.name, i.line) for i in readmeImports(text)],
            [
                ("services", "nsepoll", 2),
                ("services.echo", "EchoFactory", 5),
                ("services.echo", "EchoConfig", 5),
                ("services.web", None, 9),
                ("services.web._limits", "LimitedSite", 13),
                ("services.client", "request", 17),
            ],
        )

    def test_rule(self) -> None:
        """
        A private module, a name not in C{__all__}, the network layer and
        an unknown package are offences; public names and the reactor's
        install are not.
        """
        imports = [
            ReadmeImport("services.echo", "EchoFactory", 1),
            ReadmeImport("services.echo", "Echo", 2),
            ReadmeImport("services.echo._tcp", "EchoFactory", 3),
            ReadmeImport("services.net.datagram", "listenDatagram", 4),
            ReadmeImport("services", "nsepoll", 5),
            ReadmeImport("services.nsepoll", "install", 6),
            ReadmeImport("services.web", None, 7),
            ReadmeImport("services.config", None, 8),
        ]
        self.assertEqual(
            readmePublic(
                imports, {"services.echo": ["EchoFactory"], "services.web": ["LimitedSite"]}
            ),
            [
                "README.md line 2: from services.echo import Echo",
                "README.md line 3: from services.echo._tcp import EchoFactory",
                "README.md line 4: from services.net.datagram import listenDatagram",
                "README.md line 8: import services.config",
            ],
        )
