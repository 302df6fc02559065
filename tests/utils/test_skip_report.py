"""SkipReport: counts by reason (declared first, zeros kept), every skipped item kept, strict raises."""

import pytest

from sna_det.utils import SkipReport


def test_counts_items_and_examples():
    report = SkipReport(("a", "b"))
    report.count_read(5)
    for i in range(3):
        report.skip("b", f"file{i}", f"detail {i}")
    report.skip("c", "file9")
    report.count_kept(1)
    assert report.counts == {"a": 0, "b": 3, "c": 1}
    assert [item["where"] for item in report.skipped] == ["file0", "file1", "file2", "file9"]
    assert report.examples(2) == {"b": ["file0: b: detail 0", "file1: b: detail 1"], "c": ["file9: c"]}
    assert report.as_dict() == {"read": 5, "kept": 1, "skipped": report.counts, "skipped_items": report.skipped}


def test_strict_raises_the_given_error_at_the_first():
    class MyError(ValueError):
        pass

    report = SkipReport(strict=True, error=MyError)
    with pytest.raises(MyError, match=r"^x.csv, row 3: bad: why \(--strict stops at the first bad input\)$"):
        report.skip("bad", "x.csv, row 3", "why")
    assert report.counts == {}
