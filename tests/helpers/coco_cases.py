"""Hand-made COCO ground truth and detections, for the tests that count true and false positives by hand."""

from __future__ import annotations

from typing import Sequence, Tuple

Box = Sequence[float]
"""[x, y, width, height] in pixels, COCO's bbox."""


def coco_ground_truth(
    boxes: Sequence[Tuple[int, int, Box]],
    classes: Sequence[str],
    *,
    images: int = 3,
    width: int = 40,
    height: int = 40,
    file_name: str = "{}.png",
) -> dict:
    """A COCO ground-truth dict: images 1..``images`` of ``width`` x ``height`` (``file_name`` formatted
    with the id), one annotation per (image id, category id, box) of ``boxes`` (ids 1, 2, ... in that
    order, area w x h, not crowd), categories 1.. named ``classes``."""
    return {
        "images": [
            {"id": i, "file_name": file_name.format(i), "width": width, "height": height} for i in range(1, images + 1)
        ],
        "annotations": [
            {"id": k, "image_id": image, "category_id": category, "bbox": box, "area": w * h, "iscrowd": 0}
            for k, (image, category, box) in enumerate(boxes, start=1)
            for w, h in [box[2:4]]
        ],
        "categories": [{"id": i, "name": name} for i, name in enumerate(classes, start=1)],
    }


def detection(image: int, category: int, box: Box, score: float) -> dict:
    """One COCO result: ``box`` (as given: tests also pass malformed ones) of ``category`` on ``image``."""
    return {"image_id": image, "category_id": category, "bbox": box, "score": score}
