# Table 4's DenseNet-121 row with SNA as a LazyConfig (configs/VinDr-CXR/faster_rcnn_D_121_FPN_sna.yaml):
# the Table 4 recipe (faster_rcnn_R_18_FPN_sna_vindr_cxr.py) with a DenseNet-121-FPN from scratch, SNA
# after the stem and on the new features of every dense layer. Sampling: TrainingSampler, no class
# balancing (as the YAML configs).
#   python tools/train_net.py --config-file configs/lazy/faster_rcnn_D_121_FPN_sna_vindr_cxr.py \
#       datasets.ROOTS.VINDR_CXR=/path/to/prepared
from detectron2.config import LazyCall as L
from detectron2.modeling.backbone import FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from sna_det.modeling import DENSENET_STAGES, DenseNetBackbone, add_attention

from .faster_rcnn_R_18_FPN_sna_vindr_cxr import dataloader, datasets, lr_multiplier, model, optimizer, train  # noqa: F401

model.backbone = L(add_attention)(
    backbone=L(FPN)(
        bottom_up=L(DenseNetBackbone)(depth=121, out_features=list(DENSENET_STAGES), norm="BN"),
        in_features="${.bottom_up.out_features}",
        out_channels=256,
        top_block=L(LastLevelMaxPool)(),
    ),
    attention="sna",
    stem=True,
    stages=list(DENSENET_STAGES),
)
train.output_dir = "output/lazy/faster_rcnn_D_121_FPN_sna_vindr_cxr"
