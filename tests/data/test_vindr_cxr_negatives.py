"""The VinDr-CXR configs train on the "No finding" images: detectron2's train loader, built from the
config, keeps every prepared train image, those without boxes included (DATALOADER.FILTER_EMPTY_ANNOTATIONS)."""

import json
from pathlib import Path

import pytest
from detectron2.data.build import _train_loader_from_config
from helpers.vindr_cxr_synthetic import write_vinbigdata

from sna_det.data.datasets import register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr
from sna_det.engine import setup_cfg

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs" / "VinDr-CXR").glob("faster_rcnn_*.yaml"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare_vindr_cxr(
        write_vinbigdata(tmp_path_factory.mktemp("vindr")), out, PrepareOptions(max_size=40, val_fraction=0.25)
    )
    yield out
    register_vindr_cxr_datasets(None)


def train_images(config: str, prepared: Path, *opts: str) -> list:
    """The dataset dicts detectron2's ``build_detection_train_loader(cfg)`` samples from (its from_config)."""
    cfg = setup_cfg(
        ROOT / config, ["DATASETS.ROOTS.VINDR_CXR", str(prepared), "DATASETS.TRAIN", "('vindr_cxr_train',)", *opts]
    )
    return _train_loader_from_config(cfg)["dataset"]


@pytest.mark.parametrize("config", [*CONFIGS, "configs/vincxr_faster_sna.yaml"])
def test_train_loader_keeps_every_prepared_train_image(config, prepared):
    prepared_train = json.loads((prepared / "annotations" / "train.json").read_text())
    with_boxes = {a["image_id"] for a in prepared_train["annotations"]}
    empty = [i["id"] for i in prepared_train["images"] if i["id"] not in with_boxes]
    assert empty, "the synthetic train split should hold images with only 'No finding'"
    kept = train_images(config, prepared)
    assert sorted(d["image_id"] for d in kept) == sorted(i["id"] for i in prepared_train["images"])
    assert sum(not d["annotations"] for d in kept) == len(empty)


def test_detectron2s_default_would_drop_the_normals(prepared):
    """What the configs' setting changes: with detectron2's default the two normal images are gone."""
    prepared_train = json.loads((prepared / "annotations" / "train.json").read_text())
    with_boxes = {a["image_id"] for a in prepared_train["annotations"]}
    kept = train_images(CONFIGS[0], prepared, "DATALOADER.FILTER_EMPTY_ANNOTATIONS", "True")
    assert sorted(d["image_id"] for d in kept) == sorted(with_boxes) and len(kept) < len(prepared_train["images"])
