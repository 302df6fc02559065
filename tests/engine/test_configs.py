"""Every config of the project builds a model that trains a step and infers on a tiny image; the
configs follow one scheme (a baseline is the _BASE_ of its treatments, which set MODEL.ATTENTION only)."""

from pathlib import Path

import pytest
import torch
import yaml
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage
from helpers import load_light_cfg
from timm.layers import get_attn

from sna_det import SpectralNormAttention
from sna_det.layers import SpectralNormAttentionAuthorsCode

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if "classification" not in p.parts)
"""The detectors' configs (the classifiers', configs/VinDr-CXR/classification: tests/engine/test_classifier.py)."""
TIMM_NAMES = {"se": "se", "eca": "eca", "nonlocal": "nl", "cbam": "cbam", "gc": "gc"}  # type -> get_attn name
ATTENTION_CLASSES = {
    "sna": SpectralNormAttention,
    "sna_authors": SpectralNormAttentionAuthorsCode,
    **{t: get_attn(name) for t, name in TIMM_NAMES.items()},
}
FOLDERS = {
    "COCO-Detection",
    "COCO-InstanceSegmentation",
    "VOC-Detection",
    "VOC-InstanceSegmentation",
    "VinDr-CXR",
    "demo",
}
ALIASES = {"vincxr_faster_sna.yaml": "VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml"}
"""Paths README users type, kept as one-line configs over the file they name."""


load_cfg = load_light_cfg


def relative(path: Path) -> str:
    return path.relative_to(CONFIG_DIR).as_posix()


def leaves():
    return [p for p in CONFIGS if not p.name.startswith("Base") and relative(p) not in ALIASES]


def tiny_batch(cfg, size=(96, 128)):
    h, w = size
    batch = []
    for _ in range(2):
        instances = Instances(size)
        instances.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 20.0, 110.0, 80.0]]))
        instances.gt_classes = torch.tensor([0, min(1, cfg.MODEL.ROI_HEADS.NUM_CLASSES - 1)])
        masks = torch.zeros(2, h, w, dtype=torch.bool)
        masks[0, 12:60, 10:50] = True
        masks[1, 20:80, 60:110] = True
        instances.gt_masks = BitMasks(masks)
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8).float()
        batch.append({"image": image, "instances": instances, "height": h, "width": w})
    return batch


def test_there_are_configs():
    names = {relative(p) for p in CONFIGS}
    for expected in (
        "Base-RCNN-FPN.yaml",
        "COCO-Detection/faster_rcnn_R_50_FPN_sna_1x.yaml",
        "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_sna_1x.yaml",
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
        "VOC-Detection/faster_rcnn_R_50_FPN_sna.yaml",
        "VOC-InstanceSegmentation/mask_rcnn_R_50_FPN_sna.yaml",
        "VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml",
        "vincxr_faster_sna.yaml",
        "demo/faster_rcnn_R_18_FPN_sna_demo.yaml",
    ):
        assert expected in names


def test_one_naming_scheme_and_treatments_are_short_leaves_over_their_baseline():
    """<Dataset-Task>/<meta_arch>_<backbone>[_<attention>][_<schedule>].yaml; a treatment's _BASE_ is the
    same name without the attention, and it sets MODEL.ATTENTION (and its OUTPUT_DIR) only."""
    treatments = 0
    for path in leaves():
        assert path.parent.name in FOLDERS, relative(path)
        assert path.stem.split("_")[0] in ("faster", "mask"), relative(path)
        loaded = yaml.safe_load(path.read_text())
        words = path.stem.split("_")
        attention = [w for w in words if w in ATTENTION_CLASSES]
        if not attention:
            continue
        treatments += 1
        (attn,) = attention
        baseline = "_".join(w for w in words if w != attn) + ".yaml"
        assert loaded["_BASE_"] == baseline, relative(path)
        assert set(loaded) == {"_BASE_", "MODEL", "OUTPUT_DIR"} and set(loaded["MODEL"]) == {"ATTENTION"}
        assert loaded["MODEL"]["ATTENTION"]["TYPE"] == (f"{attn}_authors" if words[-1] == "authors" else attn)
    assert treatments == 29


def test_every_run_writes_to_its_own_output_dir():
    dirs = {relative(p): yaml.safe_load(p.read_text())["OUTPUT_DIR"] for p in leaves()}
    assert len(set(dirs.values())) == len(dirs)


def test_aliases_are_the_configs_they_name():
    for alias, target in ALIASES.items():
        a, b = load_cfg(CONFIG_DIR / alias), load_cfg(CONFIG_DIR / target)
        assert a.OUTPUT_DIR != b.OUTPUT_DIR
        a.defrost(), b.defrost()
        a.OUTPUT_DIR = b.OUTPUT_DIR
        assert a.dump() == b.dump()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS])
def test_config_builds_trains_a_step_and_infers(path):
    cfg = load_cfg(path)
    model = build_model(cfg)
    present = {t for t, cls in ATTENTION_CLASSES.items() if any(isinstance(m, cls) for m in model.modules())}
    a = cfg.MODEL.ATTENTION
    expected = {a.TYPE} if a.TYPE != "none" and (a.STEM or a.STAGES) else set()
    assert present == expected
    if not path.name.startswith("Base"):
        named = set(path.stem.replace("sna_authors", "sna-authors").split("_")) & {
            t.replace("_", "-") for t in ATTENTION_CLASSES
        }
        named = {t.replace("-", "_") for t in named}
        assert named == present, "the file name says which attention the model has (none: the baseline)"

    model.train()
    with EventStorage(0):
        losses = model(tiny_batch(cfg))
    expected = {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"} | (
        {"loss_mask"} if cfg.MODEL.MASK_ON else set()
    )
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": torch.randint(0, 256, (3, 80, 100)).float(), "height": 80, "width": 100}])
    instances = output["instances"]
    assert instances.image_size == (80, 100)
    assert instances.has("pred_boxes") and instances.has("scores")
    assert instances.has("pred_masks") == bool(cfg.MODEL.MASK_ON)
