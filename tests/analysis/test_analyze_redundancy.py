"""Spatial-redundancy analysis (the paper's Fig. 1) against numpy's SVD, and tools/analyze_redundancy.py end to end."""

import csv
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from helpers import run_main, run_script
from PIL import Image

from sna_det.analysis.spatial_redundancy import (
    analyze_image,
    explained_variance_ratio,
    low_rank_reconstruction,
    running_mean,
    singular_values,
)
from sna_det.data.images import load_grayscale
from sna_det.engine.predictor import resolve_images


def numpy_cumulative_evr(m: np.ndarray) -> np.ndarray:
    s = np.linalg.svd(m.astype(np.float64), compute_uv=False)
    return np.cumsum(s**2) / np.sum(s**2)


def smooth_image(rng, h, w):
    """A few separable blobs: energy in a handful of singular values (redundant, like a radiograph)."""
    y, x = np.mgrid[0:h, 0:w]
    image = np.full((h, w), 60.0)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 15)
        image += 120 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r**2))
    return np.clip(image, 0, 255)


def test_spectrum_matches_numpy_svd():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(23, 17)) + np.outer(rng.random(23), rng.random(17)) * 5
    s = np.linalg.svd(m, compute_uv=False)
    np.testing.assert_allclose(singular_values(m), s, rtol=1e-10)
    np.testing.assert_allclose(explained_variance_ratio(s), s**2 / np.sum(s**2), rtol=1e-12)
    result = analyze_image("m", m, top_k=50)
    cumulative = numpy_cumulative_evr(m)
    np.testing.assert_allclose(result.cumulative_evr[:17], cumulative, rtol=1e-10)
    np.testing.assert_allclose(result.cumulative_evr[17:], 1.0, rtol=1e-10)  # past min(H, W) it stays at 1
    assert result.cumulative_evr.shape == (50,)
    assert result.max_evr == pytest.approx(cumulative[0])
    assert result.rank_99 == int(np.argmax(cumulative >= 0.99)) + 1


def test_low_rank_reconstruction_and_running_mean():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(12, 9))
    u, s, vh = np.linalg.svd(m, full_matrices=False)
    np.testing.assert_allclose(low_rank_reconstruction(m, 1), s[0] * np.outer(u[:, 0], vh[0]), atol=1e-12)
    np.testing.assert_allclose(low_rank_reconstruction(m, 3), (u[:, :3] * s[:3]) @ vh[:3], atol=1e-12)
    np.testing.assert_allclose(low_rank_reconstruction(m, 30), m, atol=1e-12)
    np.testing.assert_allclose(running_mean([1.0, 0.0, 0.5, 0.5]), [1.0, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="rank"):
        low_rank_reconstruction(m, 0)


def test_subtract_mean_decomposes_the_variations():
    rng = np.random.default_rng(4)
    m = 200 + rng.normal(size=(15, 21))
    plain, centred = analyze_image("m", m), analyze_image("m", m, subtract_mean=True)
    np.testing.assert_allclose(centred.cumulative_evr[:15], numpy_cumulative_evr(m - m.mean()), rtol=1e-10)
    assert plain.max_evr > 0.99 > 0.5 > centred.max_evr, "the mean brightness dominates EVR_1"


def test_zero_image_has_no_explained_variance():
    result = analyze_image("zero", np.zeros((5, 4)))
    assert result.max_evr == 0 and result.rank_99 == 0


def test_grayscale_loading(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(10, 14, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(load_grayscale(tmp_path / "rgb.png"), luma, atol=1e-3)
    deep = rng.integers(0, 65536, size=(9, 11), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(load_grayscale(tmp_path / "deep.png"), deep.astype(np.float64))
    assert load_grayscale(tmp_path / "rgb.png", max_side=7).shape == (5, 7)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken.png: cannot read"):
        load_grayscale(tmp_path / "broken.png")


def test_resolve_images_from_dataset_folder_and_file(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    DatasetCatalog.register("test_redundancy_tiny", lambda: [{"file_name": "x.png"}, {"file_name": "y.png"}])
    try:
        found = resolve_images(["test_redundancy_tiny", str(tmp_path), str(tmp_path / "b.png")])
        assert found == ["x.png", "y.png", str(tmp_path / "a.jpg"), str(tmp_path / "b.png"), str(tmp_path / "b.png")]
        assert resolve_images(["test_redundancy_tiny", str(tmp_path)], max_images=3)[-1] == str(tmp_path / "a.jpg")
    finally:
        DatasetCatalog.remove("test_redundancy_tiny")
    with pytest.raises(ValueError, match="nowhere.*neither a registered dataset"):
        resolve_images([str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image"):
        resolve_images([str(tmp_path / "empty")])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tool_compares_two_folders(tmp_path):
    rng = np.random.default_rng(3)
    smooth, noisy = tmp_path / "smooth", tmp_path / "noisy"
    smooth.mkdir()
    noisy.mkdir()
    images = {}
    for i in range(4):
        images[f"smooth/{i}.png"] = smooth_image(rng, 40, 56).astype(np.uint8)
        images[f"noisy/{i}.png"] = rng.integers(0, 256, size=(40, 56), dtype=np.uint8)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(tmp_path / name)
    out = tmp_path / "out"
    proc = run_script(
        "tools/analyze_redundancy.py",
        *["--input", f"radiograph-like={smooth}", "--input", f"noise={noisy}", "--max-images", 3, "--output", out],
        check=True,
    )
    assert "radiograph-like: 3 images" in proc.stdout and "noise: 3 images" in proc.stdout
    rows = read_csv(out / "redundancy_per_image.csv")
    assert [(r["dataset"], Path(r["image"]).name) for r in rows] == [
        *[("radiograph-like", f"{i}.png") for i in range(3)],
        *[("noise", f"{i}.png") for i in range(3)],
    ]
    for r in rows:
        expected = numpy_cumulative_evr(images[f"{Path(r['image']).parent.name}/{Path(r['image']).name}"])
        got = np.array([float(r[f"cum_evr_{k}"]) for k in range(1, 51)])
        np.testing.assert_allclose(got[:40], expected, rtol=1e-5)
        np.testing.assert_allclose(got[40:], 1.0, rtol=1e-5)
        assert float(r["max_evr"]) == pytest.approx(expected[0], rel=1e-5)
        assert (int(r["height"]), int(r["width"])) == (40, 56)
    curve = read_csv(out / "mean_max_evr.csv")
    for dataset in ("radiograph-like", "noise"):
        first = [float(r["max_evr"]) for r in rows if r["dataset"] == dataset]
        got = [float(r["mean_max_evr"]) for r in curve if r["dataset"] == dataset]
        np.testing.assert_allclose(got, np.cumsum(first) / np.arange(1, 4), rtol=1e-5)
    smooth_mean = np.mean([float(r["max_evr"]) for r in rows if r["dataset"] == "radiograph-like"])
    noise_mean = np.mean([float(r["max_evr"]) for r in rows if r["dataset"] == "noise"])
    assert smooth_mean > noise_mean + 0.1, "smooth images are the more redundant"
    for name, size in (("cumulative_evr.png", (500, 360)), ("mean_max_evr.png", (500, 360))):
        with Image.open(out / name) as image:
            assert image.size == size and np.asarray(image.convert("L")).std() > 10
    with Image.open(out / "reconstructions.png") as image:
        assert image.size == (720, 500)


def test_tool_reports_a_missing_input(tmp_path, capsys):
    code = run_main("tools/analyze_redundancy.py", "--input", tmp_path / "nope", "--output", tmp_path / "out")
    assert code != 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: '{tmp_path / 'nope'}' is neither")
