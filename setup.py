"""sna-det: Spectral Norm Attention for detectron2.

``pip install sna-det`` is the block alone (``from sna_det.layers import SpectralNormAttention``),
which needs torch only. Extras: ``[detectron2]`` the detectron2 plugin (backbones, datasets,
evaluation, tools), ``[data]`` the dataset preparation (DICOM, box fusion), ``[dicom]`` detections as DICOM
SR / presentation states and a PACS over DICOMweb, ``[all]`` all three.
detectron2 itself and torchvision are not listed, as in detectron2's own projects: they must match
your torch and CUDA, and ``tools/setup_env.sh`` installs them (or you do).
"""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / "sna_det" / "version.py").read_text(), version)

# One requirement per line, so that additions merge.
extras = {
    "detectron2": [
        "numpy",
        "Pillow",
        "timm>=1.0",
        "pycocotools",
        "fvcore",
        "opencv-python-headless",
        "matplotlib",
        "tabulate",
        "tqdm",
        "PyYAML",
    ],
    "data": [
        "numpy",
        "Pillow",
        "opencv-python-headless",
        "pycocotools",
        "tabulate",
        "pydicom>=3.0",
        "pylibjpeg>=2.0",
        "pylibjpeg-libjpeg>=2.1",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-rle>=2.0",
        "tqdm",
        "ensemble-boxes>=1.0.9",
        "PyYAML",
    ],
    "test": [
        "pytest>=7",
        "pytest-timeout",
        "hypothesis>=6",
        "pydicom-data",
        "scikit-learn",
        "imgviz>=1.7",
        "onnx",
        "onnxruntime",
        "onnxscript",
        # labelme's own loader and rasterizer for the labelme tests (labelme itself: tools/setup_env.sh, no deps)
        "pyqt5",
        "loguru",
        "tifffile",
        "natsort",
    ],
    # tools/export_model.py --format onnx; tools/onnx_upstream_repro.py (onnxscript: torch's dynamo exporter)
    "export": [
        "onnx",
        "onnxruntime",
        "onnxscript",
    ],
    # tools/predict.py --format dicom-sr / dicom-gsps / dicom and --dicomweb (docs/pacs.md)
    "dicom": [
        "pydicom>=3.0",
        "highdicom==0.28.2",
        "dicomweb-client==0.61.2",
    ],
    "dev": [
        "ruff",
    ],
}
extras["all"] = sorted(set(extras["detectron2"] + extras["data"] + extras["dicom"]))

setup(
    name="sna-det",
    version=version["__version__"],
    description="Spectral Norm Attention (SNA) backbones and tools for detectron2",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    if (Path(__file__).parent / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["sna_det", "sna_det.*"]),
    install_requires=[
        "torch",
    ],
    extras_require=extras,
)
