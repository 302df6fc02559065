"""VinDr-CXR preparation that a kill cannot corrupt: checks before decoding, resume to the same bytes,
refusal of other settings, failure when nothing is kept, real public DICOMs of every syntax."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import load_script, run_main
from helpers.process_tree import assert_all_end_within, children_of
from helpers.vindr_cxr_synthetic import IMAGES, KAGGLE_HEADER, ROWS, write_vinbigdata
from pydicom.data import get_testdata_file

import sna_det.data.prepare.vindr_cxr.prepare as prepare_module
from sna_det.data.datasets import DatasetNotPreparedError, check_datasets_ready, register_vindr_cxr_datasets
from sna_det.data.prepare.output_folder import SETTINGS_FILE, PreparedFolderError
from sna_det.data.prepare.vindr_cxr import PrepareOptions, VinDrInputError, prepare_vindr_cxr

ROOT = Path(__file__).resolve().parents[2]
SMALL = PrepareOptions(max_size=40, val_fraction=0.25)


@pytest.fixture(scope="module")
def clean(vinbigdata, tmp_path_factory):
    """{relative path: bytes} of an uninterrupted run."""
    out = tmp_path_factory.mktemp("clean")
    prepare_vindr_cxr(vinbigdata, out, SMALL)
    return files_of(out)


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def counting_conversions(monkeypatch, stop_after=None):
    """Count calls of the per-image conversion; raise KeyboardInterrupt (Ctrl-C) at call ``stop_after + 1``."""
    calls = []
    convert = prepare_module._convert_one

    def wrapped(task):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(task[0].stem)
        return convert(task)

    monkeypatch.setattr(prepare_module, "_convert_one", wrapped)
    return calls


def test_interrupted_run_resumes_to_the_clean_runs_bytes(vinbigdata, clean, tmp_path, monkeypatch):
    out = tmp_path / "out"
    counting_conversions(monkeypatch, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        prepare_vindr_cxr(vinbigdata, out, SMALL)
    assert len(list((out / "images").glob("*.png"))) == 3
    assert not (out / "annotations").exists()  # a stopped run never looks complete
    try:
        register_vindr_cxr_datasets(out)
        with pytest.raises(DatasetNotPreparedError):
            check_datasets_ready(["vindr_cxr_train"])
    finally:
        register_vindr_cxr_datasets(None)
    # kill -9 during a write leaves a temporary file beside the PNG
    (out / "images" / ".img5.png.x1y2z3_a.tmp").write_bytes(b"half a png")
    monkeypatch.undo()
    calls = counting_conversions(monkeypatch)
    result = prepare_vindr_cxr(vinbigdata, out, SMALL)
    assert sorted(calls) == sorted(IMAGES)[3:]  # finished images are not decoded again
    assert (result.resumed, result.converted, result.stale_removed) == (3, len(IMAGES) - 3, 1)
    assert files_of(out) == clean
    # once more: nothing left to convert, same bytes
    calls.clear()
    assert prepare_vindr_cxr(vinbigdata, out, SMALL).resumed == len(IMAGES) and calls == []
    assert files_of(out) == clean


def test_other_settings_are_refused_unless_rebuild(vinbigdata, tmp_path):
    out = tmp_path / "out"
    prepare_vindr_cxr(vinbigdata, out, SMALL)
    other = PrepareOptions(max_size=32, val_fraction=0.25, fusion="none")
    with pytest.raises(PreparedFolderError, match=r"other settings \(fusion 'wbf' -> 'none', max_size 40 -> 32\)"):
        prepare_vindr_cxr(vinbigdata, out, other)
    rebuilt = prepare_vindr_cxr(vinbigdata, out, PrepareOptions(**{**vars(other), "rebuild": True}))
    assert rebuilt.resumed == 0 and rebuilt.converted == len(IMAGES)
    fresh = tmp_path / "fresh"
    prepare_vindr_cxr(vinbigdata, fresh, other)
    assert files_of(out) == files_of(fresh)
    # workers and strict change how a run goes, not what it writes: not refused
    prepare_vindr_cxr(vinbigdata, fresh, PrepareOptions(**{**vars(other), "workers": 2, "strict": True}))


def test_a_rebuild_that_fails_midway_leaves_the_earlier_dataset(vinbigdata, tmp_path, monkeypatch):
    out = tmp_path / "out"
    prepare_vindr_cxr(vinbigdata, out, SMALL)
    earlier = files_of(out)
    other = PrepareOptions(max_size=32, val_fraction=0.25, fusion="none", rebuild=True)
    write, calls = prepare_module.atomic_write_bytes, []

    def disk_full_at_the_third_png(target, data):
        calls.append(target)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return write(target, data)

    monkeypatch.setattr(prepare_module, "atomic_write_bytes", disk_full_at_the_third_png)
    with pytest.raises(PreparedFolderError, match="No space left on device"):
        prepare_vindr_cxr(vinbigdata, out, other)
    assert {k: v for k, v in files_of(out).items() if not k.startswith(".rebuild")} == earlier
    assert len(list((out / ".rebuild" / "images").glob("*.png"))) == 2  # the two PNGs the rebuild finished
    register_vindr_cxr_datasets(out)  # the earlier dataset is still complete and registered as before
    check_datasets_ready(("vindr_cxr_train", "vindr_cxr_val"))
    register_vindr_cxr_datasets(None)
    monkeypatch.undo()
    # the same rebuild again: continues aside (2 PNGs kept), then swaps in what a fresh run writes
    rebuilt = prepare_vindr_cxr(vinbigdata, out, other)
    assert (rebuilt.resumed, rebuilt.converted) == (2, len(IMAGES) - 2)
    fresh = tmp_path / "fresh"
    prepare_vindr_cxr(vinbigdata, fresh, PrepareOptions(**{**vars(other), "rebuild": False}))
    assert files_of(out) == files_of(fresh) and not (out / ".rebuild").exists()


def test_a_folder_with_prepared_files_but_no_settings_is_refused(vinbigdata, tmp_path):
    prepare_vindr_cxr(vinbigdata, tmp_path, SMALL)
    (tmp_path / SETTINGS_FILE).unlink()  # prepared by an older version
    with pytest.raises(PreparedFolderError, match="holds prepared files .* but no prepare_settings.json"):
        prepare_vindr_cxr(vinbigdata, tmp_path, SMALL)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder that cannot be written, even by root (who ignores permission bits): sysfs."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if not os.access("/sys/kernel", os.F_OK):
        pytest.skip("running as root without /sys: no folder is read-only to root")
    return Path("/sys/kernel")


@pytest.mark.parametrize("case", ["parent is a file", "read-only folder"])
def test_unusable_output_folder_is_one_line_before_any_decoding(vinbigdata, tmp_path, monkeypatch, capsys, case):
    if case == "parent is a file":
        (tmp_path / "file").write_text("x")
        out, expected = tmp_path / "file" / "out", f"error: {tmp_path / 'file'}: is a file, not a folder"
    else:
        out = unwritable_folder(tmp_path)
        expected = f"error: {out}: cannot write into this folder"
    calls = counting_conversions(monkeypatch)
    assert (
        run_main(
            "datasets/prepare_vindr_cxr.py",
            *["--vindr-root", str(vinbigdata), "--output-dir", str(out), "--workers", "1"],
        )
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected), err
    assert calls == []


def test_a_write_failure_stops_the_run_instead_of_counting_unreadable_images(vinbigdata, tmp_path, monkeypatch):
    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prepare_module, "atomic_write_bytes", disk_full)
    with pytest.raises(PreparedFolderError, match=r"img0.png: cannot write \(No space left on device\)"):
        prepare_vindr_cxr(vinbigdata, tmp_path, SMALL)
    assert not (tmp_path / "annotations").exists()


def test_a_run_that_keeps_no_image_fails_and_reports_every_file(tmp_path, capsys):
    root = write_vinbigdata(tmp_path / "copy")
    for image_id in IMAGES:
        (root / "train" / f"{image_id}.dicom").write_bytes(b"\x00" * 300)
    out = tmp_path / "out"
    assert (
        run_main(
            "datasets/prepare_vindr_cxr.py", *["--vindr-root", str(root), "--output-dir", str(out), "--workers", "1"]
        )
        == 1
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "converting" not in line]
    assert len(err) == 1 and err[0].startswith(f"error: {out}: no image kept (8 read; unreadable image 8)")
    report = (out / "prepare_report.json").read_text()
    assert all(f"{image_id}.dicom" in report for image_id in IMAGES)
    assert not (out / "annotations").exists()


def test_cli_defaults_to_every_cpu_and_shows_a_progress_bar(vinbigdata, tmp_path, capsys):
    assert load_script("datasets/prepare_vindr_cxr.py").parse_args(["--vindr-root", "x"]).workers == os.cpu_count()
    argv = ["--vindr-root", str(vinbigdata), "--output-dir", str(tmp_path), "--max-size", "40", "--workers", "1"]
    assert run_main("datasets/prepare_vindr_cxr.py", *argv) == 0
    err = capsys.readouterr().err
    assert f"{len(IMAGES)}/{len(IMAGES)}" in err and "image/s" in err


REAL = {  # image id -> a real public DICOM (pydicom's test files, pydicom-data)
    "jpeg_lossless_sv1": "JPEG-LL.dcm",
    "jpeg_extended_12bit": "JPGExtended.dcm",
    "jpeg_ls_lossless": "MR_small_jpeg_ls_lossless.dcm",
    "jpeg_ls_near_lossless": "JPEGLSNearLossless_16.dcm",
    "rle": "MR_small_RLE.dcm",
    "deflated": "image_dfl.dcm",
    "voi_lut": "vlut_04.dcm",
    "multi_frame": "emri_small.dcm",
    "colour": "SC_rgb.dcm",
    "no_pixels": "rtplan.dcm",
}


def test_real_dicoms_of_every_syntax_convert_and_the_rest_is_named(tmp_path, capsys):
    root = tmp_path / "real"
    (root / "train").mkdir(parents=True)
    with open(root / "train.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=KAGGLE_HEADER)
        writer.writeheader()
        for image_id, name in REAL.items():
            shutil.copy(get_testdata_file(name, download=False), root / "train" / f"{image_id}.dicom")
            writer.writerow({"image_id": image_id, "class_name": "No finding", "class_id": 14, "rad_id": "R1"})
    out = tmp_path / "out"
    argv = ["--vindr-root", str(root), "--output-dir", str(out), "--max-size", "128", "--workers", "1"]
    assert run_main("datasets/prepare_vindr_cxr.py", *argv) == 0
    printed = capsys.readouterr().out
    assert "unreadable image 3" in printed
    report = json.loads((out / "prepare_report.json").read_text())
    reasons = {Path(item["where"]).stem: item["detail"] for item in report["skipped_items"]}
    assert set(reasons) == {"multi_frame", "colour", "no_pixels"}
    assert "10 frames" in reasons["multi_frame"] and "PhotometricInterpretation is RGB" in reasons["colour"]
    assert "no pixel data" in reasons["no_pixels"]
    written = {p.stem for p in (out / "images").glob("*.png")}
    assert written == set(REAL) - set(reasons)


def test_bad_options_are_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match="--max-size -1 is negative"):
        prepare_vindr_cxr(tmp_path / "nowhere", tmp_path / "out", PrepareOptions(max_size=-1))
    with pytest.raises(VinDrInputError):  # the root is checked before the output folder is made
        prepare_vindr_cxr(tmp_path / "nowhere", tmp_path / "out", SMALL)
    assert not (tmp_path / "out").exists()


def test_sigkill_mid_run_then_the_same_command_gives_the_clean_runs_bytes(tmp_path):
    """A real kill -9 of the script while it converts (first PNG seen): its workers end within 5 s; then a re-run."""
    extra = [f"extra{i:03d}" for i in range(150)]
    root = write_vinbigdata(tmp_path / "copy", rows=[*ROWS, *((i, "No finding", "R1", None) for i in extra)],
                            images=[*IMAGES, *extra])  # fmt: skip
    command = [sys.executable, str(ROOT / "datasets" / "prepare_vindr_cxr.py"), "--vindr-root", str(root),
               "--max-size", "40", "--workers", "2"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "out"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = subprocess.Popen([*command, "--output-dir", str(out)], env=env, **quiet)
    deadline = time.monotonic() + 600
    while not ((out / "images").is_dir() and any((out / "images").glob("*.png"))):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    workers = children_of(run.pid)
    assert workers, "no worker process found"
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert_all_end_within(workers, 5.0)  # they used to wait on a lock for ever, re-parented
    done = len(list((out / "images").glob("*.png")))
    assert 0 < done < len(IMAGES) + len(extra) and not (out / "annotations").exists()
    subprocess.run([*command, "--output-dir", str(out)], env=env, check=True, capture_output=True)
    prepare_vindr_cxr(root, tmp_path / "clean", PrepareOptions(max_size=40))  # the same settings, uninterrupted
    assert files_of(out) == files_of(tmp_path / "clean")
