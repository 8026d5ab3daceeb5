"""Generated data: a known function of one input plus noise, or 2-D classes (`shapes`)."""

from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig, Function
from bbbrun.data.base import Dataset, column
from bbbrun.data.shapes import LABELLED_FUNCTIONS, labelled_dataset
from bbbrun.data.splits import split_indices
from bbbrun.errors import DataError

# Blundell et al. 2015, sec. 5.2, draw their Figure 5 over this range around training x in [0, 0.5].
BLUNDELL_PLOT_RANGE = (-0.2, 1.2)


def true_function(name: Function, x: np.ndarray) -> np.ndarray:
    if name is Function.SEED_CUBIC:
        # Written as the tutorial writes it: 0.2x^3 - 2x^(2+1) + 8x = -1.8x^3 + 8x.
        return 0.2 * np.power(x, 3) - 2 * np.power(x, 2 + 1) + 8 * x
    if name is Function.SINE:
        return np.sin(2.0 * x) * 3.0 + 0.5 * x
    if name is Function.BLUNDELL_TOY:
        return blundell_toy(x, np.zeros_like(x))
    raise DataError(f"unknown data.function {name!r}")


def blundell_toy(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """y = x + 0.3 sin(2 pi (x + eps)) + 0.3 sin(4 pi (x + eps)) + eps (Blundell et al. 2015, sec. 5.2)."""
    return x + 0.3 * np.sin(2 * np.pi * (x + eps)) + 0.3 * np.sin(4 * np.pi * (x + eps)) + eps


class FunctionSource:
    """`data.source: function`: y = f(x) + N(0, noise_std^2) noise drawn from the seed.

    The tutorial's functions take evenly spaced x; Blundell's toy draws x
    uniformly and puts its noise inside the sines too, as the paper does.
    """

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        if cfg.function in LABELLED_FUNCTIONS:
            raise DataError(f"data.function={cfg.function.value} draws class labels; train it with "
                            "model.likelihood=categorical")
        x, f, y = self.generate(cfg, seed)
        train_idx, val_idx = split_indices(cfg.num_points, cfg.val_fraction, cfg.split_seed)
        return Dataset(
            x_train=column(x[train_idx]), y_train=column(y[train_idx]),
            x_val=column(x[val_idx]), y_val=column(y[val_idx]),
            feature_names=("x",), f_train=column(f[train_idx]), f_val=column(f[val_idx]),
        )

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        if cfg.function not in LABELLED_FUNCTIONS:
            raise DataError(f"data.function={cfg.function.value} is a regression function; a classifier needs "
                            f"class labels: data.function {' or '.join(f.value for f in LABELLED_FUNCTIONS)}")
        return labelled_dataset(cfg, seed)

    def generate(self, cfg: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, f(x), y) for every point, float64."""
        # The legacy RandomState stream matches the tutorial's np.random.seed(seed).
        rng = np.random.RandomState(seed)
        if cfg.function is Function.BLUNDELL_TOY:
            x = rng.uniform(cfg.x_min, cfg.x_max, cfg.num_points)
            return x, true_function(cfg.function, x), blundell_toy(x, rng.normal(0.0, cfg.noise_std, x.shape))
        x = np.linspace(cfg.x_min, cfg.x_max, cfg.num_points)
        f = true_function(cfg.function, x)
        return x, f, f + rng.normal(0.0, cfg.noise_std, cfg.num_points)

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        if cfg.function in LABELLED_FUNCTIONS:
            return None
        return true_function(cfg.function, np.asarray(x, dtype=np.float64).reshape(-1))

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return BLUNDELL_PLOT_RANGE if cfg.function is Function.BLUNDELL_TOY else None
