# Faster R-CNN with an attention ResNet-FPN: detectron2's common/models/mask_rcnn_fpn.py (the model of
# configs/Base-RCNN-FPN.yaml) without the mask head, its backbone the config-free
# build_attention_resnet_fpn (sna_det/modeling/backbone/builders.py). attention="none" is the plain
# ResNet-FPN; a treatment sets model.backbone.attention / stem / stages.
from detectron2 import model_zoo
from detectron2.config import LazyCall as L

from sna_det.modeling.backbone import RESNET_STAGES, build_attention_resnet_fpn

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.backbone = L(build_attention_resnet_fpn)(
    depth=50,
    attention="none",
    stem=False,
    stages=[],
    norm="FrozenBN",  # MODEL.RESNETS.NORM and MODEL.BACKBONE.FREEZE_AT: detectron2's, for ImageNet weights
    freeze_at=2,
    in_features=list(RESNET_STAGES),
    out_channels=256,
)
for key in ("mask_in_features", "mask_pooler", "mask_head"):
    model.roi_heads.pop(key)
model.pixel_std = [1.0, 1.0, 1.0]  # MODEL.PIXEL_STD of the YAML configs (MSRA weights)
