"""The project's config keys and the check of their values.

Every key the project adds to detectron2's is written once, in ``add_sna_config``, with its default
and a comment saying what it takes; the docs link here instead of listing them."""

from __future__ import annotations

from functools import reduce
from typing import Dict, Iterator

from detectron2.config import CfgNode as CN

from .layers.attention_factory import ATTENTION_TABLE
from .utils.config_values import ConfigValue, closest_names
from .utils.errors import ConfigError

__all__ = [
    "CONFIG_VALUES",
    "ConfigError",
    "add_sna_config",
    "check_batch_per_process",
    "check_sizes",
    "check_value",
    "closest_config_keys",
    "config_values",
    "validate_config",
]

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


def _node(cfg: CN, path: str) -> CN:
    """The node at dotted ``path`` below ``cfg`` ("MODEL.ATTENTION.SE"), made empty where absent."""
    for name in path.split("."):
        if name not in cfg:
            cfg[name] = CN()
        cfg = cfg[name]
    return cfg


def add_sna_config(cfg: CN) -> None:
    """Add every key of the project to ``cfg`` (detectron2's defaults), in place: each below, beside its
    default, with what it takes."""
    _C = cfg
    # Every attention type's options (MODEL.SNA: RANK, MODE, SQUARINGS, WEIGHTING; MODEL.ATTENTION.SE,
    # .ECA, .NONLOCAL, .CBAM, .GC), their defaults and what they may be: sna_det/layers/attention_factory.py's
    # ATTENTION_TABLE, one row per type. Where a type goes is MODEL.ATTENTION (TYPE, STEM, STAGES), below.
    _C.MODEL.SNA = CN()
    _C.MODEL.ATTENTION = CN()
    for row in ATTENTION_TABLE.values():
        if row.node:
            _node(_C, row.node).update({option.key: option.default for option in row.options})
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
    # sna_det/modeling/backbone/attention_backbones.py).
    # One of sna_det.layers.ATTENTION_TYPES (the rows of ATTENTION_TABLE; docs/attention.md lists them).
    _C.MODEL.ATTENTION.TYPE = "none"
    # One block on the stem's output (ResNet: before res2; DenseNet: after pool0).
    _C.MODEL.ATTENTION.STEM = False
    # Stages whose blocks each get one: ResNet "res2".."res5" (on the residual branch, before the
    # addition), DenseNet "dense1".."dense4" (on each dense layer's new features, before concatenation).
    _C.MODEL.ATTENTION.STAGES = []

    # DenseNet backbone (torchvision's architecture) for build_densenet_*_backbone.
    _C.MODEL.DENSENET = CN()
    _C.MODEL.DENSENET.DEPTH = 121  # 121, 161, 169 or 201
    # "dense1".."dense4": outputs of the dense blocks at strides 4, 8, 16, 32 (dense4 after the final norm).
    _C.MODEL.DENSENET.OUT_FEATURES = ["dense1", "dense2", "dense3", "dense4"]
    # "BN" (trains from scratch), "FrozenBN" (with pretrained weights) or "SyncBN".
    _C.MODEL.DENSENET.NORM = "BN"
    # torchvision's gradient checkpointing inside dense blocks: less memory, slower.
    _C.MODEL.DENSENET.MEMORY_EFFICIENT = False

    # How a DICOM or a grayscale image of more than 8 bits becomes the network's 8-bit input, in
    # predict, the analysis tools and export (sna_det/data/images.py; the preparer's --intensity):
    # MODE "file": the file's own window (a DICOM's VOI LUT / WindowCenter, WindowWidth), then min..max;
    # "window": WINDOW [center, width] (DICOM's LINEAR window on the modality values); "percentile":
    # PERCENTILES [low, high] percent of the image's values onto 0..255. CLAHE: then opencv's CLAHE
    # (CLAHE_CLIP clip limit, CLAHE_TILES x CLAHE_TILES tiles). 8-bit images are used as they are.
    _C.INPUT.INTENSITY = CN()
    _C.INPUT.INTENSITY.MODE = "file"
    _C.INPUT.INTENSITY.WINDOW = []
    _C.INPUT.INTENSITY.PERCENTILES = [0.5, 99.5]
    _C.INPUT.INTENSITY.CLAHE = False
    _C.INPUT.INTENSITY.CLAHE_CLIP = 2.0
    _C.INPUT.INTENSITY.CLAHE_TILES = 8
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


POSITIVE_INT, COUNT, FRACTION = ConfigValue("int", 1), ConfigValue("int", 0), ConfigValue("float", 0, maximum=1)
CONFIG_VALUES: Dict[str, ConfigValue] = {
    "SOLVER.BASE_LR": ConfigValue("float", 0, above=True),
    "SOLVER.MAX_ITER": POSITIVE_INT,
    "SOLVER.IMS_PER_BATCH": POSITIVE_INT,
    "SOLVER.WARMUP_ITERS": COUNT,
    "SOLVER.WARMUP_FACTOR": FRACTION,
    "SOLVER.GAMMA": ConfigValue("float", 0, above=True),
    "SOLVER.MOMENTUM": FRACTION,
    "SOLVER.WEIGHT_DECAY": ConfigValue("float", 0),
    "SOLVER.CHECKPOINT_PERIOD": POSITIVE_INT,
    "SOLVER.EPS": ConfigValue("float", 0, above=True),
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": ConfigValue("float", 0, above=True),
    "DATALOADER.NUM_WORKERS": COUNT,
    "INPUT.MIN_SIZE_TRAIN": ConfigValue("sizes", 1),
    "INPUT.MAX_SIZE_TRAIN": POSITIVE_INT,
    "INPUT.MIN_SIZE_TEST": COUNT,  # 0: no resizing (detectron2)
    "INPUT.MAX_SIZE_TEST": POSITIVE_INT,
    "MODEL.ROI_HEADS.NUM_CLASSES": POSITIVE_INT,
    "MODEL.RETINANET.NUM_CLASSES": POSITIVE_INT,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": POSITIVE_INT,
    "MODEL.ROI_HEADS.POSITIVE_FRACTION": FRACTION,
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": FRACTION,
    "MODEL.ROI_HEADS.NMS_THRESH_TEST": FRACTION,
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE": POSITIVE_INT,
    "TEST.DETECTIONS_PER_IMAGE": POSITIVE_INT,
    "TEST.EVAL_PERIOD": COUNT,
    "MODEL.SNA.DIAGNOSTICS_PERIOD": COUNT,
    "MODEL.ATTENTION.STEM": ConfigValue("bool"),
    "MODEL.DENSENET.DEPTH": ConfigValue("int", choices=(121, 161, 169, 201)),
}
"""The config values the project reads that can be out of range, besides the attention table's: key -> what
it may be (``config_values`` adds MODEL.ATTENTION.TYPE and every type's options)."""


def config_values() -> Dict[str, ConfigValue]:
    """Every checked config value: ``CONFIG_VALUES`` and, from ``ATTENTION_TABLE``, MODEL.ATTENTION.TYPE and
    each type's options. Checked by ``validate_config`` for YAML files and command-line overrides, and by
    the LazyConfig set-up (``sna_det.engine.lazy_config.LAZY_KEYS``), so both refuse the same mistakes."""
    options = {f"{row.node}.{o.key}": o.value for row in ATTENTION_TABLE.values() for o in row.options}
    return {**CONFIG_VALUES, "MODEL.ATTENTION.TYPE": ConfigValue("str", choices=tuple(ATTENTION_TABLE)), **options}


def _flat_keys(node: CN, prefix: str = "") -> Iterator[str]:
    for name, value in node.items():
        if isinstance(value, CN):
            yield from _flat_keys(value, f"{prefix}{name}.")
        else:
            yield prefix + name


def closest_config_keys(cfg: CN, key: str) -> str:
    """ " (did you mean 'SOLVER.BASE_LR'?)" for an unknown dotted ``key``: the closest keys of ``cfg`` (difflib)."""
    return closest_names(key, _flat_keys(cfg))


def check_value(key: str, value, spec: ConfigValue, *, named: str = "") -> None:
    """``ConfigError`` "<key> <value> must be <what spec accepts>" (``named``: the YAML key, when ``key``
    is a LazyConfig's) unless ``spec`` accepts ``value``."""
    problem = spec.problem(value)
    if problem is not None:
        verb = "is not" if spec.choices is not None else "must be"
        raise ConfigError(f"{key} {value!r} {verb} {problem}" + (f" ({named} of a YAML config)" if named else ""))


def check_sizes(key_min: str, min_sizes, key_max: str, max_size) -> None:
    """``ConfigError`` unless every shorter-side size is at most the longer-side limit (MIN_SIZE <= MAX_SIZE)."""
    sizes = min_sizes if isinstance(min_sizes, (list, tuple)) else [min_sizes]
    if max(sizes) > max_size:
        raise ConfigError(f"{key_min} {tuple(sizes)} exceeds {key_max} {max_size}: a shorter side must be <= it")


def check_batch_per_process(key: str, batch_size: int, processes: int) -> None:
    """``ConfigError`` unless ``batch_size`` (images per step over all processes) divides among ``processes``."""
    if processes > 0 and batch_size % processes:
        raise ConfigError(
            f"{key} {batch_size} is not divisible by the {processes} processes (--num-gpus x --num-machines): "
            f"each takes the same number of images; e.g. {key} {max(1, batch_size // processes) * processes}"
        )


def _allowed(key: str, value, allowed) -> None:
    check_value(key, value, ConfigValue("str", choices=tuple(allowed)))


def _check_speed_keys(cfg: CN) -> None:
    """``SOLVER.AMP.DTYPE`` and, when enabled, ``MODEL.BACKBONE_COMPILE``'s mode and backend."""
    from .solver.amp import AMP_DTYPES

    _allowed("SOLVER.AMP.DTYPE", cfg.SOLVER.AMP.DTYPE, ("", *AMP_DTYPES))
    if cfg.MODEL.BACKBONE_COMPILE.ENABLED:
        from .modeling.backbone_compile import COMPILE_MODES, compile_backends

        _allowed("MODEL.BACKBONE_COMPILE.MODE", cfg.MODEL.BACKBONE_COMPILE.MODE, COMPILE_MODES)
        _allowed("MODEL.BACKBONE_COMPILE.BACKEND", cfg.MODEL.BACKBONE_COMPILE.BACKEND, compile_backends())


def validate_config(cfg: CN) -> None:
    """Raise ``ConfigError`` naming the first value that cannot work.

    Checked right after merging (before anything is built or logged): every value of ``config_values()``
    (the attention types' options among them), MIN_SIZE <= MAX_SIZE, the speed keys, and that the
    backbone (``MODEL.BACKBONE.NAME``, registered) places attention when a type is set, with stages of its family.
    """
    from detectron2.modeling import BACKBONE_REGISTRY

    from .solver import OPTIMIZERS

    attention = cfg.MODEL.ATTENTION
    # The image classifier resizes in the model (MODEL.CLASSIFIER.INPUT_SIZE): MIN_SIZE_TRAIN (0,) is its
    # "no resizing by the mapper", as MIN_SIZE_TEST 0 is detectron2's.
    unresized = cfg.MODEL.META_ARCHITECTURE == "ImageClassifier" and tuple(cfg.INPUT.MIN_SIZE_TRAIN) == (0,)
    for key, spec in config_values().items():
        if not (unresized and key == "INPUT.MIN_SIZE_TRAIN"):
            check_value(key, reduce(getattr, key.split("."), cfg), spec)
    if not unresized:
        check_sizes("INPUT.MIN_SIZE_TRAIN", cfg.INPUT.MIN_SIZE_TRAIN, "INPUT.MAX_SIZE_TRAIN", cfg.INPUT.MAX_SIZE_TRAIN)
    check_sizes("INPUT.MIN_SIZE_TEST", cfg.INPUT.MIN_SIZE_TEST, "INPUT.MAX_SIZE_TEST", cfg.INPUT.MAX_SIZE_TEST)
    _allowed("SOLVER.OPTIMIZER", cfg.SOLVER.OPTIMIZER.upper(), OPTIMIZERS)
    if cfg.TEST.AUG.ENABLED:  # before a training whose last evaluation would fail
        from .modeling.test_time_augmentation import check_tta_config

        check_tta_config(cfg)
    _check_speed_keys(cfg)
    try:  # INPUT.INTENSITY: its values as the image reader takes them
        from .data.images import Intensity

        Intensity.from_node(cfg.INPUT.INTENSITY)
    except (ValueError, TypeError) as error:
        raise ConfigError(str(error)) from None

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
