"""Every config of the project builds a model that trains a step and infers on a tiny image."""

from pathlib import Path

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage
from timm.layers import get_attn

from sna_det import SpectralNormAttention, add_sna_config
from sna_det.layers import TIMM_ATTENTION, SpectralNormAttentionAuthorsCode

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))
ATTENTION_CLASSES = {
    "sna": (SpectralNormAttention, SpectralNormAttentionAuthorsCode),
    **{t: get_attn(name) for t, name in TIMM_ATTENTION.items()},
}


def load_cfg(path: Path):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(str(path))
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.DEVICE = "cpu"
    # fewer proposals and sampled RoIs: the same architecture, a fraction of the CPU time
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 64
    return cfg


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
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS}
    for expected in (
        "Base-SNA-RCNN-FPN.yaml",
        "COCO-Detection/faster_rcnn_R_50_FPN_sna_1x.yaml",
        "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_sna_1x.yaml",
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
        "vincxr_faster_sna.yaml",
        "demo/faster_rcnn_R_18_FPN_sna_demo.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS])
def test_config_builds_trains_a_step_and_infers(path):
    cfg = load_cfg(path)
    model = build_model(cfg)
    present = {t for t, cls in ATTENTION_CLASSES.items() if any(isinstance(m, cls) for m in model.modules())}
    if "sna" in cfg.MODEL.BACKBONE.NAME:
        expected = {"sna"} if cfg.MODEL.SNA.STEM or cfg.MODEL.SNA.STAGES else set()
    elif "attention" in cfg.MODEL.BACKBONE.NAME and cfg.MODEL.ATTENTION.TYPE != "none":
        expected = {cfg.MODEL.ATTENTION.TYPE} if cfg.MODEL.ATTENTION.STEM or cfg.MODEL.ATTENTION.STAGES else set()
    else:
        expected = set()
    assert present == expected
    if not path.name.startswith("Base"):
        named = set(path.stem.split("_")) & set(ATTENTION_CLASSES)
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
