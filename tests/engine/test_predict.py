"""tools/predict.py: a model on image files (a real DICOM in its own pixels), on a registered dataset (the
detections --eval-only writes), a TorchScript export, and the bad input it names."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from sna_det.data.prepare.demo import render_demo_image
from sna_det.data.prepare.vindr_cxr import convert_image
from sna_det.engine import SafeCheckpointer, Trainer, setup_cfg
from sna_det.utils.cli import CommandError
from sna_det.utils.errors import SnaDetError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo" / "faster_rcnn_R_18_FPN_demo.yaml"
# a small, randomly initialised demo detector: fast on a loaded CPU, and with many detections to compare
SMALL = [
    *("MODEL.DEVICE cpu INPUT.MIN_SIZE_TEST 64 INPUT.MAX_SIZE_TEST 96 MODEL.FPN.OUT_CHANNELS 16".split()),
    *("MODEL.ROI_BOX_HEAD.FC_DIM 32 MODEL.RPN.PRE_NMS_TOPK_TEST 100 MODEL.RPN.POST_NMS_TOPK_TEST 40".split()),
    *("TEST.DETECTIONS_PER_IMAGE 20 DATALOADER.NUM_WORKERS 0".split()),
]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_predict(*argv: str) -> int:
    """tools/predict.py in this process (its main raises CommandError for bad input)."""
    tool = load_tool("predict")
    return tool.main(tool.parse_args([str(a) for a in argv]))


def real_dicom(name: str = "RG1_UNCR.dcm") -> Path:
    """pydicom-data's CR radiograph RG1 (1841 x 1955, MONOCHROME1, 15 bit), never downloaded."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"{name} is not in pydicom-data (pip install pydicom-data)")
    return Path(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A config with a 4-image COCO dataset of its own (tiny_val: demo radiographs, 96 x 80) and random
    weights saved as a checkpoint."""
    folder = tmp_path_factory.mktemp("tiny")
    images, annotations = [], []
    for i in range(4):
        gray, _ = render_demo_image("val", i)
        Image.fromarray(gray).resize((96, 80)).save(folder / f"demo_{i}.png")
        images.append({"id": 10 + i, "file_name": f"demo_{i}.png", "width": 96, "height": 80})
        annotations.append({"id": i + 1, "image_id": 10 + i, "category_id": 1 + i % 4, "bbox": [20, 20, 30, 25]})
        annotations[-1].update(area=750, iscrowd=0)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(("nodule", "mass", "opacity", "cavity"))]
    (folder / "val.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    config = folder / "tiny.yaml"
    config.write_text(
        f'_BASE_: "{DEMO}"\nDATASETS:\n  REGISTER:\n'
        f'    tiny_val: {{JSON: "{folder / "val.json"}", IMAGES: "{folder}"}}\n  TEST: ("tiny_val",)\n'
    )
    cfg = setup_cfg(config, SMALL)
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    return config, folder / "model.pth", folder


def eval_only(config: Path, weights: Path, output: Path, extra=()) -> None:
    """What tools/train_net.py --eval-only does, in this process."""
    cfg = setup_cfg(config, [*SMALL, *extra, "MODEL.WEIGHTS", str(weights), "OUTPUT_DIR", str(output)])
    model = Trainer.build_model(cfg)
    SafeCheckpointer(model, cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=False)
    Trainer.test(cfg, model)


def key(d: dict) -> tuple:
    return d["image_id"], d["category_id"], round(d["score"], 5), *(round(v, 3) for v in d["bbox"])


def test_on_a_dataset_the_detections_are_those_eval_only_writes(tiny, tmp_path):
    config, weights, _ = tiny
    eval_only(config, weights, tmp_path / "eval")
    expected = json.loads((tmp_path / "eval" / "inference" / "coco_instances_results.json").read_text())
    assert len(expected) > 20  # random weights: plenty of detections to compare
    run_predict("--config-file", config, "--dataset", "tiny_val", "--batch-size", 1, "--output", tmp_path / "p",
                *SMALL, "MODEL.WEIGHTS", weights)  # fmt: skip
    coco = json.loads((tmp_path / "p" / "predictions.json").read_text())
    got = [{k: a[k] for k in ("image_id", "category_id", "bbox", "score")} for a in coco["annotations"]]
    assert got == [{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in expected]
    assert [(i["id"], i["width"], i["height"]) for i in coco["images"]] == [(10 + i, 96, 80) for i in range(4)]
    assert [c["name"] for c in coco["categories"]] == ["nodule", "mass", "opacity", "cavity"]
    # several images per forward pass: the same detections (same-size images: no padding differs)
    run_predict("--config-file", config, "--dataset", "tiny_val", "--batch-size", 3, "--output", tmp_path / "b",
                *SMALL, "MODEL.WEIGHTS", weights)  # fmt: skip
    batched = json.loads((tmp_path / "b" / "predictions.json").read_text())["annotations"]
    assert sorted(map(key, batched)) == sorted(map(key, expected))


def test_a_dicom_is_predicted_in_its_own_pixels(tiny, tmp_path):
    """RG1 read as the preparer reads it: the DICOM's detections are those on the preparer's PNG of it,
    scaled by DICOM size / PNG size; the command line as a user types it (a subprocess)."""
    config, weights, _ = tiny
    dicom = real_dicom()
    header = pydicom.dcmread(dicom, stop_before_pixels=True)
    png = tmp_path / "RG1_preparer.png"
    _, _, png_w, png_h = convert_image(dicom, png, 128)  # what prepare_vindr_cxr.py --max-size 128 writes
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "predict.py"), "--config-file", str(config), "--input", str(dicom)]
        + [str(png), "--max-size", "128", "--draw", "--score-thr", "0.2", "--output", str(tmp_path / "out")]
        + [*SMALL, "MODEL.WEIGHTS", str(weights)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    coco = json.loads((tmp_path / "out" / "predictions.json").read_text())
    (on_dicom, on_png) = coco["images"]
    assert (on_dicom["width"], on_dicom["height"]) == (header.Columns, header.Rows) == (1841, 1955)
    assert (on_png["width"], on_png["height"]) == (png_w, png_h) and max(png_w, png_h) == 128
    boxes = {image["id"]: [] for image in coco["images"]}
    for a in coco["annotations"]:
        boxes[a["image_id"]].append((a["category_id"], a["score"], a["bbox"]))
    assert len(boxes[on_dicom["id"]]) == len(boxes[on_png["id"]]) > 5
    ratio = np.array([header.Columns / png_w, header.Rows / png_h] * 2)
    for (c1, s1, b1), (c2, s2, b2) in zip(boxes[on_dicom["id"]], boxes[on_png["id"]]):
        assert c1 == c2 and s1 == pytest.approx(s2, abs=1e-6)
        assert np.allclose(b1, np.array(b2) * ratio, atol=1e-3)
    assert max(b[0] + b[2] for _, _, b in boxes[on_dicom["id"]]) > 128  # in the DICOM's frame, not the PNG's
    # the CSV holds the same detections as x_min, y_min, x_max, y_max with class names
    with open(tmp_path / "out" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(coco["annotations"])
    x, y, w, h = coco["annotations"][0]["bbox"]
    assert [float(rows[0][k]) for k in ("x_min", "y_min", "x_max", "y_max")] == pytest.approx(
        [x, y, x + w, y + h], abs=0.01
    )
    assert rows[0]["file_name"] == str(dicom) and rows[0]["class"] in ("nodule", "mass", "opacity", "cavity")
    with Image.open(tmp_path / "out" / "draw" / "RG1_UNCR.png") as drawn:
        assert drawn.size == (png_w, png_h)  # drawn on the image the model saw


@pytest.mark.filterwarnings("ignore")  # the tracer's warnings on detectron2's Python control flow
def test_an_exported_torchscript_model_predicts_what_the_weights_do(tiny, tmp_path):
    config, weights, folder = tiny
    export = load_tool("export_model")
    argv = ["--config-file", config, "--sample-image", folder / "demo_0.png", "--output", tmp_path / "export"]
    export.main(export.parse_args([str(a) for a in [*argv, *SMALL, "MODEL.WEIGHTS", weights]]))
    inputs = [str(folder / "demo_1.png"), str(folder / "demo_2.png")]
    run_predict(
        "--config-file", config, "--input", *inputs, "--output", tmp_path / "eager", *SMALL, "MODEL.WEIGHTS", weights
    )
    run_predict("--config-file", config, "--model", tmp_path / "export" / "model.ts", "--input", *inputs,
                "--output", tmp_path / "ts", *SMALL)  # fmt: skip
    eager = json.loads((tmp_path / "eager" / "predictions.json").read_text())["annotations"]
    traced = json.loads((tmp_path / "ts" / "predictions.json").read_text())["annotations"]
    assert len(eager) == len(traced) > 10
    for a, b in zip(sorted(eager, key=key), sorted(traced, key=key)):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert np.allclose(a["bbox"], b["bbox"], atol=0.05) and a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_bad_input_is_named(tiny, tmp_path):
    config, weights, folder = tiny
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    image, out = folder / "demo_0.png", tmp_path / "out"
    given = [*SMALL, "MODEL.WEIGHTS", weights]
    cases = [  # (options, trailing KEY VALUE pairs, the message's start)
        (["--input", tmp_path / "nothing"], given, f"{tmp_path / 'nothing'}: no such file or folder"),
        (["--input", tmp_path / "notes.txt"], given, f"{tmp_path / 'notes.txt'}: not an image file name"),
        (["--input", f"{tmp_path}/*.jpg"], given, f"{tmp_path}/*.jpg: holds no image"),
        (["--input", tmp_path / "broken.png"], given, f"{tmp_path / 'broken.png'}: cannot read the image"),
        (["--input", image], [], "no weights: give MODEL.WEIGHTS"),
        (
            ["--input", image],
            ["MODEL.WEIGHTS", tmp_path / "none.pth"],
            f"{tmp_path / 'none.pth'}: no such checkpoint file",
        ),
        (["--input", image], ["MODEL.WEIGHTS", weights], f"{weights}: loaded 104 of 130 model tensors; not loaded"),
        (["--input", image, "--format", "vinbigdata"], given, "--format vinbigdata needs a model of VinDr-CXR's 14"),
        (["--dataset", "no_such_dataset"], given, "dataset 'no_such_dataset' is not registered"),
        (
            ["--output", out, "--input", image, "MODEL.WEIGHTS", weights],
            [],
            "MODEL.WEIGHTS: given as an --input; put KEY",
        ),
    ]
    for options, opts, message in cases:
        with pytest.raises((CommandError, SnaDetError)) as error:  # the tool's or the library's: one line each
            run_predict(
                "--config-file", config, *options, *(["--output", out] if "--output" not in options else []), *opts
            )
        assert str(error.value).startswith(message), (options, str(error.value))
    assert not (out / "predictions.json").exists()


def test_prelabels_open_as_labelme_loads_them_and_convert_back_to_the_boxes(tiny, tmp_path):
    """--format labelme: one labelme file per image with the detections >= --score-thr as rectangles,
    which labelme's own loader (``labelme.LabelFile``) opens, its boxes the detections; prepare_coco.py
    (labelme, and CVAT from the same detections) gives the predicted boxes again."""
    from types import SimpleNamespace

    import labelme

    from sna_det.data.prepare.cvat import convert_cvat
    from sna_det.data.prepare.labelme import convert_labelme
    from sna_det.data.prepare.prelabels import write_prelabels

    config, weights, folder = tiny
    inputs = [folder / f"demo_{i}.png" for i in range(4)]
    thr = 0.204  # random weights score 0.20-0.21: about half are kept
    run_predict("--config-file", config, "--input", *inputs, "--format", "labelme", "--score-thr", thr,
                "--output", tmp_path / "p", *SMALL, "MODEL.WEIGHTS", weights)  # fmt: skip
    coco = json.loads((tmp_path / "p" / "predictions.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    expected = {}
    for image in coco["images"]:
        kept = [a for a in coco["annotations"] if a["image_id"] == image["id"] and a["score"] >= thr]
        expected[Path(image["file_name"]).name] = sorted((names[a["category_id"]], *a["bbox"]) for a in kept)
    assert 0 < sum(map(len, expected.values())) < len(coco["annotations"])  # the threshold kept some, not all
    for image_file in inputs:  # labelme's own loader: its checks pass, the image at imagePath reads
        label_file = labelme.LabelFile(filename=str(tmp_path / "p" / "labelme" / f"{image_file.stem}.json"))
        assert labelme.utils.img_data_to_arr(label_file.image_data).shape[:2] == (80, 96)
        shapes = label_file.shapes
        assert all(s["shape_type"] == "rectangle" and s["flags"] == {"predicted": True} for s in shapes)
        assert all(s["description"].startswith("score ") for s in shapes)
        loaded = sorted((s["label"], *np.ravel(s["points"])) for s in shapes)  # [[x0, y0], [x1, y1]]
        boxes = [(name, x, y, x + w, y + h) for name, x, y, w, h in expected[image_file.name]]
        assert [r[0] for r in loaded] == [b[0] for b in boxes]
        np.testing.assert_allclose([r[1:] for r in loaded], [b[1:] for b in boxes], atol=1e-3)

    def boxes_back(out: Path) -> dict:
        found = {}
        for split in ("train", "val"):
            back = json.loads((out / "annotations" / f"{split}.json").read_text())
            back_names = {c["id"]: c["name"] for c in back["categories"]}
            for image in back["images"]:
                rows = [a for a in back["annotations"] if a["image_id"] == image["id"]]
                found[Path(image["file_name"]).name] = sorted((back_names[a["category_id"]], *a["bbox"]) for a in rows)
        return found

    def assert_same(found: dict, atol: float, expected=expected) -> None:
        assert found.keys() == expected.keys()
        for name, rows in expected.items():
            assert [r[0] for r in found[name]] == [r[0] for r in rows]
            np.testing.assert_allclose([r[1:] for r in found[name]], [r[1:] for r in rows], atol=atol)

    convert_labelme(tmp_path / "p" / "labelme", tmp_path / "back")
    assert_same(boxes_back(tmp_path / "back"), atol=1e-3)
    # CVAT: the XML to import, from the same detections; its export layout (images/) converts back
    ids = sorted(names)
    predictions = []
    for image in coco["images"]:
        rows = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in rows)]).reshape(-1, 4)
        scores, classes = np.array([a["score"] for a in rows]), np.array([ids.index(a["category_id"]) for a in rows])
        predictions.append(SimpleNamespace(file_name=image["file_name"], width=image["width"], height=image["height"],
                                           boxes=boxes, scores=scores, classes=classes))  # fmt: skip
    write_prelabels("cvat", tmp_path / "cvat", predictions, [names[i] for i in ids], thr)
    (tmp_path / "cvat" / "images").mkdir()
    for image_file in inputs:
        (tmp_path / "cvat" / "images" / image_file.name).write_bytes(image_file.read_bytes())
    convert_cvat(tmp_path / "cvat", tmp_path / "cvat_back")
    two_decimals = lambda v: float(f"{v:.2f}")  # noqa: E731  (the XML's corners)
    corners = {n: [(c, *map(two_decimals, (x, y, x + w, y + h))) for c, x, y, w, h in r] for n, r in expected.items()}
    in_xml = {n: sorted((c, x0, y0, x1 - x0, y1 - y0) for c, x0, y0, x1, y1 in rows) for n, rows in corners.items()}
    assert_same(boxes_back(tmp_path / "cvat_back"), atol=1e-9, expected=in_xml)
