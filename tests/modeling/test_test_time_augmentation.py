"""Test-time augmentation (TEST.AUG) with the attention backbones, against plain inference of each copy.

A Faster R-CNN with strided convolutions is not exactly mirror-equivariant, so on a left-right
symmetric image plain inference and its mirror differ; what TTA must give there is the NMS of the
plain detections and their mirror images (the flipped copy is the same pixels as the image). A TTA
that forgot to map the flipped boxes back would give the plain detections instead: the test checks
that the two differ. With no flip and the test size only, TTA is plain inference.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data.transforms import ResizeShortestEdge
from detectron2.modeling import build_model
from torchvision.ops import batched_nms

from sna_det.config import ConfigError
from sna_det.engine import setup_cfg
from sna_det.layers import ATTENTION_TYPES
from sna_det.modeling.test_time_augmentation import build_tta_model

ROOT = Path(__file__).resolve().parents[2]
DEMO_SNA = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
SMALL = ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "128", "DATASETS.TEST", "()"]
SMALL += ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.05", "MODEL.RPN.POST_NMS_TOPK_TEST", "60"]


def model_and_cfg(*opts):
    cfg = setup_cfg(DEMO_SNA, [*SMALL, *map(str, opts)])
    torch.manual_seed(0)
    return build_model(cfg).eval(), cfg


def as_input(image: np.ndarray, height: int, width: int) -> dict:
    return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), "height": height, "width": width}


def plain(model, image: np.ndarray, height: int, width: int):
    """Plain inference of one (already resized) image, boxes in height x width pixels."""
    with torch.no_grad():
        return model([as_input(image, height, width)])[0]["instances"]


def mirrored(boxes: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)


def merged(boxes, scores, classes, cfg):
    """The independent merge: per-class NMS at NMS_THRESH_TEST, best DETECTIONS_PER_IMAGE, by score."""
    keep = batched_nms(boxes, scores, classes, cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST)[: cfg.TEST.DETECTIONS_PER_IMAGE]
    return boxes[keep], scores[keep], classes[keep]


def assert_same(instances, expected):
    boxes, scores, classes = expected
    assert len(instances) == len(boxes) > 0
    order = torch.argsort(instances.scores, descending=True, stable=True)
    torch.testing.assert_close(instances.pred_boxes.tensor[order], boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(instances.scores[order], scores, atol=1e-6, rtol=0)
    assert torch.equal(instances.pred_classes[order], classes)


def symmetric_image(height: int, width: int) -> np.ndarray:
    left = np.random.default_rng(0).integers(0, 256, size=(height, width // 2, 3), dtype=np.uint8)
    image = np.concatenate([left, left[:, ::-1]], axis=1)
    assert np.array_equal(image, image[:, ::-1])
    return image


def test_flip_only_on_a_symmetric_image_is_the_plain_detections_and_their_mirror():
    model, cfg = model_and_cfg("TEST.AUG.MIN_SIZES", "(64,)", "TEST.AUG.MAX_SIZE", "128", "TEST.AUG.FLIP", "True")
    image = symmetric_image(64, 96)  # the test size already: no resize
    found = plain(model, image, 64, 96)
    with torch.no_grad():
        tta = build_tta_model(cfg, model)([as_input(image, 64, 96)])[0]["instances"]
    boxes, scores, classes = found.pred_boxes.tensor, found.scores, found.pred_classes
    flipped = mirrored(boxes, 96)
    assert (boxes - flipped).abs().max() > 1.0, "the model is not mirror-equivariant: the two sets differ"
    expected = merged(torch.cat([boxes, flipped]), torch.cat([scores, scores]), torch.cat([classes, classes]), cfg)
    assert_same(tta, expected)
    # every plain detection is there, with its score (its mirror has the same score)
    assert len(tta) >= len(found) and tta.scores.max() == pytest.approx(float(scores.max()))


def test_without_flip_at_the_test_size_tta_is_plain_inference():
    model, cfg = model_and_cfg("TEST.AUG.MIN_SIZES", "(64,)", "TEST.AUG.MAX_SIZE", "128", "TEST.AUG.FLIP", "False")
    original = np.random.default_rng(1).integers(0, 256, size=(80, 120, 3), dtype=np.uint8)
    resized = ResizeShortestEdge(64, 128).get_transform(original).apply_image(original)  # what the test loader gives
    assert resized.shape == (64, 96, 3)
    found = plain(model, resized, 80, 120)
    with torch.no_grad():
        tta = build_tta_model(cfg, model)([as_input(resized, 80, 120)])[0]["instances"]
    assert_same(tta, (found.pred_boxes.tensor, found.scores, found.pred_classes))


# not "sna_authors": its map is of the whole mini-batch (the authors' one matrix per batch), so a copy's
# detections depend on the copies batched with it, by design of that ablation
@pytest.mark.parametrize("attention", [t for t in ATTENTION_TYPES if t not in ("none", "sna_authors")])
def test_every_attention_type_under_resized_and_flipped_copies(attention):
    """Two sizes x (plain, mirrored): TTA is the merge of plain inference of each copy, run alone."""
    sizes = (48, 72)
    model, cfg = model_and_cfg(
        *["MODEL.ATTENTION.TYPE", attention, "MODEL.ATTENTION.STEM", "True", "MODEL.ATTENTION.STAGES", '["res3"]'],
        *["TEST.AUG.MIN_SIZES", str(sizes), "TEST.AUG.MAX_SIZE", "160", "TEST.AUG.FLIP", "True"],
    )
    height, width = 70, 90
    image = np.random.default_rng(2).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    with torch.no_grad():
        tta = build_tta_model(cfg, model)([as_input(image, height, width)])[0]["instances"]
    boxes, scores, classes = [], [], []
    for size in sizes:
        resized = ResizeShortestEdge(size, 160).get_transform(image).apply_image(image)
        for flip in (False, True):
            found = plain(model, resized[:, ::-1] if flip else resized, height, width)
            boxes.append(mirrored(found.pred_boxes.tensor, width) if flip else found.pred_boxes.tensor)
            scores.append(found.scores)
            classes.append(found.pred_classes)
    assert_same(tta, merged(torch.cat(boxes), torch.cat(scores), torch.cat(classes), cfg))
    b = tta.pred_boxes.tensor
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= width).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= height).all()


def test_models_tta_cannot_wrap_are_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="GeneralizedRCNN, not MODEL.META_ARCHITECTURE 'RetinaNet'"):
        setup_cfg(DEMO_SNA, [*SMALL, "TEST.AUG.ENABLED", "True", "MODEL.META_ARCHITECTURE", "RetinaNet"])
    with pytest.raises(ConfigError, match="TEST.AUG.MIN_SIZES"):
        setup_cfg(DEMO_SNA, [*SMALL, "TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "()"])
    model, cfg = model_and_cfg()
    with pytest.raises(ConfigError, match="needs a GeneralizedRCNN, not a Sequential"):
        build_tta_model(cfg, torch.nn.Sequential(model.backbone))


def test_training_hook_runs_tta_once_after_the_plain_evaluation(tmp_path):
    from detectron2.engine.hooks import EvalHook, PeriodicWriter

    from sna_det.engine import Trainer

    config = tiny_dataset_config(tmp_path)
    opts = [*SMALL[:6], "TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(64,)", "TEST.AUG.MAX_SIZE", "96"]
    cfg = setup_cfg(config, [*opts, "OUTPUT_DIR", str(tmp_path / "out"), "SOLVER.IMS_PER_BATCH", "2"])
    hooks = Trainer(cfg).build_hooks()
    kinds = [type(h) for h in hooks]
    evals = [i for i, k in enumerate(kinds) if k is EvalHook]
    assert len(evals) == 2 and evals[1] < kinds.index(PeriodicWriter)
    assert hooks[evals[1]]._period == 0  # after training only
    results = hooks[evals[1]]._func()
    assert list(results) == ["per_class_ap@0.4_TTA"]
    assert (tmp_path / "out" / "inference_TTA" / "coco_instances_results_tiny_val.json").is_file()
    saved = json.loads((tmp_path / "out" / "inference" / "results.json").read_text())
    assert list(saved["tiny_val"]) == ["per_class_ap@0.4_TTA"]


def tiny_dataset_config(tmp_path: Path) -> Path:
    """Three 64 x 96 noise images with a box or two, registered as "tiny_val" (DATASETS.REGISTER)."""
    from PIL import Image

    rng = np.random.default_rng(3)
    images, annotations = [], []
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 96, "height": 64})
        for k in range(1 + i % 2):
            box = [10.0 + 30 * k, 8.0, 20.0, 24.0]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": 1 + k,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(("nodule", "mass", "opacity", "cavity"))]
    (tmp_path / "tiny.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"""_BASE_: "{DEMO_SNA}"
DATASETS:
  REGISTER:
    tiny_val: {{JSON: "{tmp_path / "tiny.json"}", IMAGES: "{tmp_path}", EVALUATOR: "per_class_ap", EVAL_IOU: 0.4}}
  TRAIN: ("tiny_val",)
  TEST: ("tiny_val",)
"""
    )
    return config


def test_eval_only_writes_tta_results_beside_the_plain_ones(tmp_path):
    """train_net --eval-only with TEST.AUG.ENABLED: inference_TTA/ and "<task>_TTA" in results.json."""
    config, output = tiny_dataset_config(tmp_path), tmp_path / "output"
    opts = ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96", "OUTPUT_DIR", output]
    opts += ["MODEL.RPN.POST_NMS_TOPK_TEST", "30", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "TEST.AUG.ENABLED"]
    opts += ["True", "TEST.AUG.MIN_SIZES", "(64, 96)", "TEST.AUG.MAX_SIZE", "144", "DATALOADER.NUM_WORKERS", "0"]
    weights = tmp_path / "random.pth"  # --eval-only evaluates given weights only: these are a seeded model's
    torch.manual_seed(0)
    torch.save({"model": build_model(setup_cfg(config, [str(o) for o in opts])).state_dict()}, weights)
    opts += ["MODEL.WEIGHTS", weights]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train_net.py"), "--config-file", str(config), "--eval-only"]
        + [str(o) for o in opts],
        cwd=ROOT,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Running inference with test-time augmentation" in proc.stdout + proc.stderr
    results = json.loads((output / "inference" / "results.json").read_text())
    task = "per_class_ap@0.4"
    assert set(results) == {"tiny_val"} and set(results["tiny_val"]) == {task, f"{task}_TTA"}
    assert set(results["tiny_val"][f"{task}_TTA"]) == set(results["tiny_val"][task])
    plain_dets = json.loads((output / "inference" / "coco_instances_results_tiny_val.json").read_text())
    tta_dets = json.loads((output / "inference_TTA" / "coco_instances_results_tiny_val.json").read_text())
    assert len(plain_dets) > 0 and len(tta_dets) > 0 and plain_dets != tta_dets
    assert {d["image_id"] for d in tta_dets} == {1, 2, 3}
