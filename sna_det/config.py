"""The project's config keys: ``MODEL.SNA`` and ``DATASETS.ROOTS``."""

from detectron2.config import CfgNode as CN


def add_sna_config(cfg: CN) -> None:
    """Add ``MODEL.SNA`` (Spectral Norm Attention) and ``DATASETS.ROOTS`` to a detectron2 config, in place."""
    _C = cfg
    _C.MODEL.SNA = CN()
    # SNA on the stem's output, before res2 (the paper's placement on every dataset).
    _C.MODEL.SNA.STEM = True
    # Residual stages whose blocks get SNA on the residual branch, after its last conv + norm and
    # before the addition; any of "res2", "res3", "res4", "res5" (the paper does all four on VinDr-CXR).
    _C.MODEL.SNA.STAGES = []
    # Number of singular terms in the attention map: 1 in the paper (its Fig. 4 ablates more).
    _C.MODEL.SNA.RANK = 1
    # "power": batched power iteration (the paper's Algorithm 1); "svd": exact torch.linalg.svd.
    _C.MODEL.SNA.MODE = "power"
    # Cap on power-iteration steps per singular term.
    _C.MODEL.SNA.MAX_ITERS = 20
    # An image has converged when the cosine between successive vectors exceeds 1 - TOL.
    _C.MODEL.SNA.TOL = 1e-4
    # "softmax_mean1": features times H*W*softmax(map), which averages 1 (the default, chosen on
    # the demo data, see README); "softmax": times softmax(map) itself, as written in the paper.
    _C.MODEL.SNA.WEIGHTING = "softmax_mean1"

    # Dataset folders; "" keeps the default root (datasets/README.md). tools/train_net.py registers the
    # dataset names again below a folder given here.
    _C.DATASETS.ROOTS = CN()
    # coco_2017_{train,val}: <root>/annotations/instances_{train,val}2017.json, <root>/{train,val}2017/.
    _C.DATASETS.ROOTS.COCO = ""
    # voc_2012_coco_*: the --output-dir of datasets/prepare_voc2012_coco.py.
    _C.DATASETS.ROOTS.VOC_2012_COCO = ""
    # vindr_cxr_{train,val,test}: the --output-dir of datasets/prepare_vindr_cxr.py.
    _C.DATASETS.ROOTS.VINDR_CXR = ""
