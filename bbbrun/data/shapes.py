"""Generated 2-D classification data for teaching pictures: two interleaved moons and two spirals.

Points alternate between the classes (so the classes stay balanced), lie on
their curve at a uniformly drawn position and get N(0, noise_std^2) noise on
each coordinate; everything is drawn from the run's seed.
"""

from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig, Function
from bbbrun.data.base import Dataset, column
from bbbrun.data.splits import split_indices

CLASSES = ("0", "1")
SPIRAL_TURNS = 1.5  # each arm winds one and a half turns (3 pi radians)
LABELLED_FUNCTIONS = (Function.TWO_MOONS, Function.SPIRALS)


def two_moons(labels: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(N, 2) points: class 0 on the upper unit half circle, class 1 on a lower one shifted right and up."""
    angle = np.pi * position
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    return np.where(labels[:, None] == 0, upper, lower)


def spirals(labels: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(N, 2) points on two arms of an Archimedean spiral, the second the first turned by pi."""
    radius = 0.25 + 0.75 * position
    angle = 2 * np.pi * SPIRAL_TURNS * position + np.pi * labels
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def generate_classes(cfg: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) inputs and (N,) class codes of data.function two_moons or spirals."""
    rng = np.random.RandomState(seed)
    labels = np.arange(cfg.num_points) % 2
    position = rng.uniform(0.0, 1.0, cfg.num_points)
    curve = two_moons if cfg.function is Function.TWO_MOONS else spirals
    x = curve(labels, position) + rng.normal(0.0, cfg.noise_std, (cfg.num_points, 2))
    return x, labels.astype(np.float64)


def labelled_dataset(cfg: DataConfig, seed: int) -> Dataset:
    x, y = generate_classes(cfg, seed)
    train, val = split_indices(cfg.num_points, cfg.val_fraction, cfg.split_seed)
    return Dataset(
        x_train=x[train].astype(np.float32), y_train=column(y[train]),
        x_val=x[val].astype(np.float32), y_val=column(y[val]),
        feature_names=("x1", "x2"), target_name="class", classes=CLASSES,
    )
