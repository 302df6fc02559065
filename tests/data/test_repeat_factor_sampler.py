"""Class-balanced sampling for VinDr-CXR: detectron2's RepeatFactorTrainingSampler chosen by
DATALOADER.SAMPLER_TRAIN through the Trainer, on a prepared synthetic VinDr-CXR folder. Its repeat
factors are checked against LVIS's formula computed here from the prepared COCO JSON:
r(c) = max(1, sqrt(t / f(c))) with f(c) the fraction of training images showing class c, and per image
the largest r(c) of its classes (1 for an image without boxes)."""

import json
import math
from collections import Counter

import pytest
from detectron2.data import DatasetCatalog
from detectron2.data.samplers import RepeatFactorTrainingSampler
from helpers.vindr_cxr_synthetic import prepared_vindr_cxr

from sna_det.engine import Trainer, setup_cfg

CONFIG = "configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml"
THRESHOLD = 0.5


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_vindr_cxr(tmp_path_factory.mktemp("vindr"))


def _sampler(loader) -> RepeatFactorTrainingSampler:
    """The sampler under detectron2's train loader (DataLoader -> datasets -> ToIterableDataset)."""
    seen, todo = set(), [loader]
    while todo:
        node = todo.pop()
        if isinstance(node, RepeatFactorTrainingSampler):
            return node
        if id(node) in seen:
            continue
        seen.add(id(node))
        todo += [
            getattr(node, name)
            for name in ("dataset", "sampler", "batch_sampler")
            if getattr(node, name, None) is not None
        ]
    raise AssertionError("no RepeatFactorTrainingSampler under the train loader")


def _expected(prepared, file_names, threshold):
    """LVIS's repeat factors for the images ``file_names`` (the loader's order), from the JSON alone."""
    coco = json.loads((prepared / "annotations" / "train.json").read_text())
    classes_of = {image["id"]: set() for image in coco["images"]}
    for a in coco["annotations"]:
        classes_of[a["image_id"]].add(a["category_id"])
    by_name = {image["file_name"].split("/")[-1]: classes_of[image["id"]] for image in coco["images"]}
    images = [by_name[name.split("/")[-1]] for name in file_names]
    frequency = Counter(c for classes in images for c in classes)
    repeat = {c: max(1.0, math.sqrt(threshold / (n / len(images)))) for c, n in frequency.items()}
    return [max((repeat[c] for c in classes), default=1.0) for classes in images], images, frequency


@pytest.mark.parametrize("keep_normals", [False, True])
def test_repeat_factors_follow_lvis_formula_rarest_classes_most(prepared, keep_normals):
    opts = ["DATASETS.ROOTS.VINDR_CXR", str(prepared), "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0"]
    opts += ["SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64"]
    opts += ["DATALOADER.SAMPLER_TRAIN", "RepeatFactorTrainingSampler", "SEED", "0"]  # a run makes SEED concrete
    opts += [
        "DATALOADER.REPEAT_THRESHOLD",
        str(THRESHOLD),
        "DATALOADER.FILTER_EMPTY_ANNOTATIONS",
        str(not keep_normals),
    ]
    cfg = setup_cfg(CONFIG, opts)
    loader = Trainer.build_train_loader(cfg)
    sampler = _sampler(loader)
    got = (sampler._int_part + sampler._frac_part).tolist()

    dicts = DatasetCatalog.get("vindr_cxr_train")
    if not keep_normals:  # detectron2 drops images without boxes before sampling (FILTER_EMPTY_ANNOTATIONS)
        dicts = [d for d in dicts if d["annotations"]]
    expected, classes, frequency = _expected(prepared, [d["file_name"] for d in dicts], THRESHOLD)
    assert len(got) == len(expected) == len(classes)
    assert got == pytest.approx(expected, rel=1e-6)

    normals = [r for r, c in zip(got, classes) if not c]
    assert bool(normals) == keep_normals and all(r == 1.0 for r in normals)
    # the rarest class's images are repeated most; images whose classes are all at least t frequent are not
    rarest = min(frequency, key=frequency.get)
    assert max(got) > 1 and max(got) == pytest.approx(math.sqrt(THRESHOLD * len(classes) / frequency[rarest]))
    assert all(r == max(got) for r, c in zip(got, classes) if rarest in c)
    common = [r for r, c in zip(got, classes) if c and min(frequency[k] for k in c) >= THRESHOLD * len(classes)]
    assert common and set(common) == {1.0}
    batch = next(iter(loader))  # the Trainer's loader yields batches with this sampler
    assert len(batch) == 2 and all(item["image"].shape[0] == 3 for item in batch)
