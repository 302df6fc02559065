"""LazyConfigs (configs/lazy/*.py): each builds the model of its YAML twin (same modules, parameter names
and shapes; same detections with the same weights) and trains one iteration on the demo data at a tiny
input size; tools/train_net.py trains and evaluates the demo LazyConfig with the project's evaluator."""

import json
import os
import subprocess
import sys
from pathlib import Path

import detectron2.data.transforms as T
import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import instantiate
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from sna_det.data.prepare.demo import ensure_demo_dataset
from sna_det.engine import setup_cfg
from sna_det.engine.lazy_config import lazy_train, setup_lazy_config
from sna_det.layers import SpectralNormAttention
from sna_det.modeling import DenseNetBackbone, add_attention

ROOT = Path(__file__).resolve().parents[2]
LAZY = ROOT / "configs" / "lazy"
TWINS = {  # LazyConfig -> the YAML config it mirrors
    "faster_rcnn_R_18_FPN_sna_demo.py": "configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml",
    "faster_rcnn_R_18_FPN_sna_vindr_cxr.py": "configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml",
    "faster_rcnn_D_121_FPN_sna_vindr_cxr.py": "configs/VinDr-CXR/faster_rcnn_D_121_FPN_sna.yaml",
    "faster_rcnn_R_50_FPN_sna_coco.py": "configs/COCO-Detection/faster_rcnn_R_50_FPN_sna_1x.yaml",
}


@pytest.fixture(autouse=True)
def _demo_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SNA_DET_CACHE", str(tmp_path_factory.getbasetemp() / "demo_cache"))


def test_every_lazy_config_has_a_twin():
    assert sorted(p.name for p in LAZY.glob("*.py")) == sorted(TWINS)


def _shapes(model):
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_lazy_model_is_its_yaml_twin(name):
    """Same parameter and buffer names and shapes, the same number of SNA blocks, the same classes and
    pixel normalisation as the model tools/train_net.py builds from the YAML config."""
    lazy = instantiate(setup_lazy_config(LAZY / name).model)
    yaml = build_model(setup_cfg(ROOT / TWINS[name], ["MODEL.DEVICE", "cpu"]))
    assert _shapes(lazy) == _shapes(yaml)
    count = lambda m: sum(isinstance(x, SpectralNormAttention) for x in m.modules())  # noqa: E731
    assert count(lazy) == count(yaml) > 0
    assert lazy.roi_heads.num_classes == yaml.roi_heads.num_classes
    assert torch.equal(lazy.pixel_mean, yaml.pixel_mean) and torch.equal(lazy.pixel_std, yaml.pixel_std)
    assert lazy.backbone.size_divisibility == yaml.backbone.size_divisibility
    frozen = lambda m: sorted(n for n, p in m.named_parameters() if not p.requires_grad)  # noqa: E731
    assert frozen(lazy) == frozen(yaml)


def test_lazy_demo_detects_as_the_yaml_demo_with_its_weights():
    """The YAML demo's weights loaded strictly into the LazyConfig demo give the same detections."""
    cfg = setup_cfg(ROOT / TWINS["faster_rcnn_R_18_FPN_sna_demo.py"], ["MODEL.DEVICE", "cpu"])
    yaml = build_model(cfg).eval()
    lazy = instantiate(setup_lazy_config(LAZY / "faster_rcnn_R_18_FPN_sna_demo.py").model).eval()
    lazy.load_state_dict(yaml.state_dict(), strict=True)
    torch.manual_seed(1)
    image = (torch.rand(3, 96, 128) * 255).round()
    with torch.no_grad():
        a = yaml([{"image": image, "height": 96, "width": 128}])[0]["instances"]
        b = lazy([{"image": image, "height": 96, "width": 128}])[0]["instances"]
    assert len(a) == len(b) > 0
    torch.testing.assert_close(b.pred_boxes.tensor, a.pred_boxes.tensor)
    torch.testing.assert_close(b.scores, a.scores)


def test_lazy_resnet_is_detectron2s_from_the_yaml_keys():
    """The Table 4 LazyConfig's backbone, built with the same seed, has the weights of detectron2's
    build_resnet_fpn_backbone through the YAML builder: the same network, initialised alike, through
    the same add_attention; an unknown type is refused by it."""
    cfg = setup_cfg(ROOT / "configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml", ["MODEL.DEVICE", "cpu"])
    from detectron2.modeling import build_backbone

    torch.manual_seed(5)
    yaml = build_backbone(cfg)
    torch.manual_seed(5)
    lazy = instantiate(setup_lazy_config(LAZY / "faster_rcnn_R_18_FPN_sna_vindr_cxr.py").model.backbone)
    assert list(yaml.state_dict()) == list(lazy.state_dict())
    for key, value in yaml.state_dict().items():
        assert torch.equal(value, lazy.state_dict()[key]), key
    with pytest.raises(ValueError, match="attention type 'ssa'"):
        add_attention(DenseNetBackbone(), attention="ssa")


def _tiny_demo_data(cfg):
    """The config's loaders on the demo data at 32 pixels, batch 2, no evaluator."""
    for split in ("train", "test"):
        cfg.dataloader[split].dataset.names = f"sna_demo_{'train' if split == 'train' else 'val'}"
        cfg.dataloader[split].num_workers = 0
    cfg.dataloader.train.mapper.augmentations = [
        L(T.ResizeShortestEdge)(short_edge_length=(32,), max_size=32, sample_style="choice")
    ]
    cfg.dataloader.train.total_batch_size = 2
    del cfg.dataloader["evaluator"]


@pytest.mark.parametrize("name", sorted(set(TWINS) - {"faster_rcnn_R_18_FPN_sna_demo.py"}))
def test_each_lazy_config_trains_one_iteration_on_the_demo(name, tmp_path):
    """lazy_train (tools/train_net.py's LazyConfig loop) runs one iteration of each model on the demo
    data: a finite loss is logged and model_final.pth is written."""
    opts = [f"train.output_dir={tmp_path}", "train.max_iter=1", "train.device=cpu", "train.init_checkpoint="]
    cfg = setup_lazy_config(LAZY / name, opts)
    _tiny_demo_data(cfg)
    cfg.model.roi_heads.num_classes = 4
    cfg.model.roi_heads.batch_size_per_image = 16
    cfg.model.proposal_generator.post_nms_topk = (64, 32)
    with EventStorage(0):
        lazy_train(cfg)
    assert (tmp_path / "model_final.pth").is_file()
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert records and all(torch.isfinite(torch.tensor(r["total_loss"])) for r in records if "total_loss" in r)


def test_train_net_trains_and_evaluates_the_demo_lazy_config(tmp_path):
    """tools/train_net.py --config-file <file>.py: one iteration, then the project's evaluator of the test
    dataset (registered through datasets.REGISTER, as DATASETS.REGISTER: four demo images, COCO AP)
    writes inference/results.json; --eval-only of the final weights gives the same metrics."""
    root = ensure_demo_dataset()
    val = json.loads((root / "val.json").read_text())
    val["images"] = val["images"][:4]
    kept = {image["id"] for image in val["images"]}
    val["annotations"] = [a for a in val["annotations"] if a["image_id"] in kept]
    (tmp_path / "tiny_val.json").write_text(json.dumps(val))
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    config = "configs/lazy/faster_rcnn_R_18_FPN_sna_demo.py"
    tiny = ["train.max_iter=1", "train.device=cpu", "dataloader.train.total_batch_size=2"]
    tiny += [
        f"datasets.REGISTER.tiny_val.JSON={tmp_path / 'tiny_val.json'}",
        f"datasets.REGISTER.tiny_val.IMAGES={root}/images",
    ]
    tiny += ["dataloader.test.dataset.names=tiny_val", "model.roi_heads.box_predictor.test_score_thresh=0.0"]
    for split, size in (("train", "[64]"), ("test", "64")):
        tiny += [f"dataloader.{split}.mapper.augmentations.0.short_edge_length={size}"]
        tiny += [f"dataloader.{split}.mapper.augmentations.0.max_size=64"]

    def train_net(*overrides, flags=()):
        proc = subprocess.run(
            [sys.executable, "tools/train_net.py", *flags, "--config-file", config, *tiny, *overrides],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc.stdout + proc.stderr

    output, again = tmp_path / "run", tmp_path / "eval"
    train_net(f"train.output_dir={output}")
    results = json.loads((output / "inference" / "results.json").read_text())
    assert set(results) == {"tiny_val"} and "AP" in results["tiny_val"]["bbox"]
    log = train_net(
        f"train.output_dir={again}", f"train.init_checkpoint={output}/model_final.pth", flags=["--eval-only"]
    )
    assert json.loads((again / "inference" / "results.json").read_text()) == results
    assert "copypaste: AP,AP50" in log


def test_unprepared_dataset_of_a_lazy_config_stops_with_one_line(tmp_path):
    """The Table 4 LazyConfig on a VinDr-CXR root that is not prepared: exit 1 and one 'error:' line
    naming the dataset, before any process starts or anything is written."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    config = "configs/lazy/faster_rcnn_R_18_FPN_sna_vindr_cxr.py"
    overrides = [f"datasets.ROOTS.VINDR_CXR={tmp_path / 'absent'}", f"train.output_dir={tmp_path / 'out'}"]
    proc = subprocess.run(
        [sys.executable, "tools/train_net.py", "--config-file", config, *overrides],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert lines[-1].startswith("error: ") and "vindr_cxr_train" in lines[-1], lines
    assert not (tmp_path / "out").exists()
