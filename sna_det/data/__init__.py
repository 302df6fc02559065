"""Data: the one DICOM reader (``dicom``), class lists (``classes``), offline preparation
(``prepare``: VOC and other formats, VinDr-CXR, the demo images) and detectron2 registration
(``datasets``).

Everything but ``datasets`` imports without detectron2 (the ``[data]`` extra alone);
``import sna_det`` registers the datasets when detectron2 is installed.
"""
