"""What every data source returns, and the interface a new source implements.

A source turns the `data:` section of a config into a split data set of
(N, d) inputs and (N, 1) targets. Ground truth (the noiseless function) is
optional: generated data has it, files and benchmark folders do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bbbrun.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    """A split regression data set: inputs (N, d) and targets (N, 1), float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    feature_names: tuple[str, ...] = ("x",)
    f_train: np.ndarray | None = None  # the noiseless function at x_train, when known
    f_val: np.ndarray | None = None

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])


class DataSource(Protocol):
    """One kind of data (`data.source`): generated functions today; files and benchmark folders next."""

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        """The split data set the config describes; `seed` drives any randomness in generating it."""
        ...

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        """The noiseless target at new inputs x (N, d) as (N,), or None when it is unknown."""
        ...


def column(a: np.ndarray) -> np.ndarray:
    """A float32 column vector (N, 1)."""
    return a.astype(np.float32).reshape(-1, 1)
