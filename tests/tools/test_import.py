"""``import sna_det`` and a forward pass work whether or not detectron2's C++ ops load; the SNA block
imports with torch alone and is a timm ``attn_layer``."""

import os
import subprocess
import sys
from pathlib import Path

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
from detectron2.modeling import build_model
from sna_det.engine import setup_cfg
cfg = setup_cfg("configs/demo/faster_rcnn_R_18_FPN_sna_demo.yaml", ["MODEL.DEVICE", "cpu"])
model = build_model(cfg).eval()
with torch.no_grad():
    model([{"image": torch.rand(3, 64, 64) * 255}])
print("c_ops_loaded", "detectron2._C" in sys.modules)
print("dicom_results_loaded", any(m in sys.modules for m in ("highdicom", "dicomweb_client")))
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
    assert "dicom_results_loaded False" in proc.stdout  # highdicom, dicomweb-client: only for DICOM outputs


# Everything but torch (and what torch itself needs) is hidden from the interpreter below.
NOT_TORCH = ("detectron2", "timm", "cv2", "pycocotools", "fvcore", "matplotlib", "torchvision", "pydicom", "PIL")


def torch_only_site(tmp_path, hidden_packages=NOT_TORCH):
    """A site-packages holding links to this environment's packages, ``hidden_packages`` left out (by
    default the project's dependencies: an interpreter with only torch installed)."""
    import sysconfig

    purelib = Path(sysconfig.get_paths()["purelib"])
    site_dir = tmp_path / "site-packages"
    site_dir.mkdir()
    for entry in purelib.iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        hidden = {name.lower() for name in hidden_packages} | {"sal_detectron2"}
        hidden |= {"opencv_python_headless"} if "cv2" in hidden_packages else set()
        hidden |= {"pillow"} if "PIL" in hidden_packages else set()
        if top not in hidden and not entry.name.endswith(".pth"):
            (site_dir / entry.name).symlink_to(entry)
    return site_dir


def test_the_block_imports_and_runs_with_torch_alone(tmp_path):
    """``from sna_det.layers import SpectralNormAttention`` in a Python where detectron2, timm, cv2,
    pycocotools (and the rest of the plugin's dependencies) are not installed."""
    code = f"""
import sys
from importlib.util import find_spec
assert all(find_spec(name) is None for name in {NOT_TORCH!r}), "the test failed to hide a package"
import torch
from sna_det.layers import SpectralNormAttention
x = torch.rand(2, 8, 6, 5)
y = SpectralNormAttention()(x)
assert y.shape == x.shape and torch.isfinite(y).all()
print("imported", sorted(n for n in {NOT_TORCH!r} if n in sys.modules))
import sna_det
try:
    sna_det.add_sna_config
except ImportError as error:
    print("without detectron2:", error)
"""
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{root}{os.pathsep}{torch_only_site(tmp_path)}"}
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "imported []" in proc.stdout
    assert "without detectron2: sna_det.add_sna_config needs detectron2 (pip install 'sna-det[detectron2]'" in (
        proc.stdout
    )


def test_sna_is_timms_attn_layer_in_a_resnet():
    """timm's ResNet-18 with SNA in every block (timm's attn_layer convention: channels first, ignored):
    the same parameters as plain ResNet-18; SNA on each residual branch, before the addition."""
    import timm
    import torch

    from sna_det.layers import SpectralNormAttention

    torch.manual_seed(0)
    # zero_init_last=False: timm zeroes each block's last norm by default, so every branch (and SNA) would be 0
    plain = timm.create_model("resnet18", zero_init_last=False).eval()
    with_sna = timm.create_model("resnet18", zero_init_last=False, block_args=dict(attn_layer=SpectralNormAttention))
    with_sna.eval()
    assert len([m for m in with_sna.modules() if isinstance(m, SpectralNormAttention)]) == 8
    assert list(with_sna.state_dict()) == list(plain.state_dict())
    with_sna.load_state_dict(plain.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, reference = with_sna(x), plain(x)
        assert out.shape == reference.shape == (2, 1000) and torch.isfinite(out).all()
        assert not torch.allclose(out, reference)
        block, features = plain.layer1[1], torch.randn(2, 64, 16, 16)  # identity shortcut
        branch = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(features)))))
        expected = torch.relu(SpectralNormAttention()(branch) + features)
        torch.testing.assert_close(with_sna.layer1[1](features), expected)


# The [data] extra alone: what dataset preparation needs is there, the detectron2 plugin's packages are not.
NOT_DATA = ("detectron2", "timm", "fvcore", "matplotlib", "torchvision")


def test_data_preparation_imports_and_runs_without_detectron2(tmp_path):
    """``sna_det.data`` (the DICOM reader, class lists, every preparer) in a Python where detectron2 and the
    plugin's other dependencies are not installed: it imports, and a DICOM reads as the preparer reads it."""
    code = f"""
import sys
from importlib.util import find_spec
assert all(find_spec(name) is None for name in {NOT_DATA!r}), "the test failed to hide a package"
import sna_det.data.classes, sna_det.data.dicom, sna_det.data.prepare.demo, sna_det.data.prepare.voc
import sna_det.data.prepare.vindr_cxr as vindr
from pydicom.data import get_testdata_file
image = vindr.read_dicom_uint8(get_testdata_file("CT_small.dcm"))
print("image", image.shape, image.dtype)
print("imported", sorted(n for n in {NOT_DATA!r} if n in sys.modules))
"""
    root = Path(__file__).resolve().parents[2]
    site = torch_only_site(tmp_path, NOT_DATA)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{root}{os.pathsep}{site}"}
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=root, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "image (128, 128) uint8" in proc.stdout and "imported []" in proc.stdout
