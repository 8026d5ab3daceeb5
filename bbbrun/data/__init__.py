"""Data sources: the registry that maps `data.source` to the module that loads it.

A new source is one module with a `DataSource` class plus one line in
`SOURCES` (and its name in `config.Source`).
"""

from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import check_magnitude
from bbbrun.data.base import Dataset, DataSource
from bbbrun.data.files import CsvSource, NpzSource
from bbbrun.data.functions import FunctionSource, true_function
from bbbrun.data.splits import split_indices
from bbbrun.data.uci import UciSource
from bbbrun.errors import DataError

SOURCES: dict[str, DataSource] = {
    "function": FunctionSource(),
    "csv": CsvSource(),
    "npz": NpzSource(),
    "uci": UciSource(),
}


def source_of(cfg: DataConfig) -> DataSource:
    name = cfg.source.value
    if name not in SOURCES:
        raise DataError(f"data.source {name!r} has no loader (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def make_dataset(cfg: DataConfig, seed: int) -> Dataset:
    data = source_of(cfg).load(cfg, seed)
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
