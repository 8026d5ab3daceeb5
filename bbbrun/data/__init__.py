"""Data sources: the registry that maps `data.source` to the module that loads it.

A new source is one module with a `DataSource` class plus one line in
`SOURCES` (and its name in `config.Source`).
"""

from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import check_magnitude
from bbbrun.data.base import Dataset, DataSource, LabelledSource
from bbbrun.data.files import CsvSource, NpzSource
from bbbrun.data.functions import FunctionSource, true_function
from bbbrun.data.idx import IdxSource
from bbbrun.data.scikit import SklearnSource
from bbbrun.data.splits import split_indices
from bbbrun.data.uci import UciSource
from bbbrun.errors import DataError

SOURCES: dict[str, DataSource] = {
    "function": FunctionSource(),
    "csv": CsvSource(),
    "npz": NpzSource(),
    "uci": UciSource(),
    "sklearn": SklearnSource(),
    "idx": IdxSource(),
}


def source_of(cfg: DataConfig) -> DataSource:
    name = cfg.source.value
    if name not in SOURCES:
        raise DataError(f"data.source {name!r} has no loader (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def make_dataset(cfg: DataConfig, seed: int, task: str = "regression") -> Dataset:
    """The data set for a model's task (its likelihood's `task`): numeric targets, or class labels."""
    source = source_of(cfg)
    if task != "classification":
        data = source.load(cfg, seed)
    elif not isinstance(source, LabelledSource):
        raise DataError(f"data.source={cfg.source.value} gives numeric targets, not class labels; a classifier "
                        "reads csv, npz, sklearn, idx or data.function two_moons / spirals")
    else:
        data = source.load_labelled(cfg, seed)
    check_magnitude(data)
    return data


def ground_truth(cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
    return source_of(cfg).ground_truth(cfg, x)


def plot_range(cfg: DataConfig) -> tuple[float, float] | None:
    return source_of(cfg).plot_range(cfg)


__all__ = [
    "SOURCES",
    "DataSource",
    "Dataset",
    "ground_truth",
    "make_dataset",
    "plot_range",
    "split_indices",
    "true_function",
]
