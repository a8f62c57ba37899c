"""The package's architecture, checked from the source (AST only: nothing is imported, so it runs in
well under a second and needs no optional dependency).

Layers, lowest first. A module may import modules of its own layer and of the layers below it, never
one above it (checked everywhere: module level, inside functions, under ``if TYPE_CHECKING:``). The
order follows the data flow: frozen encoders -> dense-to-sparse projection -> backends -> search ->
evaluation, with the applications built on top and the command line as the outermost client.

 0. foundation   sparse vectors, vocabulary, dense-vector helpers, top-k, pruning, devices, errors,
                 provenance records, the JSONL exchange format, the checkout's location.
 1. encoders     frozen encoders (MiniLM, BLIP, LAVIS, GloVe, EfficientNet labels), their interfaces, the
                 safe image loader and the inference-free query table: no trained projection here.
 2. data         paired splits, caption proxies (embedded with the MiniLM encoder), caches.
 3. metrics      recall@K and the split evaluation that training uses to pick its epoch
                 (`lsr.eval.metrics`, `lsr.eval.evaluate`): pure functions of vectors and a split.
 4. projection   the dense-to-sparse model and its training (`lsr.d2s`), dense baselines (`lsr.dense`).
 5. sparse encoders   `lsr.encoders.sparse`: a frozen encoder + a trained projection (D2SEncoder,
                 InferenceFreeEncoder), or a label-token encoder, behind one `SparseEncoder` interface.
 6. backends     inverted indexes: embedded and OpenSearch (single vectors and sets).
 7. search       searchers, modes, re-ranking, set scoring over a backend and an encoder.
 8. evaluation   runs over a backend, TREC files, reports, significance tests.
 9. applications image-folder indexing, the HTTP server and search page, the local OpenSearch node
                 manager, reproduction checks: each a use of the layers below.
10. app          `lsr.app`, the application layer (open an index by address, load an encoder, index a
                 split / folder / JSONL file, train from a config), and the lazy facade `lsr/__init__.py`
                 that re-exports it.
11. cli          `lsr.cli`: a thin client of everything below; the only place that may use argparse.

Besides the layers: (a) no import cycle among lsr modules at module level (what runs on import;
``if TYPE_CHECKING:`` blocks and function bodies left out; importing ``a.b.c`` also runs the packages
``a`` and ``a.b``), (c) ``argparse`` appears only under ``lsr/cli/``, (d) no module over 400 lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lsr"
MAX_LINES = 400

# (layer name, module prefixes): a prefix matches the module and its submodules; the longest match wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("lsr.sparse", "lsr.vocab", "lsr.vectors", "lsr.topk", "lsr.prune", "lsr.devices",
                    "lsr.errors", "lsr.provenance", "lsr.exchange", "lsr.project", "lsr.definitions", "lsr.lazy")),
    ("encoders", ("lsr.encoders",)),
    ("data", ("lsr.data",)),
    ("metrics", ("lsr.eval.metrics", "lsr.eval.evaluate")),
    ("projection", ("lsr.d2s", "lsr.dense")),
    ("sparse encoders", ("lsr.encoders.sparse",)),
    ("backends", ("lsr.backends",)),
    ("search", ("lsr.search",)),
    ("evaluation", ("lsr.eval",)),
    ("applications", ("lsr.images", "lsr.serve", "lsr.node", "lsr.reproduce")),
    ("app", ("lsr.app", "lsr")),  # "lsr" is the root package's lazy facade only (see `layer_of`)
    ("cli", ("lsr.cli",)),
]

# (importer, imported) -> why this upward import is accepted. Keep it short; every entry needs a reason.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported lsr module
    line: int
    module_level: bool  # runs when the source is imported (not in a function, not under TYPE_CHECKING)


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def _resolve(name: str) -> str | None:
    """The lsr module that `name` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [t for a in node.names if (t := _resolve(a.name)) and a.name.split(".")[0] == "lsr"]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    if base.split(".")[0] != "lsr":
        return []
    out = []
    for alias in node.names:
        full = f"{base}.{alias.name}"
        target = full if full in MODULES else _resolve(base)
        if target:
            out.append(target)
    return out


def imports_of(module: str) -> list[Import]:
    """Every lsr import in `module`, marked module-level or not."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(Import(module, t, node.lineno, module_level) for t in _targets(node, module))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, module_level)
            return
        inner = module_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, True)
    return found


IMPORTS = {m: imports_of(m) for m in MODULES}


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _runs_on_import(source: str, target: str) -> list[str]:
    """The modules that importing `target` from `source` runs: the target and its packages that are not
    already `source`'s own (those have run before `source`)."""
    own = set(_ancestors(source)) | {source}
    return [p for p in _ancestors(target) if p not in own and p in MODULES] + [target]


def layer_of(module: str) -> int:
    if module == "lsr":
        return next(i for i, (_, prefixes) in enumerate(LAYERS) if "lsr" in prefixes)
    best, level = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix != "lsr" and (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    if level is None:
        raise LookupError(module)
    return level


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(ROOT)}:{imp.line}"


def test_every_module_has_a_layer():
    missing = []
    for module in MODULES:
        try:
            layer_of(module)
        except LookupError:
            missing.append(module)
    assert not missing, (f"{len(missing)} lsr module(s) belong to no layer: {', '.join(missing)}. Add each to "
                         "LAYERS in tests/test_layers.py (and to the docstring's list).")


def find_cycles(module_level_only: bool = True) -> list[list[Import]]:
    """One concrete cycle per strongly connected component of the import graph: the module-level one, or
    with `module_level_only` False every import (inside functions and under TYPE_CHECKING too)."""
    graph: dict[str, dict[str, Import]] = {m: {} for m in MODULES}
    for module, imports in IMPORTS.items():
        for imp in imports:
            if module_level_only and not imp.module_level:
                continue
            for ran in _runs_on_import(module, imp.target):
                if ran != module:
                    graph[module].setdefault(ran, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan; the graph is a few hundred nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for component in components:
        members, start = set(component), min(component)
        path, seen = [start], {start}  # walk inside the component until a node repeats
        while True:
            nxt = min(w for w in graph[path[-1]] if w in members)
            if nxt in seen:
                path = path[path.index(nxt):] + [nxt]
                break
            path.append(nxt)
            seen.add(nxt)
        cycles.append([graph[a][b] for a, b in zip(path, path[1:])])
    return cycles


def _chains(cycles: list[list[Import]]) -> str:
    return "\n".join("  " + " -> ".join([c[0].source] + [f"{i.target} ({_where(i)})" for i in c]) for c in cycles)


def test_no_import_cycles():
    cycles = find_cycles()
    assert not cycles, ("Module-level import cycle(s) among lsr modules; move the shared piece down into a "
                        "module both can import:\n" + _chains(cycles))


def test_no_import_cycles_even_inside_functions():
    """An import inside a function is for a heavy or optional dependency, not to hide a circle: counting
    those imports too, the modules still form no cycle (the three circles of issue 34 were all of this kind)."""
    cycles = find_cycles(module_level_only=False)
    assert not cycles, ("Import cycle(s) among lsr modules once imports inside functions / under TYPE_CHECKING "
                        "count; move the shared piece down instead of importing late:\n" + _chains(cycles))


def upward_imports() -> list[str]:
    problems = []
    known = set()
    for module in MODULES:
        try:
            layer_of(module)
            known.add(module)
        except LookupError:
            pass  # reported by test_every_module_has_a_layer
    for module, imports in IMPORTS.items():
        if module not in known:
            continue
        mine = layer_of(module)
        imports = [i for i in imports if i.target in known]
        for imp in imports:
            if layer_of(imp.target) > mine and (module, imp.target) not in ALLOWED_UPWARD:
                problems.append(f"  {_where(imp)}: {module} [{LAYERS[mine][0]}] imports {imp.target} "
                                f"[{LAYERS[layer_of(imp.target)][0]}]")
                continue
            # importing the target also runs its packages' __init__: their module-level imports count
            for package in _runs_on_import(module, imp.target)[:-1]:
                for inner in IMPORTS[package]:
                    if (inner.module_level and inner.target in known and inner.target != module and layer_of(inner.target) > mine
                            and (module, inner.target) not in ALLOWED_UPWARD):
                        problems.append(f"  {_where(imp)}: {module} [{LAYERS[mine][0]}] imports {imp.target}, whose "
                                        f"package {package} imports {inner.target} [{LAYERS[layer_of(inner.target)][0]}] "
                                        f"({_where(inner)})")
    return sorted(set(problems))


def test_no_upward_imports():
    problems = upward_imports()
    assert not problems, (f"{len(problems)} import(s) reach a higher layer (layers in tests/test_layers.py's "
                          "docstring; move the shared piece down, or pass it in from above):\n" + "\n".join(problems))


def test_allow_list_entries_are_still_needed():
    stale = [f"{a} -> {b}" for a, b in ALLOWED_UPWARD
             if not any(i.target == b for i in IMPORTS.get(a, [])) or layer_of(b) <= layer_of(a)]
    assert not stale, f"ALLOWED_UPWARD entries that no longer apply (remove them): {', '.join(stale)}"


def test_argparse_only_under_cli():
    cli = PACKAGE / "cli"
    found = []
    for path in MODULES.values():
        if cli in path.parents:
            continue
        for n, text in enumerate(path.read_text().splitlines(), 1):
            if "argparse" in text:
                found.append(f"  {path.relative_to(ROOT)}:{n}: {text.strip()[:100]}")
    assert not found, ("argparse belongs to the command line (lsr/cli/) only: take plain values or a config "
                       "dataclass instead of a Namespace. Mentions in comments and docstrings count too (the "
                       "criterion is `git grep -n argparse lsr/`); say 'the command line' there:\n" + "\n".join(found))


def test_no_module_over_400_lines():
    long = sorted((n, str(p.relative_to(ROOT))) for p in MODULES.values()
                  if (n := len(p.read_text().splitlines())) > MAX_LINES)
    assert not long, (f"Module(s) over {MAX_LINES} lines; split them by responsibility: "
                      + ", ".join(f"{path} ({n})" for n, path in long))


@pytest.mark.parametrize("source, expected", [
    ("import lsr.sparse\n", ["lsr.sparse"]),
    ("from lsr.backends.opensearch import client\n", ["lsr.backends.opensearch.client"]),
    ("from lsr.backends.base import Hit\n", ["lsr.backends.base"]),
    ("from . import sparse\n", ["lsr.encoders.sparse"]),
    ("from .base import check_texts\n", ["lsr.encoders.base"]),
])
def test_the_checker_resolves_imports(source, expected):
    node = ast.parse(source).body[0]
    assert _targets(node, "lsr.encoders.inference_free") == expected


def test_the_checker_finds_a_cycle_and_skips_type_checking(monkeypatch, tmp_path):
    fake = {"lsr.a": tmp_path / "a.py", "lsr.b": tmp_path / "b.py", "lsr.c": tmp_path / "c.py"}
    fake["lsr.a"].write_text("from lsr.b import x\n")
    fake["lsr.b"].write_text("import lsr.a\n")
    fake["lsr.c"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lsr.a import y\n"
                             "def f():\n    import lsr.a\n")
    monkeypatch.setattr(f"{__name__}.MODULES", fake)
    imports = {m: imports_of(m) for m in fake}
    assert [i.module_level for i in imports["lsr.c"]] == [False, False]
    monkeypatch.setattr(f"{__name__}.IMPORTS", imports)
    cycles = find_cycles()
    assert len(cycles) == 1 and {i.source for i in cycles[0]} == {"lsr.a", "lsr.b"}


def test_the_checker_finds_upward_imports_also_through_a_package(monkeypatch, tmp_path):
    (tmp_path / "pkg").mkdir()
    fake = {"lsr.low": tmp_path / "low.py", "lsr.high": tmp_path / "high.py", "lsr.pkg": tmp_path / "pkg" / "__init__.py",
            "lsr.pkg.ok": tmp_path / "pkg" / "ok.py"}
    fake["lsr.low"].write_text("def f():\n    from lsr.high import g\nfrom lsr.pkg.ok import h\n")
    fake["lsr.high"].write_text("def g():\n    from lsr.low import f\n")
    fake["lsr.pkg"].write_text("from lsr.high import g\n")
    fake["lsr.pkg.ok"].write_text("")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.MODULES", fake)
    monkeypatch.setattr(f"{__name__}.IMPORTS", {m: imports_of(m) for m in fake})
    monkeypatch.setattr(f"{__name__}.LAYERS", [("low", ("lsr.low", "lsr.pkg.ok")), ("high", ("lsr.high", "lsr.pkg"))])
    problems = upward_imports()
    assert len(problems) == 2 and "low.py:2: lsr.low [low] imports lsr.high [high]" in problems[0]
    assert "whose package lsr.pkg imports lsr.high" in problems[1]
    assert find_cycles() == [] and len(find_cycles(module_level_only=False)) == 1
