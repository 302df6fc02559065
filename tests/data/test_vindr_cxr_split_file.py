"""``--split-file``: a given split. With the SNA authors' published split and the real VinBigData
annotations, the per-finding counts are the paper's Table 4 train/test columns."""

import gzip
import json
import pickle
import shutil
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog
from helpers import ROOT, run_main
from helpers.real_vinbigdata import real_vinbigdata_csv
from helpers.vindr_cxr_synthetic import write_vinbigdata

from sna_det.data.datasets import register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import PrepareOptions, VinDrInputError, prepare_vindr_cxr
from sna_det.data.prepare.vindr_cxr.split_file import assign_split_file, read_pickled_id_list, read_split_file

AUTHORS_SPLIT = ROOT / "datasets" / "splits" / "vindr_cxr_sfsattention.json"

# The paper's Table 4 (Fang et al., Neurocomputing 511, 2022), columns "train" and "test", copied from
# its text (/work/shared/paper/sna-neurocomputing-2022.txt): the independent reference.
TABLE_4 = {
    "Aortic enlargement": (2433, 634),
    "Atelectasis": (150, 36),
    "Calcification": (364, 88),
    "Cardiomegaly": (1855, 445),
    "Consolidation": (275, 78),
    "ILD": (304, 82),
    "Infiltration": (492, 121),
    "Lung Opacity": (1053, 269),
    "Nodule/Mass": (655, 171),
    "Other lesion": (903, 231),
    "Pleural effusion": (818, 214),
    "Pleural thickening": (1590, 391),
    "Pneumothorax": (81, 15),
    "Pulmonary fibrosis": (1316, 301),
}
TABLE_4_TOTAL = (12289, 3076)


def run_prepare(capsys, *args) -> tuple:
    """datasets/prepare_vindr_cxr.py run in this process: (exit code, stdout, stderr)."""
    code = run_main("datasets/prepare_vindr_cxr.py", *args)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def test_authors_split_gives_table_4_counts(tmp_path, capsys):
    root = tmp_path / "vinbigdata"
    root.mkdir()
    with gzip.open(real_vinbigdata_csv(), "rb") as src, open(root / "train.csv", "wb") as dst:
        shutil.copyfileobj(src, dst)
    code, out, err = run_prepare(
        capsys, "--vindr-root", root, "--stats-only", "--fusion", "per-finding", "--split-file", AUTHORS_SPLIT,
        "--output-dir", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    rows = {
        cells[0]: tuple(int(c.replace(",", "")) for c in cells[1:])
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| class")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert rows == {**TABLE_4, "Total": TABLE_4_TOTAL}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary) == ["train", "test"]
    assert {name: (summary["train"][name], summary["test"][name]) for name in TABLE_4} == TABLE_4
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text())["split_file"]
    # the authors' lists are the 4,394 images with findings; the 10,606 'No finding' images are in none
    assert report["ids_per_split"] == {"train": 3515, "test": 879}
    assert report["images_in_no_list"] == 15000 - 4394 and report["unknown_ids"] == {"train": 0, "test": 0}
    assert "images in no list (left out): 10,606 (0 finding rows)" in out


def test_custom_names_left_out_images_and_unknown_ids(tmp_path):
    root = write_vinbigdata(tmp_path / "vinbigdata")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"fold_b": ["img3", "img0", "ghost1"], "fold_a": ["img1", "img6", "ghost2"]}))
    out = tmp_path / "out"
    result = prepare_vindr_cxr(root, out, PrepareOptions(max_size=40, split_file=str(split)))
    # img2, img4, img5, img7 are in no list; ghost1/ghost2 are not in the CSV
    assert list(result.summary) == ["fold_b", "fold_a"]
    assert result.report["split_file"]["images_in_no_list"] == 4
    # their finding rows, from vindr_cxr_synthetic.ROWS: img2 3, img4 3, img5 2, img7 0
    assert result.report["split_file"]["finding_rows_of_images_in_no_list"] == 8
    assert result.report["split_file"]["unknown_id_list"] == {"fold_b": ["ghost1"], "fold_a": ["ghost2"]}
    files = {p.stem: json.loads(p.read_text()) for p in (out / "annotations").glob("*.json")}
    assert set(files) == {"fold_a", "fold_b"}
    assert sorted(i["file_name"] for i in files["fold_b"]["images"]) == ["img0.png", "img3.png"]
    assert sorted(i["file_name"] for i in files["fold_a"]["images"]) == ["img1.png", "img6.png"]
    # per finding: img0 AE + Cardiomegaly, img3 AE + Cardiomegaly + Nodule/Mass
    assert sum(result.summary["fold_b"].values()) == 5 and len(files["fold_b"]["annotations"]) == 5
    register_vindr_cxr_datasets(out)
    assert len(DatasetCatalog.get("vindr_cxr_fold_a")) == 2 and "vindr_cxr_fold_b" in DatasetCatalog.list()


def test_assignment_counts():
    given = assign_split_file({"train": ["a", "x"], "test": ["c"]}, ["a", "b", "c", "d"])
    assert given.split_of == {"a": "train", "c": "test"} and given.splits == ["train", "test"]
    assert given.left_out == 2 and given.unknown_ids == {"train": ["x"], "test": []}


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"train": ["a"], "test": ["a"]}', "field test: image id a is also in train"),
        ('{"train": ["a", "a"]}', "field train: image id a is twice"),
        ('{"train": "a"}', "field train is not a list"),
        ('{"../x": ["a"]}', "split name '../x'"),
        ("{nope", "not a JSON file"),
    ],
)
def test_bad_split_files_are_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(VinDrInputError, match=rf"^{path}: .*") as error:
        read_split_file(path)
    assert message in str(error.value)
    code, _, err = run_prepare(capsys, "--vindr-root", tmp_path, "--stats-only", "--split-file", path)
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith(f"error: {path}: ") and "Traceback" not in err


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/sna_det_pickle_ran"),))


def test_pickled_lists_are_read_without_running_code(tmp_path, capsys):
    good = tmp_path / "ids.pkl"
    good.write_bytes(pickle.dumps(["a1", "b2"]))
    assert read_pickled_id_list(good) == ["a1", "b2"]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(["a1", _Payload()]))
    marker = Path("/tmp/sna_det_pickle_ran")
    marker.unlink(missing_ok=True)
    with pytest.raises(VinDrInputError, match="refused: the pickle names pathlib"):
        read_pickled_id_list(evil)
    assert not marker.exists()
    other = tmp_path / "dict.pkl"
    other.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(VinDrInputError, match="holds a dict"):
        read_pickled_id_list(other)
    out = tmp_path / "split.json"
    code = run_main(
        "datasets/split_from_pickles.py", "--split", f"train={good}", "--split", f"test={other}", "--output", out
    )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and last.startswith(f"error: {other}: ") and not out.exists()


def test_committed_authors_split_is_valid():
    lists = read_split_file(AUTHORS_SPLIT)
    assert {k: len(v) for k, v in lists.items()} == {"train": 3515, "test": 879}
    assert all(len(i) == 32 and int(i, 16) >= 0 for ids in lists.values() for i in ids)  # VinBigData's hex ids
