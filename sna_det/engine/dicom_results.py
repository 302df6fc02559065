"""Detections as DICOM objects a PACS viewer shows (highdicom): a Comprehensive SR Measurement Report
(TID 1500) and a Grayscale Softcopy Presentation State, both on the image they were computed on.

- SR: one TID 1410 planar ROI group per detection: the class as a coded finding type
  (``FINDING_CODES``: SNOMED CT where the DICOM standard's code tables hold the finding, else
  ``PROJECT_SCHEME``, declared in the SR's Coding Scheme Identification), its box as a closed
  SCOORD POLYLINE (5 points, the first repeated) in the image's own pixel frame, and its score as
  a TID 300 measurement ``(111012, DCM, "Certainty of Finding")``, unit ``1`` (the detector's class
  score in [0, 1], not a calibrated probability). The algorithm (TID 4019): name, version, and as
  parameters the config's and the weights' SHA-256 and the score threshold.
- GSPS: the boxes as closed POLYLINE graphic objects and ``<class> <score>`` text objects, in
  PIXEL units, on one graphic layer; the source's modality and VOI LUTs; the presentation LUT
  ``INVERSE`` for a MONOCHROME1 image (so that it is shown as its own viewer shows it).

Coordinates: DICOM's (column, row) image frame with (0, 0) the top-left corner of the top-left
pixel, which is the frame of the predictor's boxes (x_min, y_min, x_max, y_max): no half-pixel shift.

What is copied from the source (patient, study, equipment, LUTs) is first checked by
``clean_source``: a value invalid for its VR (e.g. Patient's Age ``48``, not an AS) is emptied (left
out), never passed on. UIDs are derived from the source SOP Instance UID and ``AlgorithmInfo``, so the
same run writes the same UIDs again (a PACS keeps one copy).

Needs highdicom (``pip install sna-det[dicom]``); ``import sna_det`` does not import this module.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import highdicom as hd
import numpy as np
import pydicom
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.valuerep import validate_value

from ..utils import atomic_write_bytes
from ..version import __version__

__all__ = [
    "AlgorithmInfo",
    "DicomOutputs",
    "KINDS",
    "NO_DETECTION",
    "algorithm_of",
    "FINDING_CODES",
    "PROJECT_SCHEME",
    "Detections",
    "build_gsps",
    "build_sr",
    "clean_source",
    "detections_of",
    "file_sha256",
    "finding_code",
    "read_source",
    "sr_path",
    "write_dicom_outputs",
    "write_dicom",
]

PROJECT_SCHEME = "99SNADET"
"""The project's coding scheme ("99" prefix: a private scheme, PS3.16 8.2), for findings without a
SNOMED CT code in the DICOM standard's tables."""

FINDING_CODES: Dict[str, Code] = {
    "Aortic enlargement": Code("AORTIC-ENLARGE", PROJECT_SCHEME, "Aortic enlargement"),
    "Atelectasis": Code("ATELECTASIS", PROJECT_SCHEME, "Atelectasis"),
    "Calcification": Code("18115005", "SCT", "pathologic calcification"),
    "Cardiomegaly": Code("287272002", "SCT", "Cardiomegaly"),
    "Consolidation": Code("CONSOLIDATION", PROJECT_SCHEME, "Consolidation"),
    "ILD": Code("ILD", PROJECT_SCHEME, "Interstitial lung disease"),
    "Infiltration": Code("INFILTRATION", PROJECT_SCHEME, "Infiltration"),
    "Lung Opacity": Code("LUNG-OPACITY", PROJECT_SCHEME, "Lung opacity"),
    "Nodule/Mass": Code("NODULE-MASS", PROJECT_SCHEME, "Nodule or mass"),
    "Other lesion": Code("52988006", "SCT", "Lesion"),
    "Pleural effusion": Code("60046008", "SCT", "Pleural effusion"),
    "Pleural thickening": Code("PLEURAL-THICK", PROJECT_SCHEME, "Pleural thickening"),
    "Pneumothorax": Code("36118008", "SCT", "Pneumothorax"),
    "Pulmonary fibrosis": Code("PULM-FIBROSIS", PROJECT_SCHEME, "Pulmonary fibrosis"),
}
"""VinDr-CXR's 14 findings -> coded concepts (docs/pacs.md lists them)."""

SCORE_CONCEPT = codes.DCM.CertaintyOfFinding
MANUFACTURER = "sna-det"
SERIES_NUMBER = {"sr": 9901, "pr": 9902}
PATIENT_SEX = ("M", "F", "O")


def finding_code(name: str) -> Code:
    """The coded concept of class ``name``: ``FINDING_CODES``' for a VinDr-CXR finding, else a code of
    ``PROJECT_SCHEME`` whose meaning is the name (value: the name if it fits SH's 16 characters, else
    a hash of it)."""
    if name in FINDING_CODES:
        return FINDING_CODES[name]
    value = name if len(name) <= 16 and "\\" not in name else hashlib.sha1(name.encode()).hexdigest()[:16].upper()
    return Code(value, PROJECT_SCHEME, name[:64])


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class AlgorithmInfo:
    """What produced the detections: goes into the SR's algorithm identification and every UID."""

    config_sha256: str
    weights_sha256: str
    score_threshold: float
    name: str = "sna-det detector"
    version: str = __version__
    settings: str = ""
    """Anything else that changes the detections (e.g. how DICOMs are rendered), part of the UIDs."""

    def parameters(self) -> List[str]:
        """The TID 4019 parameters: config and weights hashes, threshold, settings."""
        rows = [f"config sha256 {self.config_sha256}", f"weights sha256 {self.weights_sha256}"]
        rows.append(f"score threshold {self.score_threshold:g}")
        return rows + ([self.settings] if self.settings else [])

    def uid(self, *parts: str) -> str:
        """A UID that is the same for the same algorithm and ``parts``: ``2.25.`` and the integer of a
        name-based UUID (version 5) of them (PS3.5 B.2)."""
        entropy = [self.name, self.version, self.config_sha256, self.weights_sha256]
        name = "\x00".join([*entropy, f"{self.score_threshold!r}", self.settings, *parts])
        return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


@dataclass
class Detections:
    """One image's detections above the threshold, in the DICOM's own pixels."""

    boxes: np.ndarray
    """(N, 4) x_min, y_min, x_max, y_max, float."""
    scores: np.ndarray
    """(N,) in [0, 1]."""
    class_names: Sequence[str]
    """(N,) the class of each box."""


def _invalid(element) -> bool:
    """Whether a (non-sequence) element's value is invalid for its VR (pydicom's validators)."""
    values = element.value if element.VM > 1 else [element.value]
    try:
        for value in values:  # DS and IS values are numbers: their validators read the string
            validate_value(element.VR, str(value) if element.VR in ("DS", "IS") else value, pydicom_config.RAISE)
    except (ValueError, TypeError):
        return True
    return False


def clean_source(source: Dataset) -> Tuple[Dataset, List[str]]:
    """A copy of ``source`` without its pixel data in which every value invalid for its VR (at any
    depth) and a Patient's Sex outside M / F / O is emptied; and the list of what was emptied
    (``"PatientAge '48'"``). The SR and GSPS copy only from this copy."""
    cleaned = Dataset()
    cleaned.update({e.tag: copy.deepcopy(e) for e in source if e.tag < 0x7FE00000})
    if hasattr(source, "file_meta"):
        cleaned.file_meta = copy.deepcopy(source.file_meta)
    problems: List[str] = []

    def walk(ds: Dataset, where: str) -> None:
        for element in ds:
            if element.VR == "SQ":
                for i, item in enumerate(element.value):
                    walk(item, f"{where}{element.keyword or element.tag}[{i}].")
            elif element.value not in (None, "", b"") and (
                _invalid(element) or (element.keyword == "PatientSex" and element.value not in PATIENT_SEX)
            ):
                problems.append(f"{where}{element.keyword or element.tag} {str(element.value)[:40]!r}")
                element.value = None

    walk(cleaned, "")
    return cleaned, problems


def _rectangle(box: Sequence[float]) -> np.ndarray:
    """(5, 2) closed polyline of a box (x_min, y_min, x_max, y_max): corners clockwise, first repeated."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float64)


def _coding_schemes() -> List[CodingSchemeIdentificationItem]:
    """The declaration of ``PROJECT_SCHEME`` (Coding Scheme Identification Sequence)."""
    return [
        CodingSchemeIdentificationItem(
            designator=PROJECT_SCHEME, name="sna-det findings", responsible_organization="sna-det project"
        )
    ]


NO_DETECTION = Code("NO-DETECTION", PROJECT_SCHEME, "No detection at or above the score threshold")
"""The finding of an image on which the model found nothing scoring at least the threshold (an SR says
so, rather than no SR: "nothing found" is told apart from "not run")."""


def _no_detection_group(
    source: Dataset, algorithm: AlgorithmInfo, algorithm_id
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """The image-level group (TID 1501) of an image without a detection: ``NO_DETECTION``, the image referenced."""
    sop_uid = str(source.SOPInstanceUID)
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=algorithm.uid("roi", sop_uid, "none"), identifier="no detection"
        ),
        algorithm_id=algorithm_id,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=NO_DETECTION)],
    )


def build_sr(source: Dataset, detections: Detections, algorithm: AlgorithmInfo) -> hd.sr.ComprehensiveSR:
    """The Comprehensive SR (TID 1500 Measurement Report) of ``detections`` on ``source`` (a header
    cleaned by ``clean_source``): one planar ROI group per box, referencing the source image; without a
    detection, one image-level group whose finding is ``NO_DETECTION``, referencing it."""
    algorithm_id = hd.sr.AlgorithmIdentification(
        name=algorithm.name, version=algorithm.version, parameters=algorithm.parameters(), manufacturer=MANUFACTURER
    )
    sop_uid = str(source.SOPInstanceUID)
    groups = [] if len(detections.boxes) else [_no_detection_group(source, algorithm, algorithm_id)]
    for i, (box, score, name) in enumerate(zip(detections.boxes, detections.scores, detections.class_names)):
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=_rectangle(box),
            source_image=hd.sr.SourceImageForRegion.from_source_image(source),
        )
        tracking = hd.sr.TrackingIdentifier(uid=algorithm.uid("roi", sop_uid, str(i)), identifier=f"detection {i + 1}")
        score_item = hd.sr.Measurement(
            name=SCORE_CONCEPT, value=float(score), unit=codes.UCUM.NoUnits, algorithm_id=algorithm_id
        )
        groups.append(
            hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking,
                referenced_region=region,
                finding_type=finding_code(str(name)),
                algorithm_id=algorithm_id,
                measurements=[score_item],
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=algorithm.uid("device"), name=algorithm.name, manufacturer_name=MANUFACTURER,
            model_name=algorithm.version,
        ),
    )  # fmt: skip
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    return hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=algorithm.uid("sr series", str(source.StudyInstanceUID)),
        series_number=SERIES_NUMBER["sr"],
        sop_instance_uid=algorithm.uid("sr", sop_uid),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="sna-det detections (research)",
        is_complete=True,
        coding_schemes=_coding_schemes(),
    )


def build_gsps(
    source: Dataset, detections: Detections, algorithm: AlgorithmInfo
) -> hd.pr.GrayscaleSoftcopyPresentationState:
    """The Grayscale Softcopy Presentation State drawing ``detections`` on ``source`` (a header cleaned by
    ``clean_source``): each box a closed polyline, each label ``<class> <score>`` a text above its box."""
    layer = "DETECTIONS"
    graphics, texts = [], []
    for box, score, name in zip(detections.boxes, detections.scores, detections.class_names):
        x0, y0, x1, y1 = (float(v) for v in box)
        graphics.append(
            hd.pr.GraphicObject(
                graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
                graphic_data=_rectangle(box),
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                is_filled=False,
            )
        )
        texts.append(
            hd.pr.TextObject(
                text_value=f"{name} {float(score):.2f}"[:64],
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                anchor_point=(x0, y0),
            )
        )
    annotations = []
    if graphics:
        annotations.append(
            hd.pr.GraphicAnnotation(
                referenced_images=[source],
                graphic_layer=hd.pr.GraphicLayer(layer_name=layer, order=1, description="sna-det detections"),
                graphic_objects=graphics,
                text_objects=texts,
            )
        )
    photometric = str(source.get("PhotometricInterpretation", ""))
    shape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    sop_uid = str(source.SOPInstanceUID)
    state = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[source],
        series_instance_uid=algorithm.uid("pr series", str(source.StudyInstanceUID)),
        series_number=SERIES_NUMBER["pr"],
        sop_instance_uid=algorithm.uid("pr", sop_uid),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=algorithm.name,
        software_versions=algorithm.version,
        device_serial_number="0",
        content_label="SNA_DET",
        content_description="sna-det detections (research)",
        graphic_annotations=annotations or None,
        graphic_layers=[hd.pr.GraphicLayer(layer_name=layer, order=1, description="sna-det detections")],
        presentation_lut_transformation=hd.PresentationLUTTransformation(
            presentation_lut_shape=hd.PresentationLUTShapeValues[shape]
        ),
        series_description="sna-det detections (research)",
    )
    if "Laterality" not in state:  # General Series, type 2C: the laterality of the series, unknown here
        state.Laterality = None
    return state


def read_source(path: str | Path) -> Tuple[Dataset, List[str]]:
    """The header of the DICOM at ``path``, cleaned (``clean_source``), and what was emptied."""
    return clean_source(pydicom.dcmread(str(path), stop_before_pixels=True))


def sr_path(folder: Path, source: Dataset, kind: str) -> Path:
    """``folder/<SOPInstanceUID>_<kind>.dcm`` (kind: ``sr`` or ``pr``)."""
    return folder / f"{source.SOPInstanceUID}_{kind}.dcm"


def detections_of(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, names: Sequence[str],
                  score_thr: float) -> Detections:  # fmt: skip
    """The detections scoring at least ``score_thr``, classes as names."""
    keep = np.asarray(scores) >= score_thr
    return Detections(
        np.asarray(boxes, dtype=np.float64)[keep],
        np.asarray(scores, dtype=np.float64)[keep],
        [names[int(c)] for c in np.asarray(classes)[keep]],
    )


def write_dicom(path: Path, dataset: Dataset) -> None:
    """``dataset`` as a DICOM file (with preamble and meta header), atomically."""
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(path, buffer.getvalue())


KINDS = {"dicom-sr": ("sr",), "dicom-gsps": ("pr",), "dicom": ("sr", "pr")}
"""``tools/predict.py --format`` -> the objects written (``sr``: the SR, ``pr``: the presentation state)."""


@dataclass
class DicomOutputs:
    """What ``write_dicom_outputs`` wrote and passed over."""

    written: List[Path]
    by_study: Dict[str, List[Path]]
    """Study Instance UID -> the files written for its images."""
    without_detection: int
    """DICOM inputs with no detection at or above the threshold: an SR saying so (``NO_DETECTION``), no GSPS."""
    not_dicom: int
    """Inputs that are not DICOMs (PNG, JPEG): no SR / GSPS."""
    corrected: List[str]
    """``file: attribute 'value'`` of each invalid source value left out."""


def write_dicom_outputs(
    folder: Path, predictions, names: Sequence[str], algorithm: AlgorithmInfo, kinds: Sequence[str]
) -> DicomOutputs:
    """For every DICOM prediction (``predictor.ImagePrediction``: ``file_name``, ``boxes``, ``scores``,
    ``classes``): ``folder/<SOPInstanceUID>_sr.dcm`` and / or ``_pr.dcm`` (``kinds``: ``sr``, ``pr``) of its
    detections scoring at least ``algorithm.score_threshold``; without one, the SR only (``NO_DETECTION``)."""
    from ..data.dicom import is_dicom_path

    folder.mkdir(parents=True, exist_ok=True)
    out = DicomOutputs([], {}, 0, 0, [])
    for p in predictions:
        if not is_dicom_path(p.file_name):
            out.not_dicom += 1
            continue
        source, problems = read_source(p.file_name)
        out.corrected += [f"{p.file_name}: {problem}" for problem in problems]
        found = detections_of(p.boxes, p.scores, p.classes, names, algorithm.score_threshold)
        out.without_detection += len(found.boxes) == 0
        drawn = kinds if len(found.boxes) else [kind for kind in kinds if kind == "sr"]  # no box to draw: no GSPS
        for kind in drawn:
            path = sr_path(folder, source, kind)
            write_dicom(path, (build_sr if kind == "sr" else build_gsps)(source, found, algorithm))
            out.written.append(path)
            out.by_study.setdefault(str(source.StudyInstanceUID), []).append(path)
    return out


def algorithm_of(cfg, weights: str | Path, score_threshold: float, settings: str = "") -> AlgorithmInfo:
    """The ``AlgorithmInfo`` of a detectron2 config (its full dump hashed, overrides included) and
    weights file (hashed; a path that is not a local file, e.g. a URL, is named instead), at
    ``score_threshold``."""
    config_hash = hashlib.sha256(cfg.dump().encode()).hexdigest()
    weights_hash = file_sha256(weights) if Path(weights).is_file() else f"not hashed, not a local file: {weights}"
    return AlgorithmInfo(config_hash, weights_hash, float(score_threshold), settings=settings)
