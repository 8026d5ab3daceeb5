"""`data.source: sklearn`: scikit-learn's bundled data sets (no download), behind the optional extra.

digits, iris, wine and breast_cancer are classification sets (`model.likelihood:
categorical`); diabetes is a regression set. Rows split as a CSV's do:
data.test_fraction held out, data.val_fraction of the rest for validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import assemble
from bbbrun.data.base import Dataset
from bbbrun.data.labels import encode_labels
from bbbrun.data.splits import three_way_split
from bbbrun.errors import DataError

CLASSIFICATION_SETS = ("digits", "iris", "wine", "breast_cancer")
REGRESSION_SETS = ("diabetes",)
INSTALL_HINT = "pip install 'bbbrun[sklearn]'"


def bundled(name: str) -> Any:
    """The scikit-learn Bunch of a bundled set, or one line saying what to install or which names exist."""
    known = (*CLASSIFICATION_SETS, *REGRESSION_SETS)
    if name not in known:
        raise DataError(f"data.name={name!r} is not one of scikit-learn's bundled sets here ({', '.join(known)})")
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"data.source=sklearn needs scikit-learn, which is not installed: {INSTALL_HINT}") from None
    return getattr(datasets, f"load_{name}")()


def feature_names(bunch: Any, width: int) -> tuple[str, ...]:
    names = getattr(bunch, "feature_names", None)
    if names is None or len(names) != width:
        return tuple(f"x{j}" for j in range(width))
    return tuple(str(n) for n in names)


class SklearnSource:
    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        name = str(cfg.name)
        if name in CLASSIFICATION_SETS:
            raise DataError(f"data.name={name} is a classification set; train it with model.likelihood=categorical")
        bunch = bundled(name)
        x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)
        rows = three_way_split(len(y), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        return assemble(x, y, rows, feature_names(bunch, x.shape[1]), "target")

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        name = str(cfg.name)
        if name in REGRESSION_SETS:
            raise DataError(f"data.name={name} is a regression set; its targets are not class labels")
        bunch = bundled(name)
        x = np.asarray(bunch.data, dtype=np.float64)
        # Class names as the set spells them (iris: setosa, ...), else the integer codes.
        names = [str(n) for n in getattr(bunch, "target_names", [])]
        target = np.asarray(bunch.target, dtype=np.int64)
        cells = [names[t] for t in target] if len(names) > int(target.max()) else [str(t) for t in target]
        rows = three_way_split(len(target), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
        y, classes = encode_labels(cells, rows, f"scikit-learn's {name}")
        return assemble(x, y, rows, feature_names(bunch, x.shape[1]), "target", classes=classes)

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return None
