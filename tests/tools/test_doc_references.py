"""What the docs and docstrings name exists: file paths, modules and their names, scripts, make targets.

Read: README.md, datasets/README.md, docs/*.md, and every .py file of sna_det/, tools/, datasets/ and
tests/ (docstrings, comments and strings alike). CHANGELOG.md is history and may name what is gone.
"""

from __future__ import annotations

import ast
import glob
import re
from functools import cache
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from helpers import ROOT

PAGES = ["README.md", "datasets/README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
FOLDERS = ("sna_det", "tools", "datasets", "tests")
SOURCES = sorted(
    str(p.relative_to(ROOT))
    for folder in FOLDERS
    for p in (ROOT / folder).rglob("*.py")
    if p != Path(__file__).resolve()  # this file names what is gone, on purpose
)

PATH = re.compile(r"(?<![\w/.\-{}])((?:sna_det|tools|datasets|configs|tests|docs)/[\w./*\-{},]*[\w/}])")
"""A path of the repository (braces as the shell expands them: ``faster_rcnn_R_50_FPN{,_sna}.yaml``)."""
BARE_SCRIPT = re.compile(r"(?<![\w/.\-*{])([\w*]+\.py)\b")
DOTTED = re.compile(r"\bsna_det(?:\.[A-Za-z_]\w*)+")
MODULE_ATTRIBUTE = re.compile(r"``?([a-z][a-z0-9]*_[a-z0-9_]*)\.([A-Za-z_]\w*)")
"""``some_module.name`` in backquotes: a module of the package (by its file name) and a name in it."""
MAKE = re.compile(r"`make ([\w-]+)")

UPSTREAM = ("detectron2's", "detectron2/")
"""A path right after these words is detectron2's (``tools/lazyconfig_train_net.py``), not ours."""
NOT_OURS = {
    "main_vincxr_det.py",  # the SNA authors' training script
    "proposal_utils.py",  # detectron2's
    "rcnn.py",  # detectron2's
    "lazyconfig_train_net.py",  # detectron2's
    "lazyconfig_train_net",  # detectron2's
    "ensemble_boxes",  # the ensemble-boxes package
    "valuerep.py",  # pydicom's, as a warning's origin in a test
    "mine.py",  # a user's module, as a warning's origin in a test
    "t.py",  # a made-up script in a fuzz test
    "nt.py",  # the same after a "\\n" in a string
    "roi_heads",  # a detectron2 model's attribute
}
FILE_SUFFIXES = {"py", "json", "jsonl", "csv", "pth", "pkl", "yaml", "png", "jpg", "ts", "onnx", "txt", "html"}


def lines(text: str) -> Iterator[Tuple[int, str, str]]:
    """(line number, line, the 40 characters before it) of ``text``."""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line, text[max(0, start - 40) : start]
        start += len(line) + 1


def expand_braces(pattern: str) -> List[str]:
    """``a{,_b}.py`` -> ["a.py", "a_b.py"] (nested braces are not used in the docs)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in expand_braces(pattern[: match.start()] + choice + pattern[match.end() :])
    ]


def path_exists(path: str) -> bool:
    return all(glob.glob(str(ROOT / p)) if "*" in p else (ROOT / p).exists() for p in expand_braces(path))


def checked_path(path: str) -> bool:
    """A file of the repository (.py, .yaml, .md) or a folder of the package, tests or docs; other paths
    in examples (``datasets/my_coco``, ``datasets/vindr_cxr/images``) are the user's."""
    return path.endswith((".py", ".yaml", ".md", "}")) or path.startswith(("sna_det/", "tests/", "docs/"))


@cache
def script_names() -> Set[str]:
    return {p.name for folder in (*FOLDERS, "configs") for p in (ROOT / folder).rglob("*.py")} | {"setup.py"}


@cache
def package_modules() -> Dict[str, Path]:
    modules = {}
    for path in (ROOT / "sna_det").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


@cache
def defined_names(path: Path) -> Set[str]:
    """Names a module defines or imports at its top level (also under ``if`` / ``try``)."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def dotted_exists(reference: str) -> bool:
    """``sna_det.engine.PowerIterationDiagnostics``: a module, or a name a module defines."""
    parts = reference.split(".")
    modules = package_modules()
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if module in modules:
            return cut == len(parts) or parts[cut] in defined_names(modules[module])
    return False


def missing_references(path: str, text: str) -> List[str]:
    """What ``text`` (of the file ``path``) names that does not exist, as "path:line: reference"."""
    module_files = {p.stem for p in package_modules().values()} | {p.parent.name for p in package_modules().values()}
    missing = []
    for number, line, before in lines(text):
        for match in PATH.finditer(line):
            name = match.group(1).rstrip(".,")
            context = (before + line[: match.start()]).rstrip("` \n")
            if context.endswith(UPSTREAM) or re.search(r"\{\w*\}", name) or "no_such" in name:
                continue  # detectron2's; an f-string's {placeholder}; a test's missing file on purpose
            if checked_path(name) and not path_exists(name):
                missing.append(f"{path}:{number}: {name}")
        for match in BARE_SCRIPT.finditer(line):
            name = match.group(1)
            if line[match.start() - 1 : match.start()] == "}":
                continue  # a {placeholder}.py
            known = any(Path(n).match(name) for n in script_names()) if "*" in name else name in script_names()
            if not known and name not in NOT_OURS:
                missing.append(f"{path}:{number}: {name}")
        for match in DOTTED.finditer(line):
            if not dotted_exists(match.group(0)):
                missing.append(f"{path}:{number}: {match.group(0)}")
        if not path.startswith("tests/"):
            for match in MODULE_ATTRIBUTE.finditer(line):
                module, name = match.groups()
                if name not in FILE_SUFFIXES and module not in module_files and module not in NOT_OURS:
                    missing.append(f"{path}:{number}: {module}.{name}")
    return missing


def test_docs_and_docstrings_name_what_exists():
    missing = [entry for path in PAGES + SOURCES for entry in missing_references(path, (ROOT / path).read_text())]
    assert missing == []


def test_relative_links_of_the_pages_exist():
    """``[text](../sna_det/config.py)``, ``[text](block.md#anchor)``: relative to the page that links."""
    broken = [
        f"{page}: {target}"
        for page in PAGES
        for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / page).read_text())
        if not target.startswith(("http://", "https://", "#", "mailto:"))
        and not ((ROOT / page).parent / target.split("#")[0]).exists()
    ]
    assert broken == []


def test_make_targets_named_in_the_docs_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    named = {(page, target) for page in PAGES for target in MAKE.findall((ROOT / page).read_text())}
    assert sorted((page, target) for page, target in named if target not in targets) == []


def test_the_checks_find_what_is_gone():
    """The reader on lines naming things that exist and things that do not."""
    assert expand_braces("configs/a{,_sna}.yaml") == ["configs/a.yaml", "configs/a_sna.yaml"]
    assert path_exists("configs/VinDr-CXR/faster_rcnn_R_50_FPN{,_sna}.yaml")
    assert not path_exists("configs/VinDr-CXR/faster_rcnn_R_50_FPN{,_nope}.yaml")
    assert dotted_exists("sna_det.engine.PowerIterationDiagnostics") and dotted_exists("sna_det.utils.cli")
    assert not dotted_exists("sna_det.analysis.figure_io") and not dotted_exists("sna_det.engine.NoSuchName")
    text = (
        "`tools/predict.py`, `tests/test_lazy_config.py`, detectron2's tools/deploy/export_model.py,\n"
        "``prepared_folder.input_identity``, ``output_folder.input_identity``, `test_fuzz_*.py`, `test_nope_*.py`\n"
        "see sna_det.engine.Trainer and sna_det.evaluation.froc.no_such, in output/power_iteration.jsonl\n"
    )
    assert missing_references("page.md", text) == [
        "page.md:1: tests/test_lazy_config.py",
        "page.md:2: test_nope_*.py",
        "page.md:2: prepared_folder.input_identity",
        "page.md:3: sna_det.evaluation.froc.no_such",
    ]
