"""A given split of the images (``--split-file``): a JSON object ``{split name: [image ids]}``.

Replaces the seeded stratified split (``split.py``) when a published split must be reproduced, e.g.
the one of the paper's authors (``datasets/splits/vindr_cxr_sfsattention.json``, README there). Any
split names are allowed (letters, digits, ``_``, ``-``: they become ``annotations/<name>.json``).
Images of the annotations that are in no list are left out and counted; ids in a list that the
annotations do not have are named and counted; an id in two lists, or twice in one, is an error.

``read_pickled_id_list`` reads a pickled Python list of strings (how the authors published theirs)
without running code from the file: its unpickler resolves no global name, so only plain lists,
strings and numbers can come out, and anything else is refused.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List

from .problems import VinDrInputError

__all__ = ["SplitFromFile", "assign_split_file", "read_pickled_id_list", "read_split_file"]

SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def read_split_file(path: str | Path) -> Dict[str, List[str]]:
    """``{split: [image_id, ...]}`` in the file's order; ``VinDrInputError`` naming the file and field if invalid."""
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise VinDrInputError(f"{path}: cannot read the split file ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VinDrInputError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(data, dict) or not data:
        raise VinDrInputError(f"{path}: expected a JSON object {{split name: [image ids]}} with at least one split")
    seen: Dict[str, str] = {}
    for name, ids in data.items():
        if not SPLIT_NAME.fullmatch(name):
            raise VinDrInputError(f"{path}: split name {name!r} is not letters, digits, '_' or '-'")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise VinDrInputError(f"{path}: field {name} is not a list of non-empty image id strings")
        for image_id in ids:
            if image_id in seen:
                where = "twice" if seen[image_id] == name else f"also in {seen[image_id]}"
                raise VinDrInputError(f"{path}: field {name}: image id {image_id} is {where}")
            seen[image_id] = name
    return {name: list(ids) for name, ids in data.items()}


@dataclass
class SplitFromFile:
    """The images of the annotations assigned to the file's splits."""

    split_of: Dict[str, str]
    """image_id -> split name, for the images of the annotations that are in a list."""
    splits: List[str]
    """The file's split names, in its order."""
    left_out: int
    """Images of the annotations in no list."""
    unknown_ids: Dict[str, List[str]]
    """split -> ids of its list that the annotations do not have."""


def assign_split_file(lists: Dict[str, List[str]], image_ids: Iterable[str]) -> SplitFromFile:
    """Assign ``image_ids`` (every image of the annotations) to the splits of ``lists`` (``read_split_file``)."""
    known = set(image_ids)
    split_of = {i: name for name, ids in lists.items() for i in ids if i in known}
    unknown = {name: [i for i in ids if i not in known] for name, ids in lists.items()}
    return SplitFromFile(split_of, list(lists), len(known - set(split_of)), unknown)


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Builds containers and scalars only: any class or function named in the pickle is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused: the pickle names {module}.{name} (only lists of strings are read)")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused: the pickle uses a persistent id")


def read_pickled_id_list(path: str | Path) -> List[str]:
    """A pickled list of image id strings, unpickled without resolving any global (module docstring)."""
    try:
        value = _NoGlobalsUnpickler(io.BytesIO(Path(path).read_bytes())).load()
    except OSError as error:
        raise VinDrInputError(f"{path}: cannot read ({error.strerror})") from None
    except Exception as error:  # any malformed pickle: one line naming the file
        raise VinDrInputError(f"{path}: not a pickled list of strings ({type(error).__name__}: {error})") from None
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise VinDrInputError(f"{path}: holds a {type(value).__name__}, not a list of strings")
    return value
