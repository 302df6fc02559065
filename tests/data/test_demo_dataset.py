"""The synthetic demo dataset: deterministic, valid COCO, registered, written atomically."""

import hashlib

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from sna_det.data.prepare.demo import DEMO_CLASSES, IMAGE_SIZE, ensure_demo_dataset, render_demo_image

SMALL = {"train": 6, "val": 3}


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return ensure_demo_dataset(tmp_path_factory.mktemp("demo"), SMALL)


def test_same_bytes_on_every_run(demo, tmp_path):
    again = ensure_demo_dataset(tmp_path, SMALL)
    assert again.name == demo.name
    assert digest(again) == digest(demo)
    assert [p.name for p in tmp_path.iterdir()] == [again.name], "no temporary directory left behind"


def test_existing_directory_is_reused(demo):
    marker = demo / "marker"
    marker.write_text("x")
    try:
        assert ensure_demo_dataset(demo.parent, SMALL) == demo
        assert marker.exists()
    finally:
        marker.unlink()


@pytest.mark.parametrize("split", list(SMALL))
def test_coco_json_is_consistent(demo, split):
    coco = COCO(str(demo / f"{split}.json"))
    assert len(coco.getImgIds()) == SMALL[split]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(DEMO_CLASSES)
    assert len(coco.getAnnIds()) >= SMALL[split]  # at least one lesion per image
    for ann in coco.loadAnns(coco.getAnnIds()):
        info = coco.imgs[ann["image_id"]]
        assert (info["height"], info["width"]) == (IMAGE_SIZE, IMAGE_SIZE)
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= IMAGE_SIZE and y + h <= IMAGE_SIZE and w > 2 and h > 2
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        # the box is the polygon's extent; the rasterised mask lies inside it (to a pixel)
        assert xs.min() >= x - 1 and xs.max() <= x + w + 1 and ys.min() >= y - 1 and ys.max() <= y + h + 1
        assert abs(mask.sum() - ann["area"]) <= 0.1 * ann["area"] + 10
    image = np.asarray(Image.open(demo / "images" / info["file_name"]))
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE) and image.dtype == np.uint8


def test_objects_do_not_overlap_and_brighten_the_image():
    for index in range(5):
        pixels, objects = render_demo_image("val", index)
        masks = [
            mask_utils.decode(mask_utils.frPyObjects([sum(o["polygon"], ())], IMAGE_SIZE, IMAGE_SIZE))[..., 0]
            for o in objects
        ]
        if len(masks) > 1:
            assert np.max(np.sum(masks, axis=0)) == 1
        for obj, mask in zip(objects, masks):
            if DEMO_CLASSES[obj["category"]] in ("nodule", "mass"):
                ring = np.pad(mask, 6)[3:-9, 3:-9] | np.pad(mask, 6)[9:-3, 9:-3]
                assert pixels[mask > 0].mean() > pixels[(ring > 0) & (mask == 0)].mean()
