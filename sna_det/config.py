"""The project's config keys (``MODEL.SNA``, ``MODEL.ATTENTION``, ``MODEL.DENSENET``, ``DATASETS.ROOTS``,
``DATASETS.REGISTER``, ``SOLVER.OPTIMIZER``, ``SOLVER.AMP.DTYPE``, ``MODEL.BACKBONE_COMPILE``) and the check
of their values."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from .utils.cli import CommandError

__all__ = ["ConfigError", "add_sna_config", "validate_config"]

RETIRED_KEYS = (
    (
        "MODEL.SNA.STEM",
        "MODEL.ATTENTION.STEM",
        "every attention type is placed by MODEL.ATTENTION: also write MODEL.ATTENTION.TYPE sna",
    ),
    (
        "MODEL.SNA.STAGES",
        "MODEL.ATTENTION.STAGES",
        "every attention type is placed by MODEL.ATTENTION: also write MODEL.ATTENTION.TYPE sna",
    ),
    (
        "MODEL.SNA.MAX_ITERS",
        "MODEL.SNA.SQUARINGS",
        "SNA's power iteration has no stopping test: 2^SQUARINGS steps (default 8 = 256)",
    ),
    (
        "MODEL.SNA.TOL",
        "MODEL.SNA.SQUARINGS",
        "SNA's power iteration has no stopping test: 2^SQUARINGS steps (default 8 = 256)",
    ),
    (
        "MODEL.SNA.VARIANT",
        "MODEL.ATTENTION.TYPE",
        "the authors' block is its own attention type: MODEL.ATTENTION.TYPE sna_authors",
    ),
)
"""(old key, key to write instead, why): the one compatibility place. A config that still sets an old key
stops at the merge with one line naming the new one (CHANGELOG.md lists every rename)."""


class ConfigError(CommandError, ValueError):
    """A config key or value the project cannot use; the message names the key and what it accepts."""


def add_sna_config(cfg: CN) -> None:
    """Add the project's keys (``MODEL.SNA``, ``MODEL.ATTENTION``, ``MODEL.DENSENET``, ``DATASETS.ROOTS``,
    ``SOLVER.OPTIMIZER``), in place."""
    _C = cfg
    # SNA's own options; where SNA goes is MODEL.ATTENTION (TYPE "sna", STEM, STAGES), as for every type.
    _C.MODEL.SNA = CN()
    # Number of singular terms in the attention map: 1 in the paper (its Fig. 4 ablates more).
    _C.MODEL.SNA.RANK = 1
    # "power": batched power iteration (the paper's Algorithm 1); "svd": exact torch.linalg.svd, the
    # reference (its gradient is undefined where singular values repeat, e.g. an all-zero map: train with power).
    _C.MODEL.SNA.MODE = "power"
    # Power iteration by repeated squaring: SQUARINGS squarings of the Gram matrix G of the map's
    # shorter side (normalised by its largest entry before squarings 1, 5, 9, ...; before 1, 3, 5, ...
    # for a side above 8192) make 2^SQUARINGS power steps, a fixed computation (no stopping test) that
    # is the same on every device and in traced/exported/compiled models; the map is then
    # G^(2^SQUARINGS) / trace times M. 8 = 256 steps: the map is within 1e-6 of the SVD's for
    # sigma1/sigma2 >= 1.05 (tools/benchmark_sna.py measures it); 22 CUDA launches per block
    # (23 in bf16), of which each squaring is one and each normalisation two.
    _C.MODEL.SNA.SQUARINGS = 8
    # "softmax_mean1": features times H*W*softmax(map), which averages 1 (the default, chosen on
    # the demo data, see docs/block.md); "softmax": times softmax(map) itself, as written in the paper.
    _C.MODEL.SNA.WEIGHTING = "softmax_mean1"
    # Power-iteration diagnostics while training (tools/train_net.py): every N iterations, the error
    # of the rank-one map against the SVD's and sigma1/sigma2 of each SNA block's channel-mean map are logged to
    # EventStorage (metrics.json, TensorBoard) and <OUTPUT_DIR>/power_iteration.jsonl; 0 = off.
    _C.MODEL.SNA.DIAGNOSTICS_PERIOD = 0

    # Checkpoints (MODEL.WEIGHTS, --resume) are loaded without running code from the file (torch's
    # weights_only; an allowlist for model-zoo .pkl files); True also loads files that need code:
    # only for files you trust.
    _C.MODEL.ALLOW_UNSAFE_WEIGHTS = False
    # Training from MODEL.WEIGHTS (not --resume, --eval-only or export, which need every tensor): the
    # modules (state-key prefixes; "*" for any) whose tensors may have another shape in the file and
    # then start from their initial values. By default the heads whose size is the number of classes,
    # so that weights trained on other classes load (the rest of a mismatch is refused).
    # Missing tensors are allowed when training (e.g. backbone-only weights) and printed in one line.
    _C.MODEL.WEIGHTS_ALLOW_SHAPE_MISMATCH = [
        "roi_heads.box_predictor.cls_score",
        "roi_heads.box_predictor.bbox_pred",
        "roi_heads.mask_head.predictor",
        "roi_heads.keypoint_head.score_lowres",
        "head.cls_score",
    ]

    # Where attention goes, for every type, read by the *_attention_* backbones
    # (build_resnet_attention_fpn_backbone, build_densenet_attention_fpn_backbone, ...; see
    # sna_det/modeling/backbone/attention_backbones.py). SNA's options are in MODEL.SNA.
    _C.MODEL.ATTENTION = CN()
    # One of "none", "sna", "sna_authors", "se", "eca", "nonlocal", "cbam", "gc"
    # (sna_det/layers/attention_factory.py). "sna_authors" is SNA as the authors' public code computes it
    # (sna_det/layers/sna_authors_code.py: channel max, one matrix per mini-batch, 10 power steps from a
    # seeded random start, x + A; MODEL.SNA's keys do not apply), an ablation to train what their
    # Table 4 run used (docs/table4.md).
    _C.MODEL.ATTENTION.TYPE = "none"
    # One block on the stem's output (ResNet: before res2; DenseNet: after pool0).
    _C.MODEL.ATTENTION.STEM = False
    # Stages whose blocks each get one: ResNet "res2".."res5" (on the residual branch, before the
    # addition), DenseNet "dense1".."dense4" (on each dense layer's new features, before concatenation).
    _C.MODEL.ATTENTION.STAGES = []
    # Per-type options (timm.layers' constructor arguments).
    _C.MODEL.ATTENTION.SE = CN({"RD_RATIO": 1.0 / 16})  # SE's reduction (Hu et al.: 16)
    _C.MODEL.ATTENTION.ECA = CN({"KERNEL_SIZE": 0})  # 1-D conv size; 0: adaptive from channels (Wang et al.)
    _C.MODEL.ATTENTION.NONLOCAL = CN({"RD_RATIO": 1.0 / 8})  # embedding channels / channels
    _C.MODEL.ATTENTION.CBAM = CN({"RD_RATIO": 1.0 / 16, "SPATIAL_KERNEL_SIZE": 7})
    _C.MODEL.ATTENTION.GC = CN({"RD_RATIO": 1.0 / 8, "FUSION": "add"})  # "add" (GCNet's default) or "scale"

    # DenseNet backbone (torchvision's architecture) for build_densenet_*_backbone.
    _C.MODEL.DENSENET = CN()
    _C.MODEL.DENSENET.DEPTH = 121  # 121, 161, 169 or 201
    # "dense1".."dense4": outputs of the dense blocks at strides 4, 8, 16, 32 (dense4 after the final norm).
    _C.MODEL.DENSENET.OUT_FEATURES = ["dense1", "dense2", "dense3", "dense4"]
    # "BN" (trains from scratch), "FrozenBN" (with pretrained weights) or "SyncBN".
    _C.MODEL.DENSENET.NORM = "BN"
    # torchvision's gradient checkpointing inside dense blocks: less memory, slower.
    _C.MODEL.DENSENET.MEMORY_EFFICIENT = False

    # The image classifier (MODEL.META_ARCHITECTURE "ImageClassifier", sna_det/modeling/classifier.py;
    # tools/train_classifier.py, docs/classification.md): MODEL.BACKBONE's output IN_FEATURE, averaged over
    # space, then one linear layer with MODEL.ROI_HEADS.NUM_CLASSES outputs, plus "No finding" (1 for an
    # image without boxes) when NO_FINDING; images resized to INPUT_SIZE x INPUT_SIZE (224 in the paper).
    _C.MODEL.CLASSIFIER = CN({"IN_FEATURE": "dense4", "NO_FINDING": False, "INPUT_SIZE": 224, "DROPOUT": 0.0})

    # Dataset folders; "" keeps the default root (datasets/README.md). tools/train_net.py registers the
    # dataset names again below a folder given here.
    _C.DATASETS.ROOTS = CN()
    # coco_2017_{train,val}: <root>/annotations/instances_{train,val}2017.json, <root>/{train,val}2017/.
    _C.DATASETS.ROOTS.COCO = ""
    # voc_2012_coco_*: the --output-dir of datasets/prepare_voc2012_coco.py.
    _C.DATASETS.ROOTS.VOC_2012_COCO = ""
    # vindr_cxr_{train,val,test}: the --output-dir of datasets/prepare_vindr_cxr.py.
    _C.DATASETS.ROOTS.VINDR_CXR = ""
    # Your own COCO-format datasets by name, registered by tools/train_net.py (sna_det/data/datasets/own_coco.py):
    # my_train: {JSON: "data/train.json", IMAGES: "data/images"}, optionally EVALUATOR: "per_class_ap"
    # (default "coco") and EVAL_IOU (its IoU threshold, default 0.5). Then DATASETS.TRAIN: ("my_train",).
    _C.DATASETS.REGISTER = CN(new_allowed=True)

    # The optimizer (sna_det/solver/build.py, through Trainer.build_optimizer in tools/train_net.py):
    # "SGD" (detectron2's, with SOLVER.MOMENTUM / NESTEROV), "ADAM" (torch.optim.Adam, weight decay as
    # L2 in the gradient) or "ADAMW" (decoupled weight decay). BASE_LR, WEIGHT_DECAY(_NORM/_BIAS),
    # BIAS_LR_FACTOR and CLIP_GRADIENTS apply to all three.
    _C.SOLVER.OPTIMIZER = "SGD"
    # Adam / AdamW only: the moving-average coefficients and the denominator's epsilon (torch's defaults).
    _C.SOLVER.BETAS = (0.9, 0.999)
    _C.SOLVER.EPS = 1e-8

    # Mixed precision (SOLVER.AMP.ENABLED, detectron2's key) on any device (sna_det/engine/autocast_trainer.py):
    # the autocast dtype, "bfloat16" or "float16" (gradients scaled); "": float16 on CUDA, bfloat16 on the CPU.
    _C.SOLVER.AMP.DTYPE = ""
    # torch.compile of the backbone where the model is built (Trainer.build_model: training, --eval-only and
    # predictors; sna_det/modeling/backbone_compile.py). MODE: "default", "reduce-overhead" (CUDA graphs,
    # for fixed input sizes), "max-autotune"...; BACKEND: "inductor", or e.g. "aot_eager" to check.
    _C.MODEL.BACKBONE_COMPILE = CN({"ENABLED": False, "MODE": "default", "BACKEND": "inductor"})

    for old, new, why in RETIRED_KEYS:
        _C.register_renamed_key(old, new, why)


def _allowed(key: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} {value!r} is not one of {list(allowed)}")


def _at_least(key: str, value, minimum) -> None:
    if not value >= minimum:
        raise ConfigError(f"{key} {value!r} must be >= {minimum}")


def _check_speed_keys(cfg: CN) -> None:
    """``SOLVER.AMP.DTYPE`` and, when enabled, ``MODEL.BACKBONE_COMPILE``'s mode and backend."""
    from .engine.autocast_trainer import AMP_DTYPES

    _allowed("SOLVER.AMP.DTYPE", cfg.SOLVER.AMP.DTYPE, ("", *AMP_DTYPES))
    if cfg.MODEL.BACKBONE_COMPILE.ENABLED:
        from .modeling.backbone_compile import COMPILE_MODES, compile_backends

        _allowed("MODEL.BACKBONE_COMPILE.MODE", cfg.MODEL.BACKBONE_COMPILE.MODE, COMPILE_MODES)
        _allowed("MODEL.BACKBONE_COMPILE.BACKEND", cfg.MODEL.BACKBONE_COMPILE.BACKEND, compile_backends())


def validate_config(cfg: CN) -> None:
    """Raise ``ConfigError`` naming the first ``MODEL.SNA`` / ``MODEL.ATTENTION`` value that cannot work.

    Checked right after merging (before anything is built or logged): SNA's options, the attention
    type and its options, that the backbone (``MODEL.BACKBONE.NAME``, registered) places attention
    when a type is set, and that the stages are ones its family has.
    """
    from detectron2.modeling import BACKBONE_REGISTRY

    from .layers import ATTENTION_TYPES, MODES, WEIGHTINGS
    from .solver import OPTIMIZERS

    sna, attention = cfg.MODEL.SNA, cfg.MODEL.ATTENTION
    _allowed("MODEL.SNA.MODE", sna.MODE, MODES)
    _allowed("MODEL.SNA.WEIGHTING", sna.WEIGHTING, WEIGHTINGS)
    _at_least("MODEL.SNA.RANK", sna.RANK, 1)
    _at_least("MODEL.SNA.SQUARINGS", sna.SQUARINGS, 0)
    _at_least("MODEL.SNA.DIAGNOSTICS_PERIOD", sna.DIAGNOSTICS_PERIOD, 0)
    _allowed("SOLVER.OPTIMIZER", cfg.SOLVER.OPTIMIZER.upper(), OPTIMIZERS)
    _allowed("MODEL.ATTENTION.TYPE", attention.TYPE, ATTENTION_TYPES)
    _allowed("MODEL.ATTENTION.GC.FUSION", attention.GC.FUSION, ("add", "scale"))
    if cfg.TEST.AUG.ENABLED:  # before a training whose last evaluation would fail
        from .modeling.test_time_augmentation import check_tta_config

        check_tta_config(cfg)
    _check_speed_keys(cfg)

    name = cfg.MODEL.BACKBONE.NAME
    if name not in BACKBONE_REGISTRY:
        registered = sorted(dict(BACKBONE_REGISTRY))
        raise ConfigError(f"MODEL.BACKBONE.NAME {name!r} is not registered; registered: {registered}")
    builder = BACKBONE_REGISTRY.get(name)
    stages = getattr(builder, "attention_stages", None)
    if stages is None:
        if attention.TYPE != "none":
            placing = sorted(n for n, b in BACKBONE_REGISTRY if hasattr(b, "attention_stages"))
            raise ConfigError(
                f"MODEL.ATTENTION.TYPE {attention.TYPE!r} needs a backbone that places attention, and "
                f"MODEL.BACKBONE.NAME {name!r} does not; one of {placing}"
            )
        return
    if not isinstance(attention.STAGES, (list, tuple)):
        raise ConfigError(
            f"MODEL.ATTENTION.STAGES {attention.STAGES!r} is not a list of stage names; {name!r} has {list(stages)}"
        )
    unknown = [stage for stage in attention.STAGES if stage not in stages]
    if unknown:
        raise ConfigError(f"MODEL.ATTENTION.STAGES {unknown} are not stages of {name!r}: it has {list(stages)}")
