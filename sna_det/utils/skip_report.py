"""What a converter or evaluator read, kept and skipped, by reason, with every skipped item named.

One type for every tool that leaves bad input out (the VinDr-CXR preparer, the VOC converter,
the evaluator's predictions): counts per reason, every skipped item with its place and reason for
the JSON report, and a few examples per reason for the console.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

__all__ = ["SkipReport"]


class SkipReport:
    """Counts of items read, kept and skipped by reason; ``strict``: the first skip raises instead.

    ``reasons`` are listed first in ``counts`` (with zeros), other reasons after them in order of
    first appearance. ``error`` builds the exception raised when strict (from the one-line message).
    """

    def __init__(
        self,
        reasons: Sequence[str] = (),
        *,
        strict: bool = False,
        error: Callable[[str], Exception] = ValueError,
        strict_hint: str = "--strict stops at the first bad input",
    ):
        self.reasons = tuple(reasons)
        self.strict = strict
        self.error = error
        self.strict_hint = strict_hint
        self.read = 0
        self.kept = 0
        self._counts: Counter = Counter()
        self.skipped: List[Dict[str, str]] = []
        """Every skipped item: ``{"where": file (and row), "reason": ..., "detail": ...}``, in order."""

    def count_read(self, n: int = 1) -> None:
        """``n`` more items read."""
        self.read += n

    def count_kept(self, n: int = 1) -> None:
        """``n`` more items kept."""
        self.kept += n

    def skip(self, reason: str, where: str, detail: str = "") -> None:
        """One item at ``where`` (a file, "file, row N", ...) left out for ``reason``; raises if strict."""
        message = f"{where}: {reason}" + (f": {detail}" if detail else "")
        if self.strict:
            raise self.error(f"{message} ({self.strict_hint})")
        self._counts[reason] += 1
        self.skipped.append({"where": where, "reason": reason, "detail": detail})

    @property
    def counts(self) -> Dict[str, int]:
        """{reason: items skipped}: the declared reasons (zeros included), then any others."""
        counts = {reason: self._counts[reason] for reason in self.reasons}
        counts.update((reason, n) for reason, n in self._counts.items() if reason not in counts)
        return counts

    def examples(self, per_reason: Optional[int] = None) -> Dict[str, List[str]]:
        """{reason: ["<where>: <reason>: <detail>", ...]}, the first ``per_reason`` of each (None: all)."""
        found: Dict[str, List[str]] = {}
        for item in self.skipped:
            messages = found.setdefault(item["reason"], [])
            if per_reason is None or len(messages) < per_reason:
                detail = f": {item['detail']}" if item["detail"] else ""
                messages.append(f"{item['where']}: {item['reason']}{detail}")
        return found

    def as_dict(self) -> dict:
        """JSON-able: ``{"read", "kept", "skipped": {reason: count}, "skipped_items": [every skipped item]}``."""
        return {"read": self.read, "kept": self.kept, "skipped": self.counts, "skipped_items": list(self.skipped)}
