# configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml as a LazyConfig: the embedded synthetic demo
# (256x256 radiograph-like images, 4 classes), ResNet-18-FPN from scratch with SNA after the stem.
#   python tools/train_net.py --config-file configs/lazy/faster_rcnn_R_18_FPN_sna_demo.py
from detectron2.layers import ShapeSpec

from .common.data.detection import detection_dataloader
from .common.models.faster_rcnn_fpn import model, resnet_fpn
from .common.optim import SGD as optimizer
from .common.schedule import multi_step
from .common.train import datasets, train  # noqa: F401  (read by tools/train_net.py)

model.backbone.update(
    backbone=resnet_fpn(depth=18, norm="BN", freeze_at=0, out_channels=64), attention="sna", stem=True
)
model.pixel_mean = [128.0, 128.0, 128.0]
model.pixel_std = [64.0, 64.0, 64.0]
model.proposal_generator.head.in_channels = 64
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.update(pre_nms_topk=(1000, 500), post_nms_topk=(500, 200), batch_size_per_image=128)
model.roi_heads.update(num_classes=4, batch_size_per_image=64)
model.roi_heads.box_pooler.sampling_ratio = 2
model.roi_heads.box_head.update(input_shape=ShapeSpec(channels=64, height=7, width=7), fc_dims=[256, 256])
model.roi_heads.box_predictor.input_shape = ShapeSpec(channels=256)

dataloader = detection_dataloader(
    "sna_demo_train",
    "sna_demo_val",
    min_size_train=(256,),
    max_size_train=256,
    min_size_test=256,
    max_size_test=256,
    batch_size=8,
    num_workers=0,  # a loader process would compete with the compute threads on a small CPU
)

optimizer.lr = 0.02
lr_multiplier = multi_step(steps=(150, 185), warmup_iters=40)
train.update(
    output_dir="output/lazy/faster_rcnn_R_18_FPN_sna_demo",
    max_iter=200,
    eval_period=0,  # at the end only
    checkpointer=dict(period=100, max_to_keep=100),
    clip_gradients=dict(enabled=True, clip_type="norm", clip_value=1.0, norm_type=2.0),  # from scratch
    seed=0,
)
