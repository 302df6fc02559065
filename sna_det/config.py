"""The project's config keys: ``MODEL.SNA``, ``MODEL.ATTENTION``, ``MODEL.DENSENET``, ``DATASETS.ROOTS``
and ``SOLVER.OPTIMIZER``."""

from detectron2.config import CfgNode as CN


def add_sna_config(cfg: CN) -> None:
    """Add the project's keys (``MODEL.SNA``, ``MODEL.ATTENTION``, ``MODEL.DENSENET``, ``DATASETS.ROOTS``,
    ``SOLVER.OPTIMIZER``), in place."""
    _C = cfg
    _C.MODEL.SNA = CN()
    # SNA on the stem's output, before res2 (the paper's placement on every dataset).
    _C.MODEL.SNA.STEM = True
    # Residual stages whose blocks get SNA on the residual branch, after its last conv + norm and
    # before the addition; any of "res2", "res3", "res4", "res5" (the paper does all four on VinDr-CXR).
    _C.MODEL.SNA.STAGES = []
    # Number of singular terms in the attention map: 1 in the paper (its Fig. 4 ablates more).
    _C.MODEL.SNA.RANK = 1
    # "power": batched power iteration (the paper's Algorithm 1); "svd": exact torch.linalg.svd, the
    # reference (its gradient is undefined where singular values repeat, e.g. an all-zero map: train with power).
    _C.MODEL.SNA.MODE = "power"
    # Cap on power-iteration steps per singular term.
    _C.MODEL.SNA.MAX_ITERS = 20
    # An image has converged when the cosine between successive vectors exceeds 1 - TOL.
    _C.MODEL.SNA.TOL = 1e-4
    # "softmax_mean1": features times H*W*softmax(map), which averages 1 (the default, chosen on
    # the demo data, see README); "softmax": times softmax(map) itself, as written in the paper.
    _C.MODEL.SNA.WEIGHTING = "softmax_mean1"
    # Power-iteration diagnostics while training (tools/train_net.py): every N iterations, the
    # iterations to converge and sigma1/sigma2 of each SNA block's channel-mean map are logged to
    # EventStorage (metrics.json, TensorBoard) and <OUTPUT_DIR>/power_iteration.jsonl; 0 = off.
    _C.MODEL.SNA.DIAGNOSTICS_PERIOD = 0
    # Which SNA the "sna" attention type builds: "paper" (the block the paper describes,
    # sna_det/layers/spectral_norm_attention.py, with the keys above) or "authors_code" (what the
    # authors' public code computes, sna_det/layers/sna_authors_code.py: channel max, one matrix per
    # mini-batch, 10 power steps from a seeded random start, x + A; RANK/MODE/MAX_ITERS/TOL/WEIGHTING
    # do not apply). An ablation, to train what their Table 4 run used (README, "Table 4 as measured").
    _C.MODEL.SNA.VARIANT = "paper"

    # Checkpoints (MODEL.WEIGHTS, --resume) are loaded without running code from the file (torch's
    # weights_only; an allowlist for model-zoo .pkl files); True also loads files that need code:
    # only for files you trust.
    _C.MODEL.ALLOW_UNSAFE_WEIGHTS = False

    # Attention blocks of any type for the *_attention_* backbones (build_resnet_attention_fpn_backbone,
    # build_densenet_attention_fpn_backbone, ...), placed by the same mechanism as SNA. The *_sna_*
    # backbones keep reading MODEL.SNA.STEM / STAGES (type "sna"); both take SNA's options from MODEL.SNA.
    _C.MODEL.ATTENTION = CN()
    # One of "none", "sna", "se", "eca", "nonlocal", "cbam", "gc" (sna_det/layers/attention_factory.py).
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

    # Dataset folders; "" keeps the default root (datasets/README.md). tools/train_net.py registers the
    # dataset names again below a folder given here.
    _C.DATASETS.ROOTS = CN()
    # coco_2017_{train,val}: <root>/annotations/instances_{train,val}2017.json, <root>/{train,val}2017/.
    _C.DATASETS.ROOTS.COCO = ""
    # voc_2012_coco_*: the --output-dir of datasets/prepare_voc2012_coco.py.
    _C.DATASETS.ROOTS.VOC_2012_COCO = ""
    # vindr_cxr_{train,val,test}: the --output-dir of datasets/prepare_vindr_cxr.py.
    _C.DATASETS.ROOTS.VINDR_CXR = ""

    # The optimizer (sna_det/solver/build.py, through Trainer.build_optimizer in tools/train_net.py):
    # "SGD" (detectron2's, with SOLVER.MOMENTUM / NESTEROV), "ADAM" (torch.optim.Adam, weight decay as
    # L2 in the gradient) or "ADAMW" (decoupled weight decay). BASE_LR, WEIGHT_DECAY(_NORM/_BIAS),
    # BIAS_LR_FACTOR and CLIP_GRADIENTS apply to all three.
    _C.SOLVER.OPTIMIZER = "SGD"
    # Adam / AdamW only: the moving-average coefficients and the denominator's epsilon (torch's defaults).
    _C.SOLVER.BETAS = (0.9, 0.999)
    _C.SOLVER.EPS = 1e-8
