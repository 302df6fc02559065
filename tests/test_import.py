"""``import sna_det`` and a forward pass work whether or not detectron2's C++ ops load."""

import subprocess
import sys

BLOCK_C_OPS = """
import importlib.abc, sys
class BlockCOps(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "detectron2._C":
            raise ImportError("detectron2._C blocked by the test")
sys.meta_path.insert(0, BlockCOps())
"""

USE_SNA_DET = """
import torch, sna_det
from detectron2.config import get_cfg
from detectron2.modeling import build_model
cfg = get_cfg(); sna_det.add_sna_config(cfg)
cfg.merge_from_file("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml"); cfg.MODEL.DEVICE = "cpu"
model = build_model(cfg).eval()
with torch.no_grad():
    model([{"image": torch.rand(3, 64, 64) * 255}])
print("c_ops_loaded", "detectron2._C" in sys.modules)
"""


def run(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=__file__.rsplit("/tests/", 1)[0]
    )


def test_import_and_forward_without_cpp_ops():
    proc = run(BLOCK_C_OPS + USE_SNA_DET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "c_ops_loaded False" in proc.stdout


def test_import_and_forward_as_installed():
    proc = run("import sys\n" + USE_SNA_DET)
    assert proc.returncode == 0, proc.stderr[-3000:]
