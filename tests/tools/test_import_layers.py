"""Every import of the package runs down the layers of docs/layout.md, and no modules import each other.

Imports are read with ``ast`` (top-level and inside functions, absolute and relative), so a lazy
import counts as much as one at the top. Each module's layer is the first entry of docs/layout.md's
numbered list whose path it lies under; a module may import its own layer and the ones listed before it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from helpers import ROOT

LAYOUT = ROOT / "docs" / "layout.md"
PACKAGE = ROOT / "sna_det"


def module_name(path: Path) -> str:
    """``sna_det/engine/defaults.py`` -> "sna_det.engine.defaults"; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> Dict[str, Path]:
    """{dotted name: file} of every module and package of ``sna_det``."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_names(path: Path, name: str) -> Iterator[Tuple[str, int]]:
    """(dotted name, line) of everything ``path`` (module ``name``) imports, relative imports resolved;
    ``from a import b`` gives "a.b" (b may be a module or a name in a)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield f"{source}.{alias.name}", node.lineno


def import_edges(modules: Dict[str, Path]) -> Dict[Tuple[str, str], int]:
    """{(importer, imported module of sna_det): first line} over every module of the package."""
    edges: Dict[Tuple[str, str], int] = {}
    for name, path in modules.items():
        for target, line in imported_names(path, name):
            while target and target not in modules:  # "pkg.module.function" -> "pkg.module"
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("sna_det"):
                edges.setdefault((name, target), line)
    return edges


def layout_layers() -> List[List[str]]:
    """docs/layout.md's numbered list: per layer, the paths it names (``sna_det/engine/``,
    ``sna_det/config.py``, ``modeling/``: relative to ``sna_det/``); "except" clauses dropped."""
    text = LAYOUT.read_text()
    items = re.findall(r"^\d+\. (.*?)(?=^\d+\. |^\s*$)", text, flags=re.M | re.S)
    layers = []
    for item in items:
        head = re.split(r":\s", item, maxsplit=1)[0]
        head = re.sub(r"except `[^`]*`", "", head)
        named = re.findall(r"`([^`]+)`", head)
        layers.append([p if p.startswith(("sna_det", "tools", "datasets")) else f"sna_det/{p}" for p in named])
    return layers


def layer_of(name: str, layers: List[List[str]]) -> int:
    """The number (1-based) of the layer that module ``name`` lies in; the most specific path wins
    (``sna_det/data/datasets/`` before ``sna_det/data/``)."""
    path = name.replace(".", "/")
    best: Tuple[int, int] = (-1, 0)
    for number, paths in enumerate(layers, start=1):
        for entry in paths:
            stem = entry.removesuffix(".py").rstrip("/")
            if path in (stem, stem.removesuffix("/__init__")) or path.startswith(stem + "/"):
                best = max(best, (len(stem), number))
    assert best[1], f"{name} lies in no layer of docs/layout.md"
    return best[1]


def strongly_connected(nodes: Set[str], edges: Set[Tuple[str, str]]) -> List[List[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    following: Dict[str, List[str]] = {n: [] for n in nodes}
    for a, b in edges:
        following[a].append(b)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in following[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_reader_finds_every_kind_of_import(tmp_path):
    """Top-level and function-level, absolute and relative (``.``, ``..``, ``from .. import module``)."""
    package = tmp_path / "pkg" / "engine"
    package.mkdir(parents=True)
    source = (
        "import os\nfrom ..config import add_config\nfrom .. import export\nimport pkg.utils.cli\n"
        "def f():\n    from .predictor import Predictor\n    from ..analysis.figures import save\n"
    )
    (package / "defaults.py").write_text(source)
    names = [n for n, _ in imported_names(package / "defaults.py", "pkg.engine.defaults")]
    assert names == [
        "os", "pkg.config.add_config", "pkg.export", "pkg.utils.cli",
        "pkg.engine.predictor.Predictor", "pkg.analysis.figures.save",
    ]  # fmt: skip


def test_the_layers_are_read_from_the_layout():
    layers = layout_layers()
    assert len(layers) >= 6 and "sna_det/utils/" in layers[0] and "tools/" in layers[-1]
    assert layer_of("sna_det.utils.cli", layers) == 1
    assert layer_of("sna_det.data.dicom", layers) < layer_of("sna_det.data.datasets.catalog", layers)
    assert layer_of("sna_det.config", layers) < layer_of("sna_det.engine.defaults", layers)
    assert layer_of("sna_det.engine.defaults", layers) < layer_of("sna_det.analysis.attention_report", layers)
    # every module lies in one layer (layer_of asserts it)
    assert {layer_of(name, layers) for name in package_modules()} <= set(range(1, len(layers) + 1))


def test_no_import_runs_up_a_layer():
    layers = layout_layers()
    edges = import_edges(package_modules())
    up = [
        f"{a} (layer {layer_of(a, layers)}) imports {b} (layer {layer_of(b, layers)}) at line {line}"
        for (a, b), line in sorted(edges.items())
        if layer_of(b, layers) > layer_of(a, layers)
    ]
    assert up == []


def test_no_modules_import_each_other():
    modules = package_modules()
    edges = set(import_edges(modules))
    # a package's __init__ importing its own modules is how a package exports; a module importing
    # its package (for a name the package re-exports) would close a circle with it, and is counted
    assert strongly_connected(set(modules), edges) == []


def test_a_circle_is_found():
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d")}
    assert strongly_connected({"a", "b", "c", "d", "e", "f"}, edges) == [["d", "e"], ["a", "b", "c"]]
