"""The image classifier end to end on a prepared VinDr-CXR-layout folder of real chest radiographs
(pydicom-data's CR images): train_classifier.py trains a few CPU iterations, its AUROC file is
scikit-learn's AUROC of what classify.py writes, normal.csv feeds predict.py --normal-probs, and an SNA
classifier loads the plain one's weights. One shared training (module fixture), tiny images."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from helpers import load_script, run_main
from helpers.vindr_cxr_synthetic import IMAGES, write_vinbigdata
from pydicom.data import get_testdata_file
from sklearn.metrics import roc_auc_score

from sna_det import SpectralNormAttention
from sna_det.data.classes import VINDR_CXR_CLASSES
from sna_det.data.datasets import register_vindr_cxr_datasets
from sna_det.data.prepare.vindr_cxr import PrepareOptions, prepare_vindr_cxr
from sna_det.engine import load_weights_strict, setup_cfg
from sna_det.evaluation.classification import auroc
from sna_det.evaluation.vinbigdata import parse_prediction_string

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "VinDr-CXR" / "classification"
CONFIG = CONFIGS / "classifier_R_18.yaml"
REAL_CR = ["RG1_UNCR.dcm", "RG3_UNCR.dcm", "RG1_UNCI.dcm", "RG3_UNCI.dcm"]  # 1841 x 1955 and 1760 x 1760
MAX_SIZE = 48
TINY = "MODEL.CLASSIFIER.INPUT_SIZE 32 DATALOADER.NUM_WORKERS 0 SOLVER.IMS_PER_BATCH 2 SOLVER.BASE_LR 0.0001".split()
CLASSES = [*VINDR_CXR_CLASSES, "No finding"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(DICOM source, prepared folder, config overrides, OUTPUT_DIR of a 2-iteration training)."""
    source = write_vinbigdata(tmp_path_factory.mktemp("vinbigdata"))
    for i, image_id in enumerate(IMAGES):  # the synthetic CSV's boxes on real CR radiographs
        real = get_testdata_file(REAL_CR[i % len(REAL_CR)], download=False)
        shutil.copy(real, source / "train" / f"{image_id}.dicom")
    prepared = tmp_path_factory.mktemp("prepared")
    prepare_vindr_cxr(source, prepared, PrepareOptions(max_size=MAX_SIZE, val_fraction=0.5))
    output = tmp_path_factory.mktemp("run")
    opts = [*TINY, "DATASETS.ROOTS.VINDR_CXR", str(prepared)]
    argv = ["--config-file", CONFIG, *opts, "SOLVER.MAX_ITER", "2", "SEED", "3", "OUTPUT_DIR", output]
    assert run_main("tools/train_classifier.py", *argv) == 0
    yield source, prepared, opts, output
    register_vindr_cxr_datasets(None)


def read_csv(path: Path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def labels_of(coco_json: Path) -> dict:
    """{image id (file stem): (15,) labels} straight from the prepared COCO JSON: findings by category
    name, "No finding" for an image without a box."""
    data = json.loads(coco_json.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    labels = {}
    for image in data["images"]:
        row = np.zeros(len(CLASSES))
        for a in data["annotations"]:
            if a["image_id"] == image["id"]:
                row[CLASSES.index(names[a["category_id"]])] = 1
        row[-1] = row[:-1].sum() == 0
        labels[Path(image["file_name"]).stem] = row
    return labels


def test_auroc_is_scikit_learns_with_ties_and_none_for_one_label():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 30)
        scores = rng.integers(0, 5, 30) / 4  # many ties
        assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auroc([1, 1, 1], [0.1, 0.2, 0.3]) is None and auroc([0, 0], [0.1, 0.2]) is None
    assert auroc([0, 1, 1], [0.9, 0.1, 0.2]) == 0.0


def test_training_writes_auroc_that_is_scikit_learns_on_classify_probabilities(trained, tmp_path):
    _, prepared, opts, output = trained
    records = [json.loads(line) for line in (output / "metrics.json").read_text().splitlines()]
    trained_records = [r for r in records if "total_loss" in r]
    assert trained_records[-1]["iteration"] == 1 and np.isfinite(trained_records[-1]["total_loss"])
    assert (output / "model_final.pth").is_file() and (output / "last_checkpoint").read_text() == "model_final.pth"
    saved = json.loads((output / "auroc_vindr_cxr_val.json").read_text())
    weights = ["MODEL.WEIGHTS", output / "model_final.pth"]
    argv = ["--config-file", CONFIG, "--dataset", "vindr_cxr_val", "--output", tmp_path, *opts, *weights]
    assert run_main("tools/classify.py", *argv) == 0
    rows = read_csv(tmp_path / "probabilities.csv")
    truth = labels_of(prepared / "annotations" / "val.json")
    assert [r["image_id"] for r in rows] == list(truth) and len(rows) == 4
    probabilities = np.array([[float(r[c]) for c in CLASSES] for r in rows])
    labels = np.array([truth[r["image_id"]] for r in rows])
    assert len(np.unique(probabilities[:, 0])) >= 3  # scores differ (a tie: two copies of one radiograph)
    expected = {}
    for k, name in enumerate(CLASSES):
        both = len(set(labels[:, k])) == 2
        expected[name] = roc_auc_score(labels[:, k], probabilities[:, k]) if both else None
    assert list(saved["per_class"]) == CLASSES
    for name, value in expected.items():
        assert (saved["per_class"][name] is None) == (value is None), name
        if value is not None:
            assert saved["per_class"][name] == pytest.approx(value, abs=1e-6), name
    present = [v for v in expected.values() if v is not None]
    assert len(present) >= 3 and saved["mean"] == pytest.approx(np.mean(present), abs=1e-6)
    results = json.loads((output / "inference" / "results.json").read_text())["vindr_cxr_val"]["auroc"]
    assert results["AUROC"] == pytest.approx(100 * saved["mean"], abs=1e-9)
    normal = read_csv(tmp_path / "normal.csv")
    no_finding = [(r["image_id"], float(r["No finding"])) for r in rows]
    assert [(n["image_id"], float(n["normal"])) for n in normal] == no_finding


def test_dicom_files_give_the_dataset_probabilities_and_normal_csv_filters_predict(trained, tmp_path):
    source, prepared, opts, output = trained
    weights = ["MODEL.WEIGHTS", output / "model_final.pth"]
    argv = ["--config-file", CONFIG, "--input", source / "train", "--max-size", MAX_SIZE, "--output", tmp_path / "d"]
    assert run_main("tools/classify.py", *argv, *opts, *weights) == 0
    normal = read_csv(tmp_path / "d" / "normal.csv")
    assert [n["image_id"] for n in normal] == IMAGES
    p = np.array([float(n["normal"]) for n in normal])
    assert ((0 <= p) & (p <= 1)).all()
    argv = ["--config-file", CONFIG, "--dataset", "vindr_cxr_train", "--output", tmp_path / "t", *opts, *weights]
    assert run_main("tools/classify.py", *argv) == 0
    from_dataset = {r["image_id"]: float(r["normal"]) for r in read_csv(tmp_path / "t" / "normal.csv")}
    for n in normal:  # a DICOM read as the preparer rendered it: the probabilities of its PNG
        if n["image_id"] in from_dataset:
            assert float(n["normal"]) == pytest.approx(from_dataset[n["image_id"]], abs=1e-6)

    # predict.py --normal-probs with this normal.csv: thresholds between the images' q = 1 - normal
    detector = ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN.yaml"
    tiny = "MODEL.DEVICE cpu INPUT.MIN_SIZE_TEST 48 INPUT.MAX_SIZE_TEST 48 MODEL.FPN.OUT_CHANNELS 16".split()
    tiny += "MODEL.ROI_BOX_HEAD.FC_DIM 16 TEST.DETECTIONS_PER_IMAGE 3 MODEL.ROI_HEADS.SCORE_THRESH_TEST 0.0".split()
    tiny += ["DATASETS.ROOTS.VINDR_CXR", str(prepared), "DATALOADER.NUM_WORKERS", "0"]
    model = build_model(setup_cfg(detector, tiny))
    torch.save({"model": model.state_dict()}, tmp_path / "detector.pth")
    tiny += ["MODEL.WEIGHTS", str(tmp_path / "detector.pth")]
    train_ids = list(from_dataset)
    p_train = {n["image_id"]: float(n["normal"]) for n in normal if n["image_id"] in from_dataset}
    q = sorted({1 - v for v in p_train.values()})  # (two images may be copies of one radiograph)
    assert len(q) >= 3
    low, high = (q[0] + q[1]) / 2, (q[-2] + q[-1]) / 2
    predict = ["--config-file", detector, "--dataset", "vindr_cxr_train", "--format", "vinbigdata"]
    assert run_main("tools/predict.py", *predict, "--output", tmp_path / "plain", *tiny) == 0
    filtered = [*predict, "--normal-probs", tmp_path / "d" / "normal.csv", "--low", low, "--high", high]
    assert run_main("tools/predict.py", *filtered, "--output", tmp_path / "filtered", *tiny) == 0
    plain = {r["image_id"]: r["PredictionString"] for r in read_csv(tmp_path / "plain" / "submission.csv")}
    after = {r["image_id"]: r["PredictionString"] for r in read_csv(tmp_path / "filtered" / "submission.csv")}
    assert sorted(after) == sorted(train_ids)
    cases = set()
    for image_id, p_normal in p_train.items():
        if 1 - p_normal < low:
            assert after[image_id] == "14 1 0 0 1 1"
            cases.add("normal")
        elif 1 - p_normal < high:
            (*kept, added) = parse_prediction_string(after[image_id], image_id)
            assert kept == parse_prediction_string(plain[image_id], image_id)
            assert added[0] == 14 and added[1] == pytest.approx(p_normal, abs=1e-6) and added[2] == (0, 0, 1, 1)
            cases.add("appended")
        else:
            assert after[image_id] == plain[image_id]
            cases.add("kept")
    assert cases == {"normal", "appended", "kept"}


def test_a_classifier_with_sna_loads_the_plain_classifiers_weights_strictly(trained):
    *_, output = trained
    model = build_model(setup_cfg(CONFIG, ["MODEL.CLASSIFIER.INPUT_SIZE", "32"]))
    load_weights_strict(model, str(output / "model_final.pth"))
    sna = build_model(setup_cfg(CONFIGS / "classifier_R_18_sna.yaml", ["MODEL.CLASSIFIER.INPUT_SIZE", "32"]))
    assert sum(isinstance(m, SpectralNormAttention) for m in sna.modules()) > 0
    report = load_weights_strict(sna, str(output / "model_final.pth"))  # raises on any missing or unexpected key
    assert report.complete and not report.missing and not report.unexpected
    assert all(torch.equal(sna.state_dict()[k], v) for k, v in model.state_dict().items())
    image = [{"image": torch.randint(0, 256, (3, 40, 36), dtype=torch.uint8)}]
    with torch.no_grad():
        assert not torch.allclose(model.eval()(image)[0]["probabilities"], sna.eval()(image)[0]["probabilities"])


def test_compare_runs_puts_the_auroc_of_runs_side_by_side(trained, capsys, tmp_path):
    import shutil

    *_, output = trained
    saved = json.loads((output / "auroc_vindr_cxr_val.json").read_text())
    # one run given twice is refused: a copy of it is a second run
    second = shutil.copytree(output, tmp_path / "second", ignore=shutil.ignore_patterns("*.pth"))
    assert load_script("tools/compare_runs.py").main(load_script("tools/compare_runs.py").parse_args(
        [str(output), str(second), "--names", "D121", "SNA"])) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "auroc, AUROC per class" in table
    for name, value in saved["per_class"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} "))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:] == (["", ""] if value is None else [f"{100 * value:.2f}"] * 2), name


def test_classifier_configs_name_their_attention_and_a_step_trains_on_the_labels_of_the_boxes():
    """Each treatment is its baseline (its _BASE_) with MODEL.ATTENTION.TYPE the word of its name."""
    import yaml

    from sna_det.layers import ATTENTION_TYPES

    for path in sorted(CONFIGS.glob("classifier_*.yaml")):
        words = path.stem.split("_")
        named = [w for w in words if w in ATTENTION_TYPES]
        cfg = setup_cfg(path)
        assert cfg.MODEL.ATTENTION.TYPE == (named[0] if named else "none"), path.name
        assert cfg.MODEL.CLASSIFIER.NO_FINDING and cfg.MODEL.ROI_HEADS.NUM_CLASSES == 14
        if named:
            loaded = yaml.safe_load(path.read_text())
            assert loaded["_BASE_"] == "_".join(w for w in words if w != named[0]) + ".yaml"
            assert set(loaded) == {"_BASE_", "MODEL", "OUTPUT_DIR"} and set(loaded["MODEL"]) == {"ATTENTION"}
    model = build_model(setup_cfg(CONFIGS / "classifier_R_18_sna.yaml", ["MODEL.CLASSIFIER.INPUT_SIZE", "32"]))
    assert model.head.out_features == 15
    from detectron2.structures import Instances

    batch = []
    for classes in ([0, 3], []):
        instances = Instances((40, 36))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        batch.append({"image": torch.randint(0, 256, (3, 40, 36), dtype=torch.uint8), "instances": instances})
    losses = model.train()(batch)
    logits = model.logits(model.preprocess_image(batch))
    target = torch.zeros(2, 15)
    target[0, [0, 3]] = 1
    target[1, 14] = 1  # no box: "No finding"
    assert torch.allclose(losses["loss_cls"], torch.nn.BCEWithLogitsLoss()(logits, target), atol=1e-5)


def test_a_detector_config_or_a_missing_feature_is_refused_in_one_line(trained, capsys, tmp_path):
    detector = ROOT / "configs" / "VinDr-CXR" / "faster_rcnn_R_18_FPN.yaml"
    assert run_main("tools/train_classifier.py", "--config-file", detector) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GeneralizedRCNN" in err[0] and "tools/train_net.py" in err[0]
    argv = ["--config-file", CONFIG, *trained[2], "MODEL.CLASSIFIER.IN_FEATURE", "res4", "OUTPUT_DIR", tmp_path / "run"]
    assert run_main("tools/train_classifier.py", *argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MODEL.CLASSIFIER.IN_FEATURE 'res4'" in err[0] and "['res5']" in err[0]
    assert not any((tmp_path / "run").iterdir())  # refused before anything is written there


def test_a_killed_and_resumed_training_is_the_uninterrupted_one(trained, tmp_path):
    """One iteration, then --resume to the second: the fixture's 2-iteration weights, tensor for tensor."""
    *_, opts, output = trained
    argv = ["--config-file", CONFIG, *opts, "SEED", "3", "OUTPUT_DIR", tmp_path]
    assert run_main("tools/train_classifier.py", *argv, "SOLVER.MAX_ITER", "1") == 0
    assert run_main("tools/train_classifier.py", "--resume", *argv, "SOLVER.MAX_ITER", "2") == 0
    resumed = torch.load(tmp_path / "model_final.pth", weights_only=True)
    straight = torch.load(output / "model_final.pth", weights_only=True)
    assert resumed["iteration"] == straight["iteration"] == 1
    assert resumed["model"].keys() == straight["model"].keys()
    assert all(torch.equal(resumed["model"][k], v) for k, v in straight["model"].items())
