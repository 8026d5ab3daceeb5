"""What every data source returns, and the interface a new source implements.

A source turns the `data:` section of a config into a split data set of
(N, d) inputs and (N, 1) targets: training rows, validation rows (early
diagnostics, plots of the fit, tuning) and optionally test rows (final
metrics only). Ground truth (the noiseless function) is optional: generated
data has it, files and benchmark folders do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from bbbrun.config import DataConfig


@dataclass(frozen=True)
class Dataset:
    """A split data set: inputs (N, d) and targets (N, 1), float32 (class codes for a classifier)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    feature_names: tuple[str, ...] = ("x",)
    f_train: np.ndarray | None = None  # the noiseless function at x_train, when known
    f_val: np.ndarray | None = None
    x_test: np.ndarray | None = None  # held out for the final metrics, when the source has test rows
    y_test: np.ndarray | None = None
    target_name: str = "y"
    # Categorical inputs: their categories in one-hot order (seen in the training rows).
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Which rows of the source each split took, for audits and re-scoring (files and folders).
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # things about the data its user should know (a constant column)
    # Class labels: the class names in code order, targets holding codes 0..C-1; empty for regression.
    classes: tuple[str, ...] = ()

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(self.feature_names, self.target_name, self.categories, self.classes)

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(x, y) of each split present: train, val and, when held out, test."""
        parts = {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val)}
        if self.x_test is not None and self.y_test is not None:
            parts["test"] = (self.x_test, self.y_test)
        return parts


@dataclass(frozen=True)
class InputSpec:
    """What the model's inputs are: the raw columns by name, how categories one-hot encode, the target's name."""

    feature_names: tuple[str, ...]
    target_name: str = "y"
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: tuple[str, ...] = ()  # the target's class names (a classifier), in output order


class DataSource(Protocol):
    """One kind of data (`data.source`): generated functions, CSV and NPZ files, benchmark folders."""

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        """The split data set the config describes; `seed` drives any randomness in generating it."""
        ...

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        """The noiseless target at new inputs x (N, d) as (N,), or None when it is unknown."""
        ...

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        """An input range to draw the predictive over beyond the data (1-D sources that have one)."""
        ...


@runtime_checkable
class LabelledSource(Protocol):
    """A source that can also give class labels as targets (`model.likelihood: categorical`)."""

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        """The split data set with class codes 0..C-1 as targets and the class names in `classes`."""
        ...


def column(a: np.ndarray) -> np.ndarray:
    """A float32 column vector (N, 1)."""
    return a.astype(np.float32).reshape(-1, 1)
