# SOLVER.OPTIMIZER "SGD" with detectron2's defaults (MOMENTUM 0.9, WEIGHT_DECAY 1e-4, WEIGHT_DECAY_NORM 0).
from detectron2 import model_zoo

SGD = model_zoo.get_config("common/optim.py").SGD
