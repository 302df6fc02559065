# Faster R-CNN with attention in its ResNet-FPN: detectron2's common/models/mask_rcnn_fpn.py (the model of
# configs/Base-RCNN-FPN.yaml) without the mask head, its backbone detectron2's L(FPN)(bottom_up=L(ResNet))
# under L(add_attention) (sna_det/modeling/backbone/builders.py, the placement the YAML builders use).
# attention="none" is the plain ResNet-FPN; a treatment sets model.backbone.attention / stem / stages / options.
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.modeling.backbone import FPN, BasicStem, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

from sna_det.modeling import RESNET_STAGES, add_attention


def resnet_fpn(depth=50, norm="FrozenBN", freeze_at=2, out_channels=256):
    """detectron2's ResNet-FPN of MODEL.RESNETS.DEPTH=depth, MODEL.RESNETS.NORM=norm (FrozenBN with
    ImageNet weights, BN from scratch), MODEL.BACKBONE.FREEZE_AT=freeze_at, MODEL.FPN.OUT_CHANNELS."""
    msra = {"stride_in_1x1": True} if depth >= 50 else {}  # MSRA weights; BasicBlock (18, 34) has no 1x1
    return L(FPN)(
        bottom_up=L(ResNet)(
            stem=L(BasicStem)(in_channels=3, out_channels=64, norm=norm),
            stages=L(ResNet.make_default_stages)(depth=depth, norm=norm, **msra),
            out_features=list(RESNET_STAGES),
            freeze_at=freeze_at,
        ),
        in_features="${.bottom_up.out_features}",
        out_channels=out_channels,
        top_block=L(LastLevelMaxPool)(),
    )


model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.backbone = L(add_attention)(backbone=resnet_fpn(), attention="none", stem=False, stages=[])
for key in ("mask_in_features", "mask_pooler", "mask_head"):
    model.roi_heads.pop(key)
model.pixel_std = [1.0, 1.0, 1.0]  # MODEL.PIXEL_STD of the YAML configs (MSRA weights)
