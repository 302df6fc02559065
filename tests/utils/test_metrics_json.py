"""metrics.json read (one line per bad record) and, after a kill, cut: the cut-short line and the records
after the last checkpoint go."""

import json

from helpers.refusals import assert_refuses

from sna_det.utils.json_lines import trim_json_lines
from sna_det.utils.metrics_json import read_metrics, trim_metrics_for_resume


def write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_records_from_the_resume_iteration_on_and_a_cut_line_are_dropped(tmp_path):
    path = tmp_path / "metrics.json"
    records = [{"iteration": i, "total_loss": 1.0 / (i + 1)} for i in range(0, 40, 5)]  # 0, 5, ..., 35
    write(path, records, tail='{"iteration": 40, "total_lo')
    assert trim_metrics_for_resume(path, 22) == (5, 4)  # keeps 0..20; drops 25, 30, 35 and the cut line
    assert [json.loads(line) for line in path.read_text().splitlines()] == records[:5]
    with open(path, "a") as f:  # the resumed run appends where the file was cut
        f.write(json.dumps({"iteration": 22}) + "\n")
    assert [json.loads(line)["iteration"] for line in path.read_text().splitlines()] == [0, 5, 10, 15, 20, 22]


def test_a_complete_file_is_untouched_and_a_missing_one_is_fine(tmp_path):
    path = tmp_path / "metrics.json"
    write(path, [{"iteration": 3}, {"iteration": 3, "bbox/AP": 1.0}])
    before = path.read_bytes()
    assert trim_metrics_for_resume(path, 4) == (2, 0) and path.read_bytes() == before
    assert trim_metrics_for_resume(tmp_path / "none.json", 4) == (0, 0)


def test_a_garbled_line_in_the_middle_ends_what_is_kept(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"iteration": 1}\nnot json\n{"iteration": 2}\n')
    assert trim_metrics_for_resume(path, 10) == (1, 2)
    assert path.read_text() == '{"iteration": 1}\n'


def test_one_trim_for_every_json_lines_log(tmp_path):
    """The same cut (trim_json_lines) with any test of what to keep: power_iteration.jsonl's records
    carry "iteration" too, and a record that is not an object ends what is kept."""
    path = tmp_path / "power_iteration.jsonl"
    path.write_text('{"iteration": 0, "placement": "stem"}\n{"iteration": 0, "placement": "res2"}\n[1]\n{"iter')
    assert trim_json_lines(path, lambda r: r["placement"] == "stem") == (1, 3)
    assert path.read_text() == '{"iteration": 0, "placement": "stem"}\n'


def test_read_metrics_names_the_bad_line(tmp_path):
    no_iteration = '{"iteration": 1, "total_loss": 1.0}\n{"total_loss": 2.0}\n'
    cases = [
        (no_iteration, ValueError, r"metrics.json:2: a record needs an integer field 'iteration'"),
        ('{"iteration": 1,\n', ValueError, r"metrics.json:1: not JSON"),
        (None, FileNotFoundError, "no such metrics file"),
    ]
    assert_refuses(read_metrics, tmp_path / "metrics.json", cases)
