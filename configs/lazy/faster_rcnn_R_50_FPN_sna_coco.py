# COCO Faster R-CNN R50-FPN with SNA after the stem, 1x schedule from ImageNet weights, as a LazyConfig
# (configs/COCO-Detection/faster_rcnn_R_50_FPN_sna_1x.yaml; the paper's Table 3).
#   python tools/train_net.py --config-file configs/lazy/faster_rcnn_R_50_FPN_sna_coco.py --num-gpus 8
from .common.data.detection import detection_dataloader
from .common.models.faster_rcnn_fpn import model
from .common.optim import SGD as optimizer
from .common.schedule import multi_step
from .common.train import datasets, train  # noqa: F401  (read by tools/train_net.py)

model.backbone.update(attention="sna", stem=True)  # ResNet-50, FrozenBN, freeze_at 2: the model's defaults
model.roi_heads.num_classes = 80

dataloader = detection_dataloader(
    "coco_2017_train",
    "coco_2017_val",
    min_size_train=(640, 672, 704, 736, 768, 800),
    max_size_train=1333,
    min_size_test=800,
    max_size_test=1333,
    batch_size=16,
)

optimizer.lr = 0.02
lr_multiplier = multi_step(steps=(60000, 80000), warmup_iters=1000)
train.update(
    output_dir="output/lazy/faster_rcnn_R_50_FPN_sna_coco",
    init_checkpoint="detectron2://ImageNetPretrained/MSRA/R-50.pkl",  # no attention weights: it loads as is
    max_iter=90000,
    eval_period=0,  # at the end, as TEST.EVAL_PERIOD 0
)
