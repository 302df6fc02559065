"""Speed switches with SNA: SOLVER.AMP (bf16 autocast on the CPU through the Trainer) and
MODEL.BACKBONE_COMPILE (torch.compile of the backbone, here with the cheap "aot_eager" backend)."""

import math
from pathlib import Path

import pytest
import torch
from detectron2.engine import AMPTrainer
from detectron2.modeling import build_model
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage

from sna_det.config import ConfigError
from sna_det.engine import Trainer, setup_cfg
from sna_det.engine.autocast_trainer import AutocastTrainer, amp_dtype
from sna_det.layers import SpectralNormAttention

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_sna_demo.yaml"
TINY = [
    *("MODEL.DEVICE cpu SOLVER.IMS_PER_BATCH 2 SOLVER.WARMUP_ITERS 1 DATALOADER.NUM_WORKERS 0".split()),
    *("INPUT.MIN_SIZE_TRAIN (64,) INPUT.MAX_SIZE_TRAIN 64 INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 64".split()),
    *("MODEL.FPN.OUT_CHANNELS 16 MODEL.RPN.POST_NMS_TOPK_TRAIN 32 MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE 16".split()),
    *("MODEL.ROI_BOX_HEAD.FC_DIM 32 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0".split()),
]
COMPILE_AOT_EAGER = ["MODEL.BACKBONE_COMPILE.ENABLED", "True", "MODEL.BACKBONE_COMPILE.BACKEND", "aot_eager"]
TABLE4 = ["MODEL.ATTENTION.STAGES", '["res2","res3","res4","res5"]']  # SNA after the stem and in every block


@pytest.fixture(autouse=True)
def _demo_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SNA_DET_CACHE", str(tmp_path_factory.getbasetemp() / "demo_cache"))


def _train(cfg, iterations):
    """Trainer(cfg) run for ``iterations`` steps; (trainer, [total loss of each step])."""
    trainer = Trainer(cfg)
    losses = []
    with EventStorage(0) as storage:
        for trainer.iter in range(iterations):
            storage.iter = trainer.iter
            trainer.run_step()
            losses.append(storage.history("total_loss").latest())
    return trainer, losses


def test_amp_dtype_follows_the_device_unless_named():
    assert amp_dtype("", "cuda") == torch.float16 and amp_dtype("", "cpu") == torch.bfloat16
    assert amp_dtype("float16", "cpu") == torch.float16 and amp_dtype("bfloat16", "cuda") == torch.bfloat16
    with pytest.raises(ConfigError, match="SOLVER.AMP.DTYPE 'fp8'"):
        setup_cfg(DEMO, [*TINY, "SOLVER.AMP.DTYPE", "fp8"])


def test_detectron2_amp_trainer_needs_cuda_and_ours_trains_sna_in_bf16_on_the_cpu(tmp_path, monkeypatch):
    """What SOLVER.AMP.ENABLED did on the CPU (detectron2's AMPTrainer asserts CUDA), then one bf16
    autocast step of the SNA demo detector with Table 4's placement: the features reaching SNA are
    bf16, its power iteration runs on float32 with autocast off, the loss is finite, float32 weights move."""
    if not torch.cuda.is_available():
        with pytest.raises(AssertionError, match="CUDA is required"):
            AMPTrainer(torch.nn.Linear(1, 1), [], torch.optim.SGD([torch.zeros(1)], lr=0.1)).run_step()
    seen = []
    low_rank_map = SpectralNormAttention.low_rank_map

    def recording(self, m):
        seen.append((m.dtype, torch.is_autocast_enabled("cpu")))
        return low_rank_map(self, m)

    inputs = []
    monkeypatch.setattr(SpectralNormAttention, "low_rank_map", recording)
    cfg = setup_cfg(DEMO, [*TINY, *TABLE4, "SOLVER.AMP.ENABLED", "True", "OUTPUT_DIR", str(tmp_path)])
    trainer = Trainer(cfg)
    step = trainer._trainer
    assert isinstance(step, AutocastTrainer) and step.precision == torch.bfloat16 and step.device_type == "cpu"
    assert not step.grad_scaler.is_enabled()  # bf16 has float32's range: nothing to scale
    blocks = [m for m in trainer.model.modules() if isinstance(m, SpectralNormAttention)]
    assert len(blocks) == 9  # stem + 8 residual blocks
    for block in blocks:
        block.register_forward_pre_hook(lambda module, args: inputs.append(args[0].dtype))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with EventStorage(0) as storage:
        for trainer.iter in range(1):
            storage.iter = trainer.iter
            step.run_step()
            assert torch.isfinite(torch.tensor(storage.history("total_loss").latest()))
    assert len(seen) == 9 and set(seen) == {(torch.float32, False)}
    # the stem's output comes from a bf16 conv, so SNA really ran inside autocast
    assert torch.bfloat16 in inputs
    after = dict(trainer.model.named_parameters())
    assert all(p.dtype == torch.float32 for p in after.values())
    moved = [n for n, p in after.items() if not torch.equal(p.detach(), before[n])]
    assert len(moved) > len(after) // 2


def _batch(cfg, n=2):
    data = iter(Trainer.build_test_loader(cfg, cfg.DATASETS.TEST[0]))
    return [next(data)[0] for _ in range(n)]


def test_compiled_backbone_matches_eager_for_inference(tmp_path):
    """MODEL.BACKBONE_COMPILE with aot_eager: Trainer.build_model (what training, --eval-only and a
    predictor use) compiles the backbone in place, so state_dict keys (checkpoints) are the eager
    model's; backbone features and detections equal the eager model's with the same weights."""
    import torch._dynamo

    opts = [*TINY, "OUTPUT_DIR", str(tmp_path)]
    eager = build_model(setup_cfg(DEMO, opts)).eval()
    cfg = setup_cfg(DEMO, [*opts, *COMPILE_AOT_EAGER])
    compiled = Trainer.build_model(cfg).eval()
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())
    batch = _batch(cfg)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        images = eager.preprocess_image(batch).tensor
        expected, got = eager.backbone(images), compiled.backbone(images)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)
        for want, have in zip(eager(batch), compiled(batch)):
            a, b = want["instances"], have["instances"]
            assert len(a) == len(b) > 0
            torch.testing.assert_close(b.pred_boxes.tensor, a.pred_boxes.tensor, rtol=1e-4, atol=1e-3)
            torch.testing.assert_close(b.scores, a.scores, rtol=1e-4, atol=1e-4)


def test_compiled_backbone_trains_as_eager(tmp_path):
    """A training step through the Trainer with the backbone compiled (aot_eager: forward and backward
    graphs) gives the eager run's losses and updated weights: same seed, same data, same gradients."""
    opts = [*TINY, "SEED", "3", "OUTPUT_DIR", str(tmp_path)]
    runs = []
    for extra in ([], COMPILE_AOT_EAGER):
        seed_all_rng(3)  # numpy too: the training sampler's seed comes from it
        trainer, losses = _train(setup_cfg(DEMO, [*opts, *extra]), 1)
        runs.append((losses, {n: p.detach() for n, p in trainer.model.named_parameters()}))
    (eager_losses, eager_weights), (losses, weights) = runs
    assert trainer.model.backbone._compiled_call_impl is not None
    assert all(map(math.isfinite, eager_losses))
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(eager_losses), rtol=1e-4, atol=1e-5)
    assert list(weights) == list(eager_weights)
    for name, weight in weights.items():
        torch.testing.assert_close(weight, eager_weights[name], rtol=1e-4, atol=1e-5, msg=name)


def test_compile_keys_are_checked():
    with pytest.raises(ConfigError, match="MODEL.BACKBONE_COMPILE.MODE 'fast'"):
        setup_cfg(DEMO, [*TINY, "MODEL.BACKBONE_COMPILE.ENABLED", "True", "MODEL.BACKBONE_COMPILE.MODE", "fast"])
    with pytest.raises(ConfigError, match="MODEL.BACKBONE_COMPILE.BACKEND 'nope'"):
        setup_cfg(DEMO, [*TINY, "MODEL.BACKBONE_COMPILE.ENABLED", "True", "MODEL.BACKBONE_COMPILE.BACKEND", "nope"])
