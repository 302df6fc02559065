"""Weights that do not fit the model are refused where a model is used as it is (evaluation, export,
prediction, resume) and reported by module where training starts from them; the counts are checked
against the two state dicts compared directly."""

import importlib.util
from pathlib import Path

import pytest
import torch
from detectron2.modeling import build_model

from sna_det.engine import CheckpointError, SafeCheckpointer, WeightsMismatchError, load_weights_strict, setup_cfg
from sna_det.engine.weights_report import module_groups

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
R50 = ["MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.RES2_OUT_CHANNELS", "256"]


def model_of(*opts):
    torch.manual_seed(1)
    return build_model(setup_cfg(DEMO, ["MODEL.DEVICE", "cpu", *opts]))


@pytest.fixture(scope="module")
def demo_weights(tmp_path_factory):
    """A checkpoint of the demo's R18 model, as training saves it ({"model": state_dict, ...})."""
    path = tmp_path_factory.mktemp("weights") / "model_final.pth"
    torch.manual_seed(0)
    torch.save({"model": model_of().state_dict(), "iteration": 3}, path)
    return path


def expected_counts(model, path):
    """(loaded, total, missing, of another shape), from the state dicts themselves."""
    mine = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    theirs = torch.load(path, weights_only=True)["model"]
    missing = [k for k in mine if k not in theirs]
    shape = [k for k in mine if k in theirs and theirs[k].shape != mine[k].shape]
    return len(mine) - len(missing) - len(shape), len(mine), len(missing), len(shape)


def test_weights_of_another_depth_are_refused_with_counts_and_modules(demo_weights):
    model = model_of(*R50)
    loaded, total, missing, shape = expected_counts(model, demo_weights)
    assert missing and shape
    with pytest.raises(WeightsMismatchError) as error:
        load_weights_strict(model, str(demo_weights))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{demo_weights}: loaded {loaded} of {total} model tensors")
    assert f"{missing} not in the file (backbone.bottom_up.res2" in message
    assert f"{shape} of another shape (backbone.fpn_lateral2" in message
    assert "does not fit this model" in message


def test_the_same_architecture_loads_every_tensor(demo_weights):
    model = model_of()
    report = load_weights_strict(model, str(demo_weights))
    assert (
        report.complete
        and report.describe() == f"{demo_weights}: loaded {report.total} of {report.total} model tensors"
    )
    saved = torch.load(demo_weights, weights_only=True)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_training_allows_a_new_head_for_other_classes_and_says_so(demo_weights):
    model = model_of("MODEL.ROI_HEADS.NUM_CLASSES", "7")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = setup_cfg(DEMO, ["MODEL.DEVICE", "cpu"])
    checkpointer = SafeCheckpointer(model, allow_shape_mismatch=cfg.MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH)
    checkpointer.load(str(demo_weights), checkpointables=[])
    report = checkpointer.last_report
    assert [k for k, _, _ in report.shape] == [
        f"roi_heads.box_predictor.{name}"
        for name in ("cls_score.weight", "cls_score.bias", "bbox_pred.weight", "bbox_pred.bias")
    ]
    assert (
        "4 of another shape (roi_heads.box_predictor; e.g. roi_heads.box_predictor.cls_score.weight [5, 256]"
        in report.describe()
    )
    saved = torch.load(demo_weights, weights_only=True)["model"]
    for key, value in model.state_dict().items():
        expected = initial[key] if key.startswith("roi_heads.box_predictor.") else saved[key]
        assert torch.equal(value, expected), key
    with pytest.raises(WeightsMismatchError, match="roi_heads.box_predictor"):
        load_weights_strict(model_of("MODEL.ROI_HEADS.NUM_CLASSES", "7"), str(demo_weights))


def test_training_refuses_other_shapes_unless_allowed(demo_weights):
    with pytest.raises(
        WeightsMismatchError, match="refused, 27 of another shape outside MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH"
    ):
        SafeCheckpointer(model_of(*R50), allow_shape_mismatch=["roi_heads.box_predictor"]).load(str(demo_weights))
    checkpointer = SafeCheckpointer(model_of(*R50), allow_shape_mismatch=["*"])
    checkpointer.load(str(demo_weights))
    assert len(checkpointer.last_report.shape) == 27


def test_resuming_from_a_checkpoint_of_another_model_is_refused(demo_weights, tmp_path):
    (tmp_path / "model_0000003.pth").write_bytes(demo_weights.read_bytes())
    (tmp_path / "last_checkpoint").write_text("model_0000003.pth")
    checkpointer = SafeCheckpointer(
        model_of("MODEL.ROI_HEADS.NUM_CLASSES", "7"), str(tmp_path), allow_shape_mismatch=["*"]
    )
    with pytest.raises(WeightsMismatchError, match="model_0000003.pth: loaded 126 of 130"):
        checkpointer.resume_or_load("", resume=True)


def test_module_groups_name_the_highest_module_wholly_concerned():
    keys = ["a.b.w", "a.b.bias", "a.c.w", "d.e.f.g.w", "d.e.f.g.b", "d.e.f.h.w"]
    assert module_groups(["a.b.w", "a.b.bias"], keys) == ["a.b"]
    assert module_groups(["a.b.w", "a.b.bias", "a.c.w"], keys) == ["a"]
    assert module_groups(["a.b.w"], keys) == ["a.b"]
    assert module_groups(["d.e.f.g.w", "d.e.f.g.b"], keys) == ["d.e.f"]  # cut at 3 names


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_refuses_weights_of_another_model(demo_weights, tmp_path):
    """The issue's case: the demo's checkpoint exported with the VinDr-CXR R18 config (other FPN, RPN, head sizes)."""
    tool = load_tool("export_model")
    config = ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN_sna.yaml"
    with pytest.raises(CheckpointError, match=f"^{demo_weights}: loaded .* does not fit this model"):
        tool.main(
            tool.parse_args(
                ["--config-file", str(config), "--output", str(tmp_path), "MODEL.WEIGHTS", str(demo_weights)]
            )
        )
    text = tmp_path / "weights.txt"
    text.write_text("not weights\n")
    with pytest.raises(CheckpointError, match=f"^{text}: not a readable checkpoint"):
        tool.main(tool.parse_args(["--config-file", str(DEMO), "--output", str(tmp_path), "MODEL.WEIGHTS", str(text)]))
    assert not any(tmp_path.glob("model.*"))


def test_eval_only_refuses_weights_of_another_depth(demo_weights, tmp_path):
    tool = load_tool("train_net")
    args = tool.parse_args(
        [
            "--config-file",
            str(DEMO),
            "--eval-only",
            "MODEL.WEIGHTS",
            str(demo_weights),
            *R50,
            "OUTPUT_DIR",
            str(tmp_path),
        ]
    )
    with pytest.raises(CheckpointError, match=f"^{demo_weights}: loaded 103 of 295 model tensors.*does not fit"):
        tool.run(args)
    assert list(tmp_path.iterdir()) == [], "nothing written before the refusal"


def test_visualize_attention_refuses_weights_of_another_model(demo_weights, tmp_path):
    from sna_det.analysis.attention_report import visualize_attention

    cfg = setup_cfg(DEMO, ["MODEL.DEVICE", "cpu", *R50, "MODEL.WEIGHTS", str(demo_weights)])
    with pytest.raises(WeightsMismatchError, match=f"^{demo_weights}: loaded 103 of 295"):
        visualize_attention(cfg, [], tmp_path)
