"""Detections as DICOM SR and GSPS, through a real PACS: Orthanc with DICOMweb holds real CR radiographs
(pydicom-data's RG1, uncompressed and JPEG 2000), tools/predict.py --dicomweb ... --store predicts on
the study and stores SRs and presentation states back; they are read back from the server and checked
against predictions.json, with dciodvfy (dicom3tools), highdicom, and pydicom alone."""

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from helpers.orthanc import REFUSED_STUDY, free_port
from pydicom.sr.codedict import codes
from test_predict import SMALL, real_dicom, run_predict, tiny  # noqa: F401  (tiny: the module's model fixture)

from sna_det.data.classes import VINDR_CXR_CLASSES
from sna_det.engine.dicom_results import FINDING_CODES, PROJECT_SCHEME, AlgorithmInfo, clean_source, write_dicom_outputs
from sna_det.engine.dicomweb import AUTH_VARIABLES, _session
from sna_det.utils.cli import CommandError

IMAGES = ("RG1_UNCR.dcm", "RG1_J2KR.dcm")  # one study, two images (the second JPEG 2000 lossless)
SR_CLASS, PR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.11.1"


def dciodvfy_errors(path: Path) -> list:
    """dciodvfy's error lines for a file (warnings allowed)."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: apt-get install dicom3tools (tools/setup_env.sh does as root)")
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


def content_items(item, found=None) -> list:
    """Every content item below an SR dataset, depth first (pydicom alone)."""
    found = [] if found is None else found
    for child in item.get("ContentSequence", []):
        found.append(child)
        content_items(child, found)
    return found


def detections_by_pydicom(sr) -> list:
    """(finding type meaning, score, (5, 2) polyline, referenced SOP Instance UID) of each ROI group,
    read with pydicom alone: a CONTAINER whose items hold a SCOORD, a NUM and a 'Finding' CODE."""
    groups = []
    for item in content_items(sr):
        if item.ValueType != "CONTAINER" or item.ConceptNameCodeSequence[0].CodeValue != "125007":
            continue  # (125007, DCM, "Measurement Group")
        children = item.ContentSequence
        scoord = next(c for c in children if c.ValueType == "SCOORD")
        num = next(c for c in children if c.ValueType == "NUM")
        codes_ = [c for c in children if c.ValueType == "CODE"]
        finding = next(c for c in codes_ if c.ConceptNameCodeSequence[0].CodeValue == "121071")  # Finding
        value = num.MeasuredValueSequence[0]
        score = float(value.FloatingPointValue) if "FloatingPointValue" in value else float(value.NumericValue)
        points = np.array(scoord.GraphicData, dtype=np.float64).reshape(-1, 2)
        reference = scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        groups.append((finding.ConceptCodeSequence[0].CodeMeaning, score, points, reference))
    return groups


def rectangle(x, y, w, h) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])


@pytest.fixture(scope="module")
def pacs_run(orthanc, tiny, tmp_path_factory):  # noqa: F811
    """The study uploaded to Orthanc, predict.py --dicomweb ... --store run on it twice; the server's
    client, the study UID, the output folder, the two runs' outputs."""
    client = DICOMwebClient(orthanc.dicomweb_url)
    images = [pydicom.dcmread(real_dicom(name)) for name in IMAGES]
    client.store_instances(images)
    study = str(images[0].StudyInstanceUID)
    config, weights, _ = tiny
    out = tmp_path_factory.mktemp("pacs")
    argv = ["--config-file", config, "--dicomweb", orthanc.dicomweb_url, "--study", study, "--store"]
    argv += ["--score-thr", "0.05", "--max-size", "128", "--output", out, *SMALL, "MODEL.WEIGHTS", weights]
    outputs = []
    for _ in range(2):
        assert run_predict(*argv) == 0
        outputs.append(sorted((out / "dicom").iterdir()))
    return client, study, out, images, outputs


def test_the_findings_codes_are_the_dicom_standards_snomed_codes_or_the_projects():
    """Every VinDr-CXR finding has a code; each SNOMED CT one is in the DICOM standard's tables (pydicom's)
    with that meaning; the others are of the project's scheme."""
    assert sorted(FINDING_CODES) == sorted(VINDR_CXR_CLASSES)
    snomed = {}  # code -> its meanings in the standard's tables (one code may have several)
    for code in (getattr(codes.SCT, k) for k in codes.SCT.dir()):
        snomed.setdefault(code.value, set()).add(code.meaning)
    for name, code in FINDING_CODES.items():
        assert code.scheme_designator in ("SCT", PROJECT_SCHEME), name
        if code.scheme_designator == "SCT":
            assert code.meaning in snomed.get(code.value, ()), name
    assert sum(c.scheme_designator == "SCT" for c in FINDING_CODES.values()) == 5  # as docs/pacs.md lists


def test_invalid_source_values_are_left_out_and_valid_ones_kept():
    source = pydicom.dcmread(real_dicom("RG3_UNCR.dcm"), stop_before_pixels=True)
    source.PatientAge, source.PatientSex, source.StudyDate = "48", "X", "2004-08-26"
    cleaned, problems = clean_source(source)
    assert sorted(problems) == ["PatientAge '48'", "PatientSex 'X'", "StudyDate '2004-08-26'"]
    assert all(cleaned[k].is_empty for k in ("PatientAge", "PatientSex", "StudyDate"))  # present, empty
    assert cleaned.PatientID == source.PatientID == "11RG3" and cleaned.Rows == 1760
    assert "PixelData" not in cleaned and source.PatientAge == "48"  # the source itself is untouched


def test_an_image_without_a_detection_gets_an_sr_saying_so_and_no_presentation_state(tmp_path):
    """Nothing at or above --score-thr on a real CR: its SR (no GSPS: nothing to draw) passes dciodvfy and,
    read with pydicom alone, says NO_DETECTION in one group referencing the image, and no ROI."""
    image = real_dicom("RG1_UNCR.dcm")
    prediction = SimpleNamespace(file_name=str(image), boxes=np.zeros((1, 4)) + 10, scores=np.array([0.2]),
                                 classes=np.array([0]))  # fmt: skip
    algorithm = AlgorithmInfo("c" * 64, "w" * 64, 0.5)
    done = write_dicom_outputs(tmp_path, [prediction], VINDR_CXR_CLASSES, algorithm, ("sr", "pr"))
    source = pydicom.dcmread(image, stop_before_pixels=True)
    assert done.written == [tmp_path / f"{source.SOPInstanceUID}_sr.dcm"] and done.without_detection == 1
    assert dciodvfy_errors(done.written[0]) == []
    items = content_items(pydicom.dcmread(done.written[0]))
    found = [i.ConceptCodeSequence[0] for i in items if i.ValueType == "CODE" and
             i.ConceptNameCodeSequence[0].CodeMeaning == "Finding"]  # fmt: skip
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in found] == [("NO-DETECTION", PROJECT_SCHEME)]
    images = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in items if i.ValueType == "IMAGE"]
    assert images == [source.SOPInstanceUID] and not [i for i in items if i.ValueType == "SCOORD"]


def test_pacs_loop_stores_one_sr_and_gsps_per_image_that_equal_the_predictions(pacs_run):
    client, study, out, images, (first, second) = pacs_run
    coco = json.loads((out / "predictions.json").read_text())
    assert first == second and len(first) == 2 * len(IMAGES)  # the same files, the same names
    by_sop = {}
    for image in coco["images"]:
        sop = Path(image["file_name"]).stem  # retrieved as DIR/dicomweb/<study>/<SOPInstanceUID>.dcm
        by_sop[sop] = [a for a in coco["annotations"] if a["image_id"] == image["id"] and a["score"] >= 0.05]
    assert sorted(by_sop) == sorted(str(i.SOPInstanceUID) for i in images)
    names = {c["id"]: c["name"] for c in coco["categories"]}

    on_server = client.search_for_instances(study_instance_uid=study)
    classes = sorted(row["00080016"]["Value"][0] for row in on_server)
    assert classes == sorted(["1.2.840.10008.5.1.4.1.1.1"] * 2 + [SR_CLASS] * 2 + [PR_CLASS] * 2)  # no duplicate
    for row in on_server:
        series, sop, sop_class = (row[t]["Value"][0] for t in ("0020000E", "00080018", "00080016"))
        if sop_class not in (SR_CLASS, PR_CLASS):
            continue
        stored = client.retrieve_instance(study, series, sop)
        local = next(p for p in first if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == sop)
        assert dciodvfy_errors(local) == []
        assert stored.StudyInstanceUID == study
        if sop_class == SR_CLASS:
            source_sop = local.name.removesuffix("_sr.dcm")
            expected = by_sop[source_sop]
            assert len(expected) > 0
            evidence = stored.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
            assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source_sop
            plain = detections_by_pydicom(stored)
            assert len(plain) == len(expected)
            for (meaning, score, points, reference), a in zip(plain, expected):
                assert reference == source_sop and meaning == names[a["category_id"]]
                assert score == a["score"]
                np.testing.assert_allclose(points, rectangle(*a["bbox"]), atol=0.01)
            report = hd.sr.srread(local)  # and highdicom's reading of it
            groups = report.content.get_planar_roi_measurement_groups()
            assert [g.finding_type.meaning for g in groups] == [m for m, *_ in plain]
            assert [g.get_measurements()[0].value for g in groups] == [s for _, s, *_ in plain]
            for g, (_, _, points, _) in zip(groups, plain):
                np.testing.assert_array_equal(g.roi.value, points)
                assert g.roi.ContentSequence[0].referenced_sop_instance_uid == source_sop
        else:
            source_sop = local.name.removesuffix("_pr.dcm")
            expected = by_sop[source_sop]
            annotation = stored.GraphicAnnotationSequence[0]
            assert annotation.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source_sop
            boxes = [np.array(g.GraphicData, dtype=np.float64).reshape(-1, 2) for g in annotation.GraphicObjectSequence]
            assert [g.GraphicAnnotationUnits for g in annotation.GraphicObjectSequence] == ["PIXEL"] * len(expected)
            for box, a in zip(boxes, expected):
                np.testing.assert_allclose(box, rectangle(*a["bbox"]), atol=0.01)
            texts = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
            assert texts == [f"{names[a['category_id']]} {a['score']:.2f}" for a in expected]
            # RG1 is MONOCHROME1: shown as its own viewer shows it (bone bright), not inverted
            assert images[0].PhotometricInterpretation == "MONOCHROME1" and stored.PresentationLUTShape == "INVERSE"


def test_a_pacs_image_with_invalid_values_gives_valid_objects_and_a_refused_store_stores_nothing(
    orthanc, tiny, tmp_path, capsys  # noqa: F811
):
    """A real CR (RG3) on the PACS carrying a Patient's Age that is not an AS ('48', as an RSNA image does)
    and an unknown Patient's Sex: the SR and GSPS pass dciodvfy and leave both out. The server refuses
    stores into that study (HTTP 403): one line, and nothing of the run is on the server."""
    source = pydicom.dcmread(real_dicom(REFUSED_STUDY))
    source.PatientAge, source.PatientSex = "48", "X"
    client = DICOMwebClient(orthanc.dicomweb_url)
    client.store_instances([source])  # POST /studies: allowed; POST /studies/<this study>: refused
    study = str(source.StudyInstanceUID)
    config, weights, _ = tiny
    with pytest.raises(CommandError, match=r"store 2 instances \(STOW-RS; none stored\): HTTP 403") as error:
        run_predict("--config-file", config, "--dicomweb", orthanc.dicomweb_url, "--study", study, "--store",
                    "--score-thr", "0.05", "--max-size", "128", "--output", tmp_path, *SMALL,
                    "MODEL.WEIGHTS", weights)  # fmt: skip
    assert "\n" not in str(error.value)
    assert f"{source.SOPInstanceUID}.dcm: PatientAge '48'" in capsys.readouterr().out
    on_server = client.search_for_instances(study_instance_uid=study)
    assert [row["00080018"]["Value"][0] for row in on_server] == [source.SOPInstanceUID]
    written = sorted((tmp_path / "dicom").iterdir())
    assert [p.name for p in written] == [f"{source.SOPInstanceUID}_pr.dcm", f"{source.SOPInstanceUID}_sr.dcm"]
    for path in written:
        assert dciodvfy_errors(path) == []
        made = pydicom.dcmread(path)
        assert ("PatientAge" not in made or made["PatientAge"].is_empty) and made["PatientSex"].is_empty
        assert made.PatientID == "11RG3" and made.StudyInstanceUID == source.StudyInstanceUID


def test_an_unreachable_server_and_an_unknown_study_are_one_line(orthanc, tiny, tmp_path):  # noqa: F811
    config, weights, _ = tiny
    common = ["--config-file", config, "--output", tmp_path, *SMALL, "MODEL.WEIGHTS", weights]
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(CommandError, match=r"^DICOMweb server http://127\.0\.0\.1:\d+/dicom-web: unreachable"):
        run_predict("--dicomweb", dead, "--study", "1.2.3", *common)
    with pytest.raises(CommandError, match=r"study 1\.2\.3\.4 not found") as error:
        run_predict("--dicomweb", orthanc.dicomweb_url, "--study", "1.2.3.4", "--store", *common)
    assert "\n" not in str(error.value) and not (tmp_path / "dicom").exists()


def test_credentials_come_from_the_environment(monkeypatch):
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert _session().auth is None and "Authorization" not in _session().headers
    monkeypatch.setenv("SNA_DICOMWEB_USER", "reader")
    monkeypatch.setenv("SNA_DICOMWEB_PASSWORD", "s3cret")
    assert _session().auth == ("reader", "s3cret")
    monkeypatch.setenv("SNA_DICOMWEB_TOKEN", "abc.def")
    assert _session().headers["Authorization"] == "Bearer abc.def" and _session().auth is None


def test_a_machine_without_orthanc_is_told_what_to_install(monkeypatch, tmp_path):
    import helpers.orthanc as orthanc_helper

    monkeypatch.setattr(orthanc_helper, "ORTHANC", str(tmp_path / "no" / "Orthanc"))
    with pytest.raises(RuntimeError, match=r"Debian package orthanc\).*apt-get install orthanc orthanc-dicomweb"):
        orthanc_helper.start_orthanc(tmp_path / "server")
