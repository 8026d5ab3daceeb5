"""New inputs to predict at, read from a CSV file by feature name."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from bbbrun.errors import DataError
from bbbrun.files import check_readable_file


def read_inputs_csv(path: Path, feature_names: tuple[str, ...]) -> np.ndarray:
    """The named feature columns of a CSV file (any order, extra columns ignored) as float32 (N, d)."""
    check_readable_file(path, "CSV input", DataError)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    names = ("column named " if len(feature_names) == 1 else "columns named ") + ", ".join(map(repr, feature_names))
    if not rows:
        raise DataError(f"{path} needs a header with a {names} and at least one row")
    missing = [n for n in feature_names if n not in rows[0]]
    if missing:
        raise DataError(f"{path} has no column named {missing[0]!r}; the model's inputs are the {names}")
    values = [[_parse(path, i, n, row.get(n)) for n in feature_names] for i, row in enumerate(rows)]
    return np.array(values, np.float32).reshape(len(rows), len(feature_names))


def _parse(path: Path, index: int, name: str, text: str | None) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path}, data row {index + 1}: {name} must be a finite number, got {text!r}")
    return value
