"""Every image-taking tool on a folder holding a real CR DICOM and a PNG: no traceback, and each tool hands the
model the same pixels (the one image path); predict's --tta against an independent NMS; unreadable images
skipped and named."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, run_main
from PIL import Image
from pydicom.data import get_testdata_file
from torchvision.ops import batched_nms

import sna_det.engine.inference_model as inference_model
from sna_det.data.dicom import read_dicom_values, stretch_to_uint8
from sna_det.data.prepare.demo import render_demo_image
from sna_det.engine import Trainer, setup_cfg

DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
SMALL = [
    *("MODEL.DEVICE cpu INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 96 MODEL.FPN.OUT_CHANNELS 16".split()),
    *("MODEL.ROI_BOX_HEAD.FC_DIM 32 MODEL.RPN.PRE_NMS_TOPK_TEST 100 MODEL.RPN.POST_NMS_TOPK_TEST 40".split()),
    *("TEST.DETECTIONS_PER_IMAGE 20 DATALOADER.NUM_WORKERS 0 DATASETS.TEST ()".split()),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder with RG3 (CR, MONOCHROME1) and a demo PNG, random weights of the small demo detector)."""
    root = tmp_path_factory.mktemp("image_path")
    folder = root / "scans"
    (folder / "cr").mkdir(parents=True)
    dicom = get_testdata_file("RG3_UNCR.dcm", download=False)
    if dicom is None:
        pytest.fail("RG3_UNCR.dcm is not in pydicom-data (pip install pydicom-data)")
    shutil.copy(dicom, folder / "cr" / "RG3.dcm")  # in a subfolder: folders are searched recursively
    Image.fromarray(render_demo_image("val", 0)[0]).resize((96, 80)).save(folder / "demo.png")
    cfg = setup_cfg(DEMO, SMALL)
    torch.manual_seed(0)
    torch.save({"model": Trainer.build_model(cfg).state_dict()}, root / "model.pth")
    return folder, root / "model.pth"


def test_every_tool_takes_the_folder_and_feeds_the_model_the_same_pixels(setup, tmp_path, monkeypatch):
    folder, weights = setup
    given = {}  # tool -> {file name: the (H, W, 3) image the model was given}
    reader = inference_model.read_model_image

    def recording(path, *args, **kwargs):
        read = reader(path, *args, **kwargs)
        given.setdefault(tool, {})[Path(path).name] = read.image
        return read

    monkeypatch.setattr(inference_model, "read_model_image", recording)
    cfg_args = ["--config-file", DEMO]
    runs = {
        "predict": ["tools/predict.py", *cfg_args, "--input", folder, "--output", tmp_path / "p"],
        "attention": ["tools/visualize_attention.py", *cfg_args, "--input", folder, "--output", tmp_path / "a"],
        "export": ["tools/export_model.py", *cfg_args, "--sample-image", folder / "demo.png",
                   "--output", tmp_path / "e", "--check", folder / "cr" / "RG3.dcm", "--check", folder / "demo.png"],
    }  # fmt: skip
    for tool, argv in runs.items():
        assert run_main(*argv, *SMALL, "MODEL.WEIGHTS", weights) == 0, tool
    assert run_main("tools/analyze_redundancy.py", "--input", folder, "--max-side", 64, "--output", tmp_path / "r") == 0
    coco = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert sorted(Path(i["file_name"]).name for i in coco["images"]) == ["RG3.dcm", "demo.png"]
    assert {i["width"] for i in coco["images"]} == {1760, 96}  # the DICOM's own pixels
    assert "RG3.dcm" in (tmp_path / "a" / "index.html").read_text()
    for name in ("RG3.dcm", "demo.png"):
        first = given["predict"][name]
        for tool in ("attention", "export"):
            np.testing.assert_array_equal(given[tool][name], first, err_msg=f"{tool} sees other pixels of {name}")
    dicom = given["predict"]["RG3.dcm"]
    assert dicom.shape == (1024, 1024, 3)  # the preparer's rendering, long side 1024
    # the redundancy analysis reads the DICOM's display values, which that rendering stretches to 8 bits
    full = inference_model.read_input_image(setup_cfg(DEMO, SMALL), folder / "cr" / "RG3.dcm", max_size=0).image
    values = read_dicom_values(folder / "cr" / "RG3.dcm")
    assert np.abs(stretch_to_uint8(values).astype(int) - full[:, :, 0]).max() <= 1  # rounding ties, MONOCHROME1


def test_predict_skips_and_names_unreadable_images(setup, tmp_path, capsys):
    folder, weights = setup
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(folder / "demo.png", mixed / "good.png")
    (mixed / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 8)
    (mixed / "truncated.png").write_bytes((folder / "demo.png").read_bytes()[:200])
    argv = ["--config-file", DEMO, "--input", mixed, "--output", tmp_path / "out", *SMALL, "MODEL.WEIGHTS", weights]
    assert run_main("tools/predict.py", *argv) == 0
    err = capsys.readouterr().err
    assert f"skipped {mixed / 'corrupt.dcm'}: unreadable image" in err
    assert f"skipped {mixed / 'truncated.png'}: unreadable image" in err
    coco = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [Path(i["file_name"]).name for i in coco["images"]] == ["good.png"]
    # nothing readable: one line naming the file, exit 1
    argv[3] = mixed / "truncated.png"
    assert run_main("tools/predict.py", *argv) == 1
    assert f"{mixed / 'truncated.png'}: cannot read the image" in capsys.readouterr().err


def test_predict_tta_on_a_symmetric_image_is_the_nms_of_plain_and_mirrored_detections(setup, tmp_path):
    _, weights = setup
    left = np.random.default_rng(0).integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    image = np.concatenate([left, left[:, ::-1]], axis=1)  # 64 x 96: the test size already
    Image.fromarray(image).save(tmp_path / "symmetric.png")
    opts = [*SMALL, "MODEL.WEIGHTS", weights, "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.05"]
    opts += ["TEST.AUG.MIN_SIZES", "(64,)", "TEST.AUG.MAX_SIZE", "96", "TEST.AUG.FLIP", "True"]
    found = {}
    for name, extra in (("plain", []), ("tta", ["--tta"])):
        argv = ["--config-file", DEMO, "--input", tmp_path / "symmetric.png", *extra, "--output", tmp_path / name]
        assert run_main("tools/predict.py", *argv, *opts) == 0
        found[name] = json.loads((tmp_path / name / "predictions.json").read_text())["annotations"]
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in found["plain"])])
    scores = torch.tensor([a["score"] for a in found["plain"]])
    classes = torch.tensor([a["category_id"] for a in found["plain"]])
    mirrored = torch.stack([96 - boxes[:, 2], boxes[:, 1], 96 - boxes[:, 0], boxes[:, 3]], dim=1)
    assert len(boxes) > 0 and (boxes - mirrored).abs().max() > 1.0, "the model is not mirror-equivariant"
    all_boxes, all_scores, all_classes = torch.cat([boxes, mirrored]), scores.repeat(2), classes.repeat(2)
    keep = batched_nms(all_boxes, all_scores, all_classes, 0.5)[:20]  # NMS_THRESH_TEST, DETECTIONS_PER_IMAGE
    tta = sorted(found["tta"], key=lambda a: -a["score"])
    assert len(tta) == len(keep)
    got = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in tta)])
    order = torch.argsort(all_scores[keep], descending=True, stable=True)
    torch.testing.assert_close(got, all_boxes[keep][order], atol=2e-3, rtol=0)
    torch.testing.assert_close(torch.tensor([a["score"] for a in tta]), all_scores[keep][order], atol=1e-5, rtol=0)
