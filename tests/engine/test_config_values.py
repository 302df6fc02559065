"""Every config value checked where it enters, once, and alike for YAML files, the command line and
LazyConfigs: a value out of range, NaN, an unknown key (with the closest names), a batch the processes
cannot share, MIN_SIZE > MAX_SIZE stop tools/train_net.py in one line, exit 1, before OUTPUT_DIR is
touched. The two config systems train the same VinDr-CXR images and the same LR schedule."""

import inspect
import json

import pytest
import torch
from detectron2.config import instantiate
from detectron2.data import get_detection_dataset_dicts
from detectron2.solver import build_lr_scheduler
from helpers import ROOT, run_main
from helpers.vindr_cxr_synthetic import prepared_vindr_cxr
from omegaconf import OmegaConf

from sna_det.engine import setup_cfg
from sna_det.engine.lazy_config import setup_lazy_config

DEMO = "configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml"
LAZY_DEMO = "configs/lazy/faster_rcnn_R_18_FPN_sna_demo.py"

# (YAML overrides, LazyConfig overrides, what both messages say)
SAME_MISTAKES = [
    (["SOLVER.MAX_ITER", "0"], ["train.max_iter=0"], ["0 must be an integer >= 1", "SOLVER.MAX_ITER"]),
    (["SOLVER.MAX_ITER", "-5"], ["train.max_iter=-5"], ["-5 must be an integer >= 1", "SOLVER.MAX_ITER"]),
    (["SOLVER.BASE_LR", "-0.1"], ["optimizer.lr=-0.1"], ["-0.1 must be a number > 0", "SOLVER.BASE_LR"]),
    (["SOLVER.BASE_LR", "0.0"], ["optimizer.lr=0.0"], ["0.0 must be a number > 0", "SOLVER.BASE_LR"]),
    (["DATALOADER.NUM_WORKERS", "-1"], ["dataloader.train.num_workers=-1"], ["-1 must be an integer >= 0"]),
    (["SOLVER.IMS_PER_BATCH", "0"], ["dataloader.train.total_batch_size=0"], ["0 must be an integer >= 1"]),
    (
        ["INPUT.MIN_SIZE_TRAIN", "(0,)"],
        ["dataloader.train.mapper.augmentations.0.short_edge_length=[0]"],
        ["must be a non-empty list of integers >= 1", "INPUT.MIN_SIZE_TRAIN"],
    ),
    (
        ["INPUT.MIN_SIZE_TRAIN", "(300,)"],
        ["dataloader.train.mapper.augmentations.0.short_edge_length=[300]"],
        ["(300,) exceeds", "256: a shorter side must be <= it"],
    ),
    (["MODEL.ROI_HEADS.NUM_CLASSES", "0"], ["model.roi_heads.num_classes=0"], ["0 must be an integer >= 1"]),
    (["MODEL.ATTENTION.TYPE", "ssa"], ["model.backbone.attention=ssa"], ["'ssa' is not one of ['none', 'sna'"]),
    (["SOLVER.MAX_ITR", "1"], ["train.max_itr=1"], ["did you mean", "MAX_ITER'"]),
    (["SOLVER.BASE_LR", "abc"], ["optimizer.lr=abc"], ["BASE_LR"]),
]


@pytest.fixture(autouse=True)
def _demo_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SNA_DET_CACHE", str(tmp_path_factory.getbasetemp() / "demo_cache"))


def _refused(capsys, output_dir, *argv) -> str:
    """train_net with ``argv``: exit 1, one line ``error: ...``, nothing on stdout, ``output_dir`` (holding
    a previous run's file) as it was. The line."""
    output_dir.mkdir(exist_ok=True)
    (output_dir / "config.yaml").write_text("previous run\n")
    capsys.readouterr()
    code = run_main("tools/train_net.py", *argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1, captured.err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-3000:]
    assert captured.out == ""
    assert sorted(p.name for p in output_dir.iterdir()) == ["config.yaml"]
    assert (output_dir / "config.yaml").read_text() == "previous run\n"
    return lines[0]


@pytest.mark.parametrize("yaml_opts, lazy_opts, fragments", SAME_MISTAKES)
def test_both_config_systems_refuse_the_same_mistake(capsys, tmp_path, yaml_opts, lazy_opts, fragments):
    out = tmp_path / "out"
    yaml_line = _refused(capsys, out, "--config-file", DEMO, "OUTPUT_DIR", str(out), *yaml_opts)
    lazy_line = _refused(capsys, out, "--config-file", LAZY_DEMO, f"train.output_dir={out}", *lazy_opts)
    for fragment in fragments:
        assert fragment.lower() in yaml_line.lower() and fragment.lower() in lazy_line.lower(), (yaml_line, lazy_line)


def test_nan_in_a_yaml_file_is_refused_as_on_the_command_line(capsys, tmp_path):
    config = tmp_path / "nan.yaml"
    config.write_text(f'_BASE_: "{ROOT / DEMO}"\nSOLVER:\n  BASE_LR: .nan\n')
    line = _refused(capsys, tmp_path / "out", "--config-file", config, "OUTPUT_DIR", tmp_path / "out")
    assert "SOLVER.BASE_LR nan must be a number > 0" in line
    config.write_text(f'_BASE_: "{ROOT / DEMO}"\nSOLVER:\n  MAX_ITR: 3\n')
    line = _refused(capsys, tmp_path / "out", "--config-file", config, "OUTPUT_DIR", tmp_path / "out")
    assert "SOLVER.MAX_ITR" in line and "did you mean 'SOLVER.MAX_ITER'" in line


def test_a_batch_the_processes_cannot_share_is_refused(capsys, tmp_path):
    out = tmp_path / "out"
    line = _refused(capsys, out, "--config-file", DEMO, "--num-gpus", "3", "OUTPUT_DIR", out)  # batch 8
    assert "SOLVER.IMS_PER_BATCH 8 is not divisible by the 3 processes" in line
    line = _refused(capsys, out, "--config-file", LAZY_DEMO, "--num-gpus", "3", f"train.output_dir={out}")
    assert "dataloader.train.total_batch_size 8 is not divisible by the 3 processes" in line


def test_a_keyword_of_a_lazy_call_not_written_in_the_file_is_accepted():
    cfg = setup_lazy_config(ROOT / LAZY_DEMO, ["model.roi_heads.box_head.conv_norm=BN"])
    assert cfg.model.roi_heads.box_head.conv_norm == "BN"
    mistyped = "box_head has no key 'conv_nrm' \\(did you mean 'model.roi_heads.box_head.conv_norm'"
    with pytest.raises(ValueError, match=mistyped):
        setup_lazy_config(ROOT / LAZY_DEMO, ["model.roi_heads.box_head.conv_nrm=BN"])


@pytest.mark.parametrize(
    "section, receiver, forwarded, value",
    [
        # StandardROIHeads(**kwargs) -> super().__init__: ROIHeads takes batch_size_per_image
        ("model.roi_heads", "detectron2.modeling.roi_heads.ROIHeads.__init__", "batch_size_per_image", "16"),
        # build_detection_train_loader(**kwargs) -> build_batch_data_loader(**kwargs) -> DataLoader
        ("dataloader.train", "torch.utils.data.DataLoader.__init__", "persistent_workers", "False"),
    ],
)
def test_a_lazy_calls_forwarded_keywords_are_accepted_and_a_mistyped_one_refused(section, receiver, forwarded, value):
    """A ``**kwargs`` target's keywords, followed to the callee that receives them: what that callee's own
    signature binds is accepted, a mistyped name (which it does not bind) is refused in one line."""
    from detectron2.utils.registry import locate

    from sna_det.engine.lazy_config import accepted_keywords

    target = OmegaConf.select(setup_lazy_config(ROOT / LAZY_DEMO), f"{section}._target_")
    parameters = inspect.signature(locate(target) if isinstance(target, str) else target).parameters
    assert forwarded not in parameters and any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    mistyped = forwarded[:-1] + "_x"
    bind = inspect.signature(locate(receiver)).bind_partial
    bind(**{forwarded: None})
    with pytest.raises(TypeError):
        bind(**{mistyped: None})
    keywords = accepted_keywords(target)
    assert forwarded in keywords and mistyped not in keywords
    cfg = setup_lazy_config(ROOT / LAZY_DEMO, [f"{section}.{forwarded}={value}"])
    assert str(OmegaConf.select(cfg, f"{section}.{forwarded}")) == value
    with pytest.raises(ValueError, match=f"{section} has no key '{mistyped}' \\(did you mean '{section}.{forwarded}'"):
        setup_lazy_config(ROOT / LAZY_DEMO, [f"{section}.{mistyped}={value}"])


@pytest.mark.parametrize("max_iter", [100, 200])
def test_lazy_max_iter_keeps_the_lr_steps_as_yaml_max_iter(max_iter):
    """The demo's steps (150, 185) and warmup 40 in iterations: detectron2's YAML scheduler and the lazy
    multiplier, both with max_iter, agree at every iteration; with 100 the steps are not reached."""
    cfg = setup_cfg(ROOT / DEMO, ["SOLVER.MAX_ITER", str(max_iter)])
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    yaml = build_lr_scheduler(cfg, optimizer)._multiplier
    lazy = instantiate(setup_lazy_config(ROOT / LAZY_DEMO, [f"train.max_iter={max_iter}"]).lr_multiplier)
    values = [lazy(i / max_iter) for i in range(max_iter)]
    assert values == pytest.approx([yaml(i / max_iter) for i in range(max_iter)], abs=1e-12)
    assert values[0] == pytest.approx(0.001) and values[40] == 1.0
    assert values[-1] == pytest.approx(1.0 if max_iter == 100 else 0.01)


@pytest.fixture(scope="module")
def prepared_vindr(tmp_path_factory):
    return prepared_vindr_cxr(tmp_path_factory.mktemp("vindr"))


@pytest.mark.parametrize(
    "yaml_config, lazy_config",
    [
        ("configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml", "configs/lazy/faster_rcnn_R_18_FPN_sna_vindr_cxr.py"),
        ("configs/VinDr-CXR/faster_rcnn_D_121_FPN_sna.yaml", "configs/lazy/faster_rcnn_D_121_FPN_sna_vindr_cxr.py"),
    ],
)
def test_lazy_vindr_twin_trains_the_yaml_images_normals_included(prepared_vindr, yaml_config, lazy_config):
    coco = json.loads((prepared_vindr / "annotations" / "train.json").read_text())
    boxed = {a["image_id"] for a in coco["annotations"]}
    assert 0 < len(boxed) < len(coco["images"])  # the folder has normal images
    cfg = setup_cfg(ROOT / yaml_config, ["DATASETS.ROOTS.VINDR_CXR", str(prepared_vindr)])
    yaml = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    lazy_cfg = setup_lazy_config(ROOT / lazy_config, [f"datasets.ROOTS.VINDR_CXR={prepared_vindr}"])
    lazy = instantiate(lazy_cfg.dataloader.train.dataset)
    assert sorted(d["image_id"] for d in lazy) == sorted(d["image_id"] for d in yaml)
    assert len(lazy) == len(coco["images"])
