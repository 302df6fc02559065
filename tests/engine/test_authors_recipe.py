"""SOLVER.OPTIMIZER and the authors' Table 4 recipe configs (C5-only Faster R-CNN, Adam, their SNA block)."""

import os
from pathlib import Path

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import build_detection_train_loader
from detectron2.engine import SimpleTrainer
from detectron2.modeling import build_model
from torch import nn

from sna_det import add_sna_config
from sna_det.layers import SpectralNormAttentionAuthorsCode
from sna_det.solver import build_optimizer

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "VinDr-CXR"
AUTHORS = ["faster_rcnn_R_18_C5_authors", "faster_rcnn_R_18_C5_sna_authors"]
AUTHORS_D121 = ["faster_rcnn_D121_C5_authors", "faster_rcnn_D121_C5_sna_authors"]
TINY = [
    "DATASETS.TRAIN", '("sna_demo_train",)', "DATASETS.TEST", "()", "MODEL.ROI_HEADS.NUM_CLASSES", "4",
    "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "64", "MODEL.DEVICE", "cpu",
    "DATALOADER.NUM_WORKERS", "0", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
    "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "100",
]  # fmt: skip


def config(name: str, *opts):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_file(str(CONFIGS / f"{name}.yaml"))
    cfg.merge_from_list(list(opts))
    return cfg


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)


@pytest.mark.parametrize(
    "name, kind", [("SGD", torch.optim.SGD), ("ADAM", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_optimizer_type_and_groups(name, kind):
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_list(["SOLVER.OPTIMIZER", name, "SOLVER.BASE_LR", "0.001", "SOLVER.WEIGHT_DECAY", "1e-5"])
    cfg.merge_from_list(
        ["SOLVER.WEIGHT_DECAY_NORM", "0.0", "SOLVER.BIAS_LR_FACTOR", "2.0", "SOLVER.BETAS", "(0.8, 0.99)"]
    )
    model = Tiny()
    optimizer = build_optimizer(cfg, model)
    assert type(optimizer) is kind
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    assert len(groups) == 4
    assert groups[id(model.conv.weight)]["lr"] == 0.001 and groups[id(model.conv.weight)]["weight_decay"] == 1e-5
    assert groups[id(model.conv.bias)]["lr"] == 0.002  # BIAS_LR_FACTOR
    assert groups[id(model.norm.weight)]["weight_decay"] == 0.0  # WEIGHT_DECAY_NORM
    if kind is torch.optim.SGD:
        assert groups[id(model.conv.weight)]["momentum"] == cfg.SOLVER.MOMENTUM
    else:
        assert groups[id(model.conv.weight)]["betas"] == (0.8, 0.99) and groups[id(model.conv.weight)]["eps"] == 1e-8


def test_adam_steps_like_torch_adam():
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_list(["SOLVER.OPTIMIZER", "ADAM", "SOLVER.BASE_LR", "0.01", "SOLVER.WEIGHT_DECAY", "0.1"])
    cfg.merge_from_list(["SOLVER.WEIGHT_DECAY_NORM", "0.1"])
    ours, reference = Tiny(), Tiny()
    reference.load_state_dict(ours.state_dict())
    optimizers = [build_optimizer(cfg, ours), torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=0.1)]
    x = torch.randn(2, 3, 8, 8)
    for _ in range(3):
        for model, optimizer in zip((ours, reference), optimizers):
            optimizer.zero_grad()
            model.norm(model.conv(x)).square().mean().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)


def test_clipping_wraps_adam_and_bad_names_fail():
    cfg = get_cfg()
    add_sna_config(cfg)
    cfg.merge_from_list(["SOLVER.OPTIMIZER", "ADAM", "SOLVER.CLIP_GRADIENTS.ENABLED", "True"])
    optimizer = build_optimizer(cfg, Tiny())
    assert isinstance(optimizer, torch.optim.Adam) and type(optimizer) is not torch.optim.Adam
    cfg.SOLVER.OPTIMIZER = "LAMB"
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER 'LAMB'"):
        build_optimizer(cfg, Tiny())


def test_recipe_settings():
    cfg = config(AUTHORS[1])
    assert (cfg.SOLVER.OPTIMIZER, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.STEPS) == (
        "ADAM",
        1e-3,
        1e-5,
        (),
    )
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[32, 64, 128, 256]] and cfg.MODEL.RESNETS.OUT_FEATURES == ["res5"]
    assert (cfg.MODEL.ATTENTION.TYPE, cfg.MODEL.ATTENTION.STEM) == ("sna_authors", True)
    assert config(AUTHORS[0]).MODEL.ATTENTION.TYPE == "none"


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """One demo data set for this module's runs (written on first use)."""
    cache, previous = tmp_path_factory.mktemp("cache"), os.environ.get("SNA_DET_CACHE")
    os.environ["SNA_DET_CACHE"] = str(cache)
    yield cache
    if previous is None:
        del os.environ["SNA_DET_CACHE"]
    else:
        os.environ["SNA_DET_CACHE"] = previous


@pytest.mark.parametrize("name", AUTHORS_D121)
def test_densenet_pair_builds_c5_only(name):
    model = build_model(config(name, *TINY))
    assert list(model.backbone.output_shape()) == ["dense4"] and model.backbone.output_shape()["dense4"].stride == 32
    blocks = [n for n, m in model.named_modules() if isinstance(m, SpectralNormAttentionAuthorsCode)]
    assert len(blocks) == (1 if "_sna_" in name else 0)  # after pool0 (the stem) only


@pytest.mark.parametrize("name", AUTHORS)
def test_builds_and_trains_two_iterations_on_the_demo(name, tmp_path, demo_cache):
    cfg = config(name, *TINY, "OUTPUT_DIR", str(tmp_path))
    model = build_model(cfg)
    feature = cfg.MODEL.ROI_HEADS.IN_FEATURES
    assert list(model.backbone.output_shape()) == feature and len(feature) == 1  # C5 only: one level
    blocks = [m for m in model.modules() if isinstance(m, SpectralNormAttentionAuthorsCode)]
    assert len(blocks) == (1 if "_sna_" in name else 0)
    trainer = SimpleTrainer(model, build_detection_train_loader(cfg), build_optimizer(cfg, model))
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train(0, 2)
    losses = [value for value, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_net_trainer_builds_the_configured_optimizer():
    from sna_det.engine import Trainer  # tools/train_net.py's Trainer

    optimizer = Trainer.build_optimizer(config(AUTHORS[0]), Tiny())
    assert type(optimizer) is torch.optim.Adam and optimizer.param_groups[0]["lr"] == 1e-3
