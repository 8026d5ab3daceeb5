"""Class labels: a target column of integers or names turned into class codes 0..C-1 and the class names.

The classes are those the training rows show: integers in numeric order,
names in alphabetical order. A label in the validation or test rows that the
training rows never show has no output of the model to score it, so it is
refused rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bbbrun.data.table import is_number
from bbbrun.errors import DataError

SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


def label_names(cells: Sequence[str], where: str, first_row: int = 1) -> list[str]:
    """Each label as its class name: integers written canonically ("3.0" -> "3"), names as written, stripped."""
    names = [c.strip() for c in cells]
    empty = next((i for i, c in enumerate(names) if not c), None)
    if empty is not None:
        raise DataError(f"{where}, data row {empty + first_row}: the label is empty; every row needs a class")
    if not all(is_number(c) for c in names):
        return names
    values = np.array([float(c) for c in names])
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if len(bad):
        raise DataError(f"{where}, data row {bad[0] + first_row}: label {names[bad[0]]!r} is not an "
                        "integer; class labels must be integers or names")
    return [str(int(v)) for v in values]


def class_order(names: Sequence[str]) -> tuple[str, ...]:
    """The distinct names sorted: numerically when all are integers, else alphabetically."""
    distinct = set(names)
    if all(n.lstrip("-").isdigit() for n in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


def encode_labels(cells: Sequence[str], rows: dict[str, np.ndarray], where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N,) float64 class codes and the class names, the classes taken from rows["train"]."""
    names = label_names(cells, where)
    classes = class_order([names[i] for i in rows["train"]])
    if len(classes) < 2:
        raise DataError(f"{where}: the training rows hold one class only ({classes[0]!r}); a classifier needs "
                        "at least two")
    code = {name: i for i, name in enumerate(classes)}
    for split, index in rows.items():
        unseen = next((i for i in index if names[i] not in code), None)
        if unseen is not None:
            raise DataError(f"{where}: class {names[unseen]!r} (data row {unseen + 1}) is in the "
                            f"{SPLIT_NAMES.get(split, split)} rows but never in the training rows; the model "
                            "could not predict it")
    return np.array([code[n] for n in names], dtype=np.float64), classes


def codes_of(cells: Sequence[str], classes: tuple[str, ...], where: str, first_row: int = 1) -> np.ndarray:
    """(n,) float64 codes of labels under a trained model's classes; an unknown class names its row."""
    names = label_names(cells, where, first_row)
    code = {name: i for i, name in enumerate(classes)}
    unknown = next((i for i, n in enumerate(names) if n not in code), None)
    if unknown is not None:
        raise DataError(f"{where}, data row {first_row + unknown}: class {names[unknown]!r} is not one the model "
                        f"was trained on ({', '.join(classes[:20])})")
    return np.array([code[n] for n in names], dtype=np.float64)
