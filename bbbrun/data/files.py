"""A researcher's own data: `data.source: csv` (a table with a header) and `npz` (arrays x and y)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import assemble, check_finite
from bbbrun.data.base import Dataset
from bbbrun.data.encode import categories_of, check_numeric, encode, numeric_column
from bbbrun.data.labels import encode_labels
from bbbrun.data.splits import three_way_split
from bbbrun.data.table import Table, read_table
from bbbrun.errors import DataError
from bbbrun.files import check_readable_file


class CsvSource:
    """Columns by name: data.target (required), data.features (default: every other), data.categorical.

    The target is a number (regression) or, for a classifier, a class label: an integer or a name.
    """

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        table, features = read_csv_inputs(cfg)
        target = str(cfg.target)
        y = numeric_column(table, target)
        rows = three_way_split(len(y), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        categories = {n: categories_of(table, n, rows["train"]) for n in cfg.categorical if n in features}
        return assemble(encode(table, features, categories), y, rows, features, target, categories)

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        table, features = read_csv_inputs(cfg)
        target = str(cfg.target)
        rows = three_way_split(len(table.rows), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        y, classes = encode_labels(table.column(target), rows, f"{table.path}, column {target!r}")
        categories = {n: categories_of(table, n, rows["train"]) for n in cfg.categorical if n in features}
        return assemble(encode(table, features, categories), y, rows, features, target, categories, classes)

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return None


def read_csv_inputs(cfg: DataConfig) -> tuple[Table, tuple[str, ...]]:
    """The table and its input column names, every named column checked to exist and inputs to be numbers."""
    table = read_table(Path(str(cfg.path)))
    target = str(cfg.target)
    table.require([target], "data.target")
    features = cfg.features or tuple(n for n in table.header if n != target)
    table.require(list(features), "data.features")
    table.require(list(cfg.categorical), "data.categorical")
    if target in features:
        raise DataError(f"data.target {target!r} is also listed in data.features")
    if target in cfg.categorical:
        raise DataError(f"data.target {target!r} is listed in data.categorical, which names inputs to one-hot "
                        "encode; a classifier's text labels need model.likelihood=categorical instead")
    stray = [n for n in cfg.categorical if n not in features]
    if stray:
        raise DataError(f"data.categorical names {stray[0]!r}, which is not an input (data.features)")
    if not features:
        raise DataError(f"{table.path} has no input column besides the target {target!r}")
    check_numeric(table, features, cfg.categorical)
    return table, features


class NpzSource:
    """Arrays `x` (n, d) or (n,) and `y` (n,) or (n, 1); inputs named x0, x1, ..."""

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        x, y = read_npz(Path(str(cfg.path)))
        rows = three_way_split(len(y), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        names = tuple(f"x{j}" for j in range(x.shape[1]))
        return assemble(x, y, rows, names, "y")

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        """y holds integer class labels; they name the classes."""
        x, y = read_npz(Path(str(cfg.path)))
        rows = three_way_split(len(y), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        codes, classes = encode_labels([repr(float(v)) for v in y], rows, f"{cfg.path}, array y")
        names = tuple(f"x{j}" for j in range(x.shape[1]))
        return assemble(x, codes, rows, names, "y", classes=classes)

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return None


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x as (n, d) float64 and y as (n,), checked; pickled objects are refused, never loaded."""
    check_readable_file(path, "NPZ data", DataError)
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an NPZ file (a zip archive of arrays, as numpy.savez writes); "
                        "data.source=csv reads a table with a header")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise DataError(f"{path} has no array {missing[0]!r}; an NPZ data file needs arrays x and y "
                                f"(it has {', '.join(archive.files) or 'none'})")
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as err:
        if "pickle" in str(err):
            raise DataError(f"{path}: its arrays hold pickled Python objects, which bbbrun never loads; save x "
                            "and y as numeric arrays") from None
        raise DataError(f"{path} is not a readable NPZ file of numeric arrays ({str(err)[:120]})") from None
    return shape_npz(path, x, y)


def shape_npz(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
        raise DataError(f"{path}: x and y must be numeric arrays, got {x.dtype} and {y.dtype}")
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: expected x of shape (n, d) or (n,) and y of shape (n,) or (n, 1) with the same "
                        f"n > 0 and d > 0, got {x.shape} and {y.shape}")
    x, y = x.astype(np.float64), y.astype(np.float64)
    check_finite(x, y, str(path))
    return x, y
