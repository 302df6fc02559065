"""Where ``torch.compile`` breaks a model's graph: ``torch._dynamo.explain``'s break reasons grouped
by source line, for tools/explain_graph_breaks.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, List, Set

import torch

__all__ = ["GraphBreakSite", "GraphBreaks", "explain_graph_breaks"]


@dataclass
class GraphBreakSite:
    """One source line where dynamo broke the graph: ``file`` (below site-packages, or as given),
    ``line``, the first line of dynamo's ``reason``, and how many breaks it caused."""

    file: str
    line: int
    reason: str
    count: int


@dataclass
class GraphBreaks:
    """``graphs`` captured, ``breaks`` (dynamo's count), the break reasons dynamo gives grouped into
    ``sites`` (most frequent first), and for each reason the files of its whole user stack."""

    graphs: int
    breaks: int
    sites: List[GraphBreakSite]
    stacks: List[Set[str]]

    def in_file(self, name: str) -> int:
        """Break reasons with a frame, at any depth, in a file whose path contains ``name``
        (e.g. ``spectral_norm_attention.py``: breaks inside SNA or in anything it calls)."""
        return sum(any(name in file for file in files) for files in self.stacks)


def explain_graph_breaks(fn: Callable, *inputs) -> GraphBreaks:
    """Run ``fn(*inputs)`` under ``torch._dynamo.explain`` (no gradients) and group its breaks by the
    innermost user frame of each."""
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(fn)(*inputs)
    counts: Counter = Counter()
    for reason in explanation.break_reasons:
        frame = reason.user_stack[-1] if reason.user_stack else None
        file = frame.filename.split("site-packages/")[-1] if frame else "?"
        counts[(file, frame.lineno if frame else 0, reason.reason.strip().splitlines()[0])] += 1
    sites = [GraphBreakSite(file, line, reason, n) for (file, line, reason), n in counts.most_common()]
    stacks = [{frame.filename for frame in reason.user_stack} for reason in explanation.break_reasons]
    return GraphBreaks(explanation.graph_count, explanation.graph_break_count, sites, stacks)
