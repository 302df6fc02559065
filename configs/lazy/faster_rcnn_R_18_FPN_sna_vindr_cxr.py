# The paper's Table 4 model as a LazyConfig (configs/VinDr-CXR/faster_rcnn_R_18_FPN_sna.yaml, what
# configs/vincxr_faster_sna.yaml trains): Faster R-CNN, ResNet-18-FPN from scratch on VinDr-CXR's 14
# findings, SNA after the stem and in every residual block, per-class AP at IoU 0.4.
#   python tools/train_net.py --config-file configs/lazy/faster_rcnn_R_18_FPN_sna_vindr_cxr.py \
#       datasets.ROOTS.VINDR_CXR=/path/to/prepared
# Sampling: detectron2's TrainingSampler (uniform over images), as the YAML configs; class-balanced
# sampling is not used (docs/lazyconfig.md gives RepeatFactorTrainingSampler's keys).
from .common.data.detection import detection_dataloader
from .common.models.faster_rcnn_fpn import model, resnet_fpn
from .common.optim import SGD as optimizer
from .common.schedule import multi_step
from .common.train import datasets, train  # noqa: F401  (read by tools/train_net.py)

model.backbone.update(
    backbone=resnet_fpn(depth=18, norm="BN", freeze_at=0),  # from scratch: FrozenBN cannot learn
    attention="sna",
    stem=True,
    stages=["res2", "res3", "res4", "res5"],
)
# grayscale PNGs read as RGB (the gray value in all three channels), normalised alike
model.pixel_mean = [128.0, 128.0, 128.0]
model.pixel_std = [64.0, 64.0, 64.0]
model.roi_heads.num_classes = 14

dataloader = detection_dataloader(
    "vindr_cxr_train",
    "vindr_cxr_val",  # vindr_cxr_test too when prepared from PhysioNet's release
    min_size_train=(800, 864, 928, 992, 1024),
    max_size_train=1024,
    min_size_test=1024,
    max_size_test=1024,
    batch_size=16,
    filter_empty=False,  # DATALOADER.FILTER_EMPTY_ANNOTATIONS False: the normal images are trained on
)

optimizer.lr = 0.02
lr_multiplier = multi_step(steps=(21000, 28000), warmup_iters=1000)
train.update(
    output_dir="output/lazy/faster_rcnn_R_18_FPN_sna_vindr_cxr",
    max_iter=30000,
    eval_period=5000,
    clip_gradients=dict(enabled=True, clip_type="norm", clip_value=1.0, norm_type=2.0),  # from scratch
)
