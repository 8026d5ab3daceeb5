"""`data.source: uci`: a benchmark folder in the layout of Hernández-Lobato & Adams (2015).

    data.txt                 the whole table, whitespace separated, no header
    index_features.txt       0-based input columns;  index_target.txt: the target column
    index_train_K.txt, index_test_K.txt   0-based rows of split K

Split K's test rows are held out for the final metrics; a validation part
(data.val_fraction) of its training rows serves early diagnostics and tuning.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import assemble, check_finite
from bbbrun.data.base import Dataset
from bbbrun.data.splits import train_val_split
from bbbrun.data.table import check_table_size
from bbbrun.errors import DataError

REQUIRED_FILES = ("data.txt", "index_features.txt", "index_target.txt")


class UciSource:
    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        folder = Path(str(cfg.path))
        table = read_matrix(folder)
        features, target = read_columns(folder, table.shape[1])
        train, test = split_rows(folder, cfg.split, len(table))
        rows = {**train_val_split(train, cfg.val_fraction, cfg.split_seed), "test": test}
        names = tuple(f"c{j}" for j in features)
        return assemble(table[:, features], table[:, target], rows, names, f"c{target}")

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return None


MAX_SPLITS = 10_000
SPLIT_FILE = re.compile(r"index_(?:train|test)_(\d{1,9})\.txt")


def num_splits(folder: Path) -> int:
    """How many splits the folder holds: n_splits.txt's count when it has one, else one past the highest K of
    its index files. Every split below that needs both of its files, so a lost file is an error rather
    than a benchmark that quietly reports fewer splits."""
    declared = read_split_count(folder / "n_splits.txt")
    if declared is None:
        found = [int(m.group(1)) for p in folder.iterdir() if (m := SPLIT_FILE.fullmatch(p.name))]
        declared = max(found) + 1 if found else 0
    if declared > MAX_SPLITS:
        raise DataError(f"{folder} has {declared} splits; at most {MAX_SPLITS} are supported")
    for split in range(declared):
        for kind in ("train", "test"):
            if not (folder / f"index_{kind}_{split}.txt").is_file():
                raise DataError(f"{folder} has no index_{kind}_{split}.txt, yet holds {declared} splits "
                                "(n_splits.txt or its other index files); every split needs both index files")
    return declared


def read_split_count(path: Path) -> int | None:
    """n_splits.txt's whole number, or None when the folder has none."""
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()[:40]
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    if not text.isdigit():
        raise DataError(f"{path} must hold one whole number (the number of splits), got {text!r}")
    return int(text)


def read_matrix(folder: Path) -> np.ndarray:
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; data.source=uci needs a folder in the UCI benchmark layout")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise DataError(f"{folder} has no {name}; a UCI benchmark folder needs {', '.join(REQUIRED_FILES)} "
                            "and index_train_K.txt / index_test_K.txt")
    check_table_size(folder / "data.txt", "a benchmark's data.txt")
    try:
        table = np.loadtxt(folder / "data.txt", dtype=np.float64, ndmin=2)
    except OSError as err:
        raise DataError(f"cannot read {folder / 'data.txt'}: {err.strerror or err}") from None
    except ValueError as err:
        raise DataError(f"{folder / 'data.txt'} is not a table of numbers ({str(err)[:120]})") from None
    check_finite(table, np.zeros(len(table)), str(folder / "data.txt"))
    return table


def read_indices(path: Path, limit: int, what: str) -> np.ndarray:
    """0-based indices from a one-per-line file, each in [0, limit), none twice."""
    if not path.is_file():
        raise DataError(f"{path} is missing ({what})")
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    except ValueError:
        raise DataError(f"{path} must hold one whole number per line ({what})") from None
    if len(values) == 0 or not np.all(values == np.round(values)):
        raise DataError(f"{path} must hold one whole number per line ({what})")
    index = values.astype(np.int64)
    if index.min() < 0 or index.max() >= limit:
        raise DataError(f"{path}: index {index.max() if index.max() >= limit else index.min()} is out of range "
                        f"0..{limit - 1} ({what})")
    if len(np.unique(index)) != len(index):
        raise DataError(f"{path} lists an index twice ({what})")
    return index


def read_columns(folder: Path, num_columns: int) -> tuple[np.ndarray, int]:
    features = read_indices(folder / "index_features.txt", num_columns, "input columns")
    target = read_indices(folder / "index_target.txt", num_columns, "the target column")
    if len(target) != 1:
        raise DataError(f"{folder / 'index_target.txt'} must name exactly one column, got {len(target)}")
    if target[0] in features:
        raise DataError(f"{folder}: the target column {target[0]} is also an input column")
    return features, int(target[0])


def split_rows(folder: Path, split: int, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    total = num_splits(folder)
    if split >= total:
        raise DataError(f"data.split={split} but {folder} has {total} splits (0..{total - 1})" if total else
                        f"{folder} has no index_test_0.txt; a UCI benchmark folder needs its split files")
    train = read_indices(folder / f"index_train_{split}.txt", num_rows, f"training rows of split {split}")
    test = read_indices(folder / f"index_test_{split}.txt", num_rows, f"test rows of split {split}")
    overlap = np.intersect1d(train, test)
    if len(overlap):
        raise DataError(f"{folder}: split {split}'s training and test rows overlap (row {overlap[0]})")
    return np.sort(train), np.sort(test)
