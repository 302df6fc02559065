"""Offline dataset preparation, without detectron2: any VOC-format folder (``voc``), VinDr-CXR
(``vindr_cxr``), the synthetic demo images (``demo``), and what preparers share: the output folder
(``output_folder``: writable check, recorded settings, resume, rebuild) and instance masks (``masks``)."""
