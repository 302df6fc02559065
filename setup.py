"""sna-det: Spectral Norm Attention for detectron2.

torch, torchvision and detectron2 are not listed in ``install_requires``, as in detectron2's own
projects: they must match your CUDA and are installed by ``tools/setup_env.sh`` (or by you).
"""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / "sna_det" / "version.py").read_text(), version)

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
        "numpy",
        "Pillow",
        "pycocotools",
        "fvcore",
        "matplotlib",
        "opencv-python-headless",
        "pydicom>=3.0",
        "pylibjpeg>=2.0",
        "pylibjpeg-libjpeg>=2.1",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-rle>=2.0",
        "tqdm",
        "ensemble-boxes>=1.0.9",
        "timm>=1.0",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-timeout",
            "hypothesis>=6",
            "pydicom-data",
            "imgviz>=1.7",
        ],
        "dev": ["pytest>=7", "pytest-timeout", "hypothesis>=6", "ruff"],
    },
)
