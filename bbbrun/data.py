"""Synthetic regression data, CSV input, and the train/validation split."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbbrun.config import DataConfig, Function
from bbbrun.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """A split regression data set as float32 column vectors, shape (N, 1)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    f_train: np.ndarray  # the noiseless function at x_train
    f_val: np.ndarray


def true_function(name: Function, x: np.ndarray) -> np.ndarray:
    if name is Function.SEED_CUBIC:
        # Written as the tutorial writes it: 0.2x^3 - 2x^(2+1) + 8x = -1.8x^3 + 8x.
        return 0.2 * np.power(x, 3) - 2 * np.power(x, 2 + 1) + 8 * x
    if name is Function.SINE:
        return np.sin(2.0 * x) * 3.0 + 0.5 * x
    raise DataError(f"unknown data.function {name!r}")


def split_indices(num_points: int, val_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's split: a seeded choice of int(n * fraction) validation points."""
    rng = np.random.RandomState(split_seed)
    val_idx = np.sort(rng.choice(num_points, int(num_points * val_fraction), replace=False))
    train_idx = np.setdiff1d(np.arange(num_points), val_idx)
    return train_idx, val_idx


def make_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """Evenly spaced x, y = f(x) + N(0, noise_std^2) noise drawn from `seed`."""
    x = np.linspace(cfg.x_min, cfg.x_max, cfg.num_points)
    f = true_function(cfg.function, x)
    # The legacy RandomState stream matches the tutorial's np.random.seed(seed).
    y = f + np.random.RandomState(seed).normal(0.0, cfg.noise_std, cfg.num_points)
    train_idx, val_idx = split_indices(cfg.num_points, cfg.val_fraction, cfg.split_seed)

    def col(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32).reshape(-1, 1)

    return Dataset(
        x_train=col(x[train_idx]), y_train=col(y[train_idx]),
        x_val=col(x[val_idx]), y_val=col(y[val_idx]),
        f_train=col(f[train_idx]), f_val=col(f[val_idx]),
    )


def read_x_csv(path: Path) -> np.ndarray:
    """Read the `x` column of a CSV file as a float32 column vector."""
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a CSV file with a column 'x'")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    if not rows or "x" not in rows[0]:
        raise DataError(f"{path} needs a header with a column named 'x' and at least one row")
    return np.array([_parse_x(path, i, row.get("x")) for i, row in enumerate(rows)], np.float32).reshape(-1, 1)


def _parse_x(path: Path, index: int, text: str | None) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataError(f"{path}, data row {index + 1}: x must be a finite number, got {text!r}")
    return value
