"""Which rows train, which validate and which are held out for the final test."""

from __future__ import annotations

import numpy as np

from bbbrun.errors import DataError


def split_indices(num_points: int, val_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's split: a seeded choice of int(n * fraction) validation rows; (train, val) sorted."""
    rng = np.random.RandomState(split_seed)
    val_idx = np.sort(rng.choice(num_points, int(num_points * val_fraction), replace=False))
    train_idx = np.setdiff1d(np.arange(num_points), val_idx)
    return train_idx, val_idx


def three_way_split(num_rows: int, test_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Seeded test rows (test_fraction of all), then validation rows (val_fraction of the rest)."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(num_rows)
    num_test = round(num_rows * test_fraction)
    test, rest = np.sort(order[:num_test]), order[num_test:]
    return {**train_val_split(rest, val_fraction, seed), "test": test}


def train_val_split(rows: np.ndarray, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded validation part of `rows` (at least one row, never all of them)."""
    num_val = round(len(rows) * val_fraction)
    if len(rows) < 2 or num_val < 1 or num_val >= len(rows):
        raise DataError(f"{len(rows)} training rows cannot give data.val_fraction={val_fraction} of them to "
                        "validation and keep the rest for training; more rows are needed")
    shuffled = np.random.RandomState(seed + 1).permutation(rows)
    return {"train": np.sort(shuffled[num_val:]), "val": np.sort(shuffled[:num_val])}
