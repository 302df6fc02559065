"""docs/layout.md names every module and script of the tree once, and nothing that is not there."""

import re
from collections import Counter

from helpers import ROOT

LAYOUT = ROOT / "docs" / "layout.md"


def listed_paths():
    """Every ``path`` at the start of a line of the layout's code blocks, in order (a list: twice is twice)."""
    blocks = re.findall(r"```\n(.*?)```", LAYOUT.read_text(), flags=re.S)
    return [line.split()[0] for block in blocks for line in block.splitlines() if line.strip()]


def tree_paths():
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "sna_det").rglob("*.py") if p.name != "__init__.py"}
    scripts = {str(p.relative_to(ROOT)) for folder in ("tools", "datasets") for p in (ROOT / folder).glob("*.py")}
    return modules | scripts


def test_layout_lists_every_module_and_script():
    listed = listed_paths()
    assert sorted(p for p, n in Counter(listed).items() if n > 1) == [], "docs/layout.md lists these more than once"
    assert sorted(tree_paths() - set(listed)) == [], "modules or scripts missing from docs/layout.md"
    assert sorted(p for p in listed if not (ROOT / p).exists()) == [], "docs/layout.md names paths that do not exist"


def test_readme_links_the_layout():
    assert "docs/layout.md" in (ROOT / "README.md").read_text()
