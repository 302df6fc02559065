# What tools/train_net.py reads besides model, dataloader, optimizer and lr_multiplier
# (sna_det/engine/lazy_config.py): detectron2's configs/common/train.py plus the project's keys.
train = dict(
    output_dir="./output",
    init_checkpoint="",  # MODEL.WEIGHTS: loaded without running code from the file (SafeCheckpointer)
    allow_unsafe_weights=False,  # MODEL.ALLOW_UNSAFE_WEIGHTS
    max_iter=90000,
    # SOLVER.AMP: mixed precision on any device; dtype "bfloat16", "float16" (gradients scaled) or
    # "": float16 on CUDA, bfloat16 on the CPU
    amp=dict(enabled=False, dtype=""),
    # MODEL.BACKBONE_COMPILE: torch.compile of the backbone for training and evaluation; mode
    # "default" / "reduce-overhead" (CUDA graphs, fixed input sizes) / "max-autotune", backend "inductor"
    backbone_compile=dict(enabled=False, mode="default", backend="inductor"),
    # SOLVER.CLIP_GRADIENTS, through detectron2's clipping: clip_type "value" or "norm"
    clip_gradients=dict(enabled=False, clip_type="value", clip_value=1.0, norm_type=2.0),
    ddp=dict(broadcast_buffers=False, find_unused_parameters=False, fp16_compression=False),
    checkpointer=dict(period=5000, max_to_keep=100),  # PeriodicCheckpointer
    eval_period=5000,  # and once at the end
    log_period=20,
    device="cuda",  # falls back to the CPU when CUDA is absent (tools/train_net.py says so)
    seed=-1,  # SEED: -1 draws one
)

# DATASETS.ROOTS and DATASETS.REGISTER of a YAML config, registered the same way
# (sna_det/data/datasets/builtin.py), e.g. datasets.ROOTS.VINDR_CXR=/data/vindr_cxr_prepared
datasets = dict(ROOTS=dict(COCO="", VOC_2012_COCO="", VINDR_CXR=""), REGISTER={})
