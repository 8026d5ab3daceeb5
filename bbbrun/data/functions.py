"""Generated regression data: a known function of one input plus Gaussian noise."""

from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig, Function
from bbbrun.data.base import Dataset, column
from bbbrun.data.splits import split_indices
from bbbrun.errors import DataError


def true_function(name: Function, x: np.ndarray) -> np.ndarray:
    if name is Function.SEED_CUBIC:
        # Written as the tutorial writes it: 0.2x^3 - 2x^(2+1) + 8x = -1.8x^3 + 8x.
        return 0.2 * np.power(x, 3) - 2 * np.power(x, 2 + 1) + 8 * x
    if name is Function.SINE:
        return np.sin(2.0 * x) * 3.0 + 0.5 * x
    raise DataError(f"unknown data.function {name!r}")


class FunctionSource:
    """`data.source: function`: evenly spaced x, y = f(x) + N(0, noise_std^2) noise drawn from the seed."""

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        x = np.linspace(cfg.x_min, cfg.x_max, cfg.num_points)
        f = true_function(cfg.function, x)
        # The legacy RandomState stream matches the tutorial's np.random.seed(seed).
        y = f + np.random.RandomState(seed).normal(0.0, cfg.noise_std, cfg.num_points)
        train_idx, val_idx = split_indices(cfg.num_points, cfg.val_fraction, cfg.split_seed)
        return Dataset(
            x_train=column(x[train_idx]), y_train=column(y[train_idx]),
            x_val=column(x[val_idx]), y_val=column(y[val_idx]),
            feature_names=("x",), f_train=column(f[train_idx]), f_val=column(f[val_idx]),
        )

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return true_function(cfg.function, np.asarray(x, dtype=np.float64).reshape(-1))
