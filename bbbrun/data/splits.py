"""Which rows train and which validate."""

from __future__ import annotations

import numpy as np


def split_indices(num_points: int, val_fraction: float, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's split: a seeded choice of int(n * fraction) validation rows; (train, val) sorted."""
    rng = np.random.RandomState(split_seed)
    val_idx = np.sort(rng.choice(num_points, int(num_points * val_fraction), replace=False))
    train_idx = np.setdiff1d(np.arange(num_points), val_idx)
    return train_idx, val_idx
