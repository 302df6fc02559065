"""Offline dataset preparation, without detectron2: any VOC-format folder (``voc``), VinDr-CXR
(``vindr_cxr``), the synthetic demo images (``demo``), and what preparers share: the output folder
(``output_folder``: writable check, recorded settings, resume, rebuild), instance masks (``masks``) and
the one converter of labelled folders to COCO (``formats``: the registry; ``annotated``, ``input_files``, ``splits``,
``coco_writer``, ``conversion_report``; a reader per format)."""
