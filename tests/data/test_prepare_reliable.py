"""Preparers that cannot mix, damage or empty a dataset, and that end with their workers (issue 18):
the inputs are recorded settings, finished PNGs are verified before being kept, only the preparer's
own temporary files are removed, a split left empty fails naming it, a killed run leaves no process,
Ctrl-C is one line and exit 130, and a settings file that is not an object of settings is named."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_main
from helpers.process_tree import assert_all_end_within, children_of
from helpers.vindr_cxr_synthetic import IMAGES, ROWS, write_vinbigdata
from helpers.voc_tree import SEGMENTATION_SPLITS, write_voc_tree
from PIL import Image

from sna_det.data.prepare.output_folder import SETTINGS_FILE
from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--max-size", "40", "--val-fraction", "0.25", "--workers", "1"]


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys) -> str:
    """The one line on stderr (the progress bar's lines left out)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "converting" not in line]
    assert len(lines) == 1, lines
    return lines[0]


def vindr(capsys, root: Path, out: Path, *extra: str) -> int:
    return run_main("datasets/prepare_vindr_cxr.py", "--vindr-root", root, "--output-dir", out, *SMALL, *extra)


@pytest.fixture(scope="module")
def vinbigdata(tmp_path_factory):
    return write_vinbigdata(tmp_path_factory.mktemp("vinbigdata") / "first")


# --- the inputs are recorded settings -------------------------------------------------------------------------------


def test_a_second_root_with_the_same_ids_is_refused_not_mixed(vinbigdata, tmp_path, capsys):
    out = tmp_path / "out"
    assert vindr(capsys, vinbigdata, out) == 0
    second = write_vinbigdata(tmp_path / "second")  # the same ids (and here the same bytes) elsewhere
    capsys.readouterr()
    assert vindr(capsys, second, out) == 1
    line = error_line(capsys)
    assert line.startswith(f"error: {out}: prepared with other settings (input_root '{vinbigdata}' -> '{second}'")
    assert "--rebuild" in line
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["vindr_root"] == str(vinbigdata)  # the first root's dataset, untouched
    assert vindr(capsys, second, out, "--rebuild") == 0
    assert json.loads((out / "prepare_report.json").read_text())["vindr_root"] == str(second)


def test_changed_inputs_under_the_same_root_are_refused(vinbigdata, tmp_path, capsys):
    root = tmp_path / "copy"
    shutil.copytree(vinbigdata, root)
    out = tmp_path / "out"
    assert vindr(capsys, root, out) == 0
    with open(root / "train.csv", "a") as f:  # a reader's box added to the CSV
        f.write("img7,Cardiomegaly,3,R9,20,30,60,50\n")
    capsys.readouterr()
    assert vindr(capsys, root, out) == 1
    assert "other settings (annotations_sha256 '" in error_line(capsys)
    shutil.copy(vinbigdata / "train.csv", root / "train.csv")
    (root / "train" / "img7.dicom").write_bytes((vinbigdata / "train" / "img6.dicom").read_bytes() + b"\0\0")
    assert vindr(capsys, root, out) == 1  # an image file replaced by another
    assert "other settings (images '8 sha256 " in error_line(capsys)


# --- finished images verified, own temporary files only ------------------------------------------------------------


def test_a_damaged_finished_png_is_converted_again_and_counted(vinbigdata, tmp_path, capsys):
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert vindr(capsys, vinbigdata, clean) == 0 and vindr(capsys, vinbigdata, out) == 0
    truncated = out / "images" / "img3.png"
    truncated.write_bytes(truncated.read_bytes()[:-30])  # cut by something else: the header still reads
    with Image.open(truncated) as png:
        assert png.size == (40, 32)
    Image.new("L", (12, 10)).save(out / "images" / "img4.png")  # a whole PNG, but not the converted image
    capsys.readouterr()
    assert vindr(capsys, vinbigdata, out) == 0
    printed = capsys.readouterr().out
    assert (
        f"resumed: {len(IMAGES) - 2} images finished by an earlier run kept, 2 converted now "
        "(2 of them damaged finished images converted again), 0 temporary files of a killed run removed"
    ) in printed
    assert files_of(out) == files_of(clean)


def test_only_the_preparers_own_temporary_files_are_removed(vinbigdata, tmp_path, capsys):
    out = tmp_path / "out"
    assert vindr(capsys, vinbigdata, out) == 0
    own = [
        out / "images" / ".img1.png.k2j4h5g6.tmp",  # sna_det.utils.atomic_write's names (tempfile.mkstemp)
        out / "annotations" / ".train.json.a_b1c2d3.tmp",
        out / f".{SETTINGS_FILE}.zzzzzzzz.tmp",
    ]
    foreign = [out / ".notes.tmp", out / "images" / ".draft.tmp", out / "images" / ".img1.png.tmp"]
    foreign += [out / "images" / ".viewer.png.k2j4h5g6.tmp.tmp", out / "images" / ".img1.jpg.k2j4h5g6.tmp"]
    for path in own + foreign:
        path.write_bytes(b"half")
    capsys.readouterr()
    assert vindr(capsys, vinbigdata, out) == 0
    assert "3 temporary files of a killed run removed" in capsys.readouterr().out
    assert [p.exists() for p in own] == [False] * 3 and all(p.read_bytes() == b"half" for p in foreign)


@pytest.mark.parametrize(
    "content, why",
    [(b"[]", "a list, not a JSON object"), (b"garbage\xff", "not JSON"), (b'"text"', "a string, not a JSON object"),
     (b"null", "null, not a JSON object"), (b"{", "not JSON")],
)  # fmt: skip
def test_a_settings_file_that_is_not_an_object_is_one_line(vinbigdata, tmp_path, capsys, content, why):
    out = tmp_path / "out"
    out.mkdir()
    (out / SETTINGS_FILE).write_bytes(content)
    assert vindr(capsys, vinbigdata, out) == 1
    line = error_line(capsys)
    assert line.startswith(f"error: {out / SETTINGS_FILE}: {why}") and "--rebuild" in line
    assert vindr(capsys, vinbigdata, out, "--rebuild") == 0


# --- no empty split ------------------------------------------------------------------------------------------------


def test_a_single_image_fails_naming_the_empty_val_split(tmp_path, capsys):
    root = write_vinbigdata(tmp_path / "one", rows=[r for r in ROWS if r[0] == "img0"], images=["img0"])
    out = tmp_path / "out"
    assert vindr(capsys, root, out, "--val-fraction", "0.2") == 1
    line = error_line(capsys)
    assert line.startswith(
        f"error: {out}: split val is empty (--val-fraction 0.2 of 1 training images sends none to it)"
    ), line
    assert not (out / "annotations").exists()  # train_net's readiness check says: not prepared


def test_a_split_whose_images_are_all_unreadable_fails_naming_it(vinbigdata, tmp_path, capsys):
    clean = tmp_path / "clean"
    assert vindr(capsys, vinbigdata, clean) == 0
    val = [Path(i["file_name"]).stem for i in json.loads((clean / "annotations" / "val.json").read_text())["images"]]
    root = tmp_path / "copy"
    shutil.copytree(vinbigdata, root)
    for image_id in val:
        (root / "train" / f"{image_id}.dicom").write_bytes(b"\0" * 200)
    capsys.readouterr()
    assert vindr(capsys, root, tmp_path / "out") == 1
    assert error_line(capsys).startswith(
        f"error: {tmp_path / 'out'}: split val is empty (all its {len(val)} images were skipped)"
    )
    assert not (tmp_path / "out" / "annotations").exists()


@pytest.mark.parametrize(
    "fraction, message",
    [("0", "--val-fraction 0 writes no val split, and "), ("1", "--val-fraction 1.0 is not in [0, 1)")],
)
def test_val_fraction_that_leaves_a_split_empty_is_refused(vinbigdata, tmp_path, capsys, fraction, message):
    argv = ["--vindr-root", str(vinbigdata), "--output-dir", str(tmp_path / "out"), "--val-fraction", fraction]
    assert run_main("datasets/prepare_vindr_cxr.py", *argv) == 1
    assert error_line(capsys).startswith(f"error: {message}")
    assert not (tmp_path / "out").exists()  # refused before anything is written


# --- processes: a killed run leaves none, Ctrl-C is one line -------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    extra = [f"extra{i:03d}" for i in range(150)]
    rows = [*ROWS, *((i, "No finding", "R1", None) for i in extra)]
    return write_vinbigdata(tmp_path_factory.mktemp("many"), rows=rows, images=[*IMAGES, *extra])


def start_and_wait_for_workers(root: Path, out: Path):
    """The script with 2 workers in its own session (output to files: a surviving worker would hold a
    pipe open), once its first PNG is written and its workers run; (process, workers, stderr file)."""
    command = [sys.executable, str(ROOT / "datasets" / "prepare_vindr_cxr.py"), "--vindr-root", str(root),
               "--max-size", "40", "--workers", "2", "--output-dir", str(out)]  # fmt: skip
    err = out.parent / "stderr.txt"
    with open(out.parent / "stdout.txt", "wb") as stdout, open(err, "wb") as stderr:
        run = subprocess.Popen(
            command, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=stdout, stderr=stderr, start_new_session=True
        )
    deadline = time.monotonic() + 600
    while not ((out / "images").is_dir() and any((out / "images").glob("*.png"))):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    workers = children_of(run.pid)
    assert len(workers) >= 1, "no worker process found"
    return run, workers, err


def test_a_terminated_preparer_leaves_no_worker_running(many, tmp_path):
    """SIGTERM (SIGKILL: test_prepare_resume.py's kill-and-resume test)."""
    run, workers, _ = start_and_wait_for_workers(many, tmp_path / "out")
    os.kill(run.pid, signal.SIGTERM)
    assert run.wait(timeout=60) == -signal.SIGTERM
    assert_all_end_within(workers, 5.0)


def test_ctrl_c_is_one_line_exit_130_and_no_worker_left(many, tmp_path):
    run, workers, err = start_and_wait_for_workers(many, tmp_path / "out")
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
    code = run.wait(timeout=120)
    assert_all_end_within(workers, 5.0)
    err = err.read_text()
    lines = [line for line in err.splitlines() if line.strip() and "converting" not in line]
    assert code == 130 and "Traceback" not in err, err
    assert lines == [f"interrupted: {tmp_path / 'out'} is not complete; run the same command again to continue"]
    assert not (tmp_path / "out" / "annotations").exists()


# --- VOC -----------------------------------------------------------------------------------------------------------


def voc(capsys, name: str, root: Path, out: Path, *extra: str) -> int:
    return run_main(f"datasets/{name}.py", "--voc-root", root, "--output-dir", out, *extra)


def test_voc_a_second_root_is_refused_not_mixed(tmp_path, capsys):
    first, second, out = tmp_path / "a" / "VOC2012", tmp_path / "b" / "VOC2012", tmp_path / "out"
    write_voc_tree(first)
    write_voc_tree(second)
    assert voc(capsys, "prepare_voc2012_coco", first, out) == 0
    link = os.readlink(out / "JPEGImages")
    capsys.readouterr()
    assert voc(capsys, "prepare_voc2012_coco", second, out) == 1
    line = error_line(capsys)
    assert line.startswith(f"error: {out}: prepared with other settings (input_root '{first}' -> '{second}'")
    assert os.readlink(out / "JPEGImages") == link == str(first / "JPEGImages")  # not replaced
    assert voc(capsys, "prepare_voc_coco", second, tmp_path / "own") == 0  # the other script, same rule
    capsys.readouterr()
    assert voc(capsys, "prepare_voc_coco", first, tmp_path / "own") == 1
    assert "input_root" in error_line(capsys)


def test_voc2012_whose_val_images_are_all_bad_fails_naming_val(tmp_path, capsys):
    root = tmp_path / "VOC2012"
    write_voc_tree(root)
    for image_id in SEGMENTATION_SPLITS["val"]:
        (root / "JPEGImages" / f"{image_id}.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert voc(capsys, "prepare_voc2012_coco", root, out) == 1
    printed = capsys.readouterr()
    assert "val: 0/2 images written" in printed.out
    lines = [line for line in printed.err.splitlines() if line.startswith("error")]
    assert lines == [
        f"error: {out}: split val is empty (all its 2 listed images were skipped: bad image 2); training or "
        f"testing on it would fail, so no annotations were written; every skipped file with its reason is in "
        f"{out}/summary.json"
    ]
    assert not (out / "annotations").exists()


@pytest.mark.parametrize("fraction", ["0", "1", "1.5"])
def test_voc_val_fraction_that_leaves_a_split_empty_is_refused(tmp_path, capsys, fraction):
    root = tmp_path / "VOC2012"
    write_voc_tree(root)
    assert voc(capsys, "prepare_voc_coco", root, tmp_path / "out", "--val-fraction", fraction) == 1
    assert error_line(capsys).startswith(f"error: --val-fraction {float(fraction)} is not in (0, 1): ")
    assert not (tmp_path / "out").exists()


def test_the_library_call_refuses_a_split_left_empty_too(vinbigdata, tmp_path):
    """Not only the script: ``prepare_vindr_cxr`` raises, with the report written and no annotations."""
    from sna_det.data.prepare.vindr_cxr import VinDrInputError

    root = write_vinbigdata(tmp_path / "one", rows=[r for r in ROWS if r[0] == "img0"], images=["img0"])
    with pytest.raises(VinDrInputError, match="split val is empty"):
        prepare_vindr_cxr(root, tmp_path / "out", PrepareOptions(max_size=40))
    assert (tmp_path / "out" / "prepare_report.json").is_file() and not (tmp_path / "out" / "annotations").exists()


def test_voc_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    import sna_det.data.prepare.voc as voc

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(voc, "convert_voc_coco", interrupted)
    (tmp_path / "voc").mkdir()  # the output outside the input (a folder inside it is refused)
    voc_root, out = tmp_path / "voc", tmp_path / "out"
    assert run_main("datasets/prepare_voc_coco.py", "--voc-root", voc_root, "--output-dir", out) == 130
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted: {tmp_path / 'out'} is not complete; run the same command again to continue"


def test_train_net_refuses_an_empty_split_before_building_anything(vinbigdata, tmp_path):
    """A folder with an empty val.json (an older preparer wrote one): one line, exit 1, before any training."""
    prepared = tmp_path / "prepared"
    prepare_vindr_cxr(vinbigdata, prepared, PrepareOptions(max_size=40, val_fraction=0.25))
    val = prepared / "annotations" / "val.json"
    val.write_text(json.dumps({**json.loads(val.read_text()), "images": [], "annotations": []}))
    command = [sys.executable, str(ROOT / "tools" / "train_net.py"), "--config-file", "configs/vincxr_faster_sna.yaml",
               "DATASETS.ROOTS.VINDR_CXR", str(prepared), "MODEL.DEVICE", "cpu",
               "OUTPUT_DIR", str(tmp_path / "run")]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(ROOT))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith(f"error: dataset 'vindr_cxr_val': {val}: holds no image (an empty split). ")
    assert not (tmp_path / "run").exists()
