"""A Dataset from whole-table arrays and the rows each split takes, with the checks every file source needs."""

from __future__ import annotations

import numpy as np

from bbbrun.data.base import Dataset, column
from bbbrun.data.table import FLOAT32_MAX
from bbbrun.errors import DataError


def assemble(x: np.ndarray, y: np.ndarray, rows: dict[str, np.ndarray], feature_names: tuple[str, ...],
             target_name: str, categories: dict[str, tuple[str, ...]] | None = None,
             classes: tuple[str, ...] = ()) -> Dataset:
    """Split (N, width) inputs and (N,) targets by `rows` (train, val and maybe test row numbers)."""
    train = rows["train"]
    if np.ptp(y[train]) == 0:
        raise DataError(f"the target {target_name!r} is constant in the training rows ({y[train][0]:g}); "
                        "there is nothing to learn")
    test = rows.get("test")
    has_test = test is not None and len(test) > 0
    return Dataset(
        x_train=x[train].astype(np.float32), y_train=column(y[train]),
        x_val=x[rows["val"]].astype(np.float32), y_val=column(y[rows["val"]]),
        x_test=x[test].astype(np.float32) if has_test else None, y_test=column(y[test]) if has_test else None,
        feature_names=feature_names, target_name=target_name, categories=categories or {},
        rows={k: np.asarray(v, dtype=np.int64) for k, v in rows.items()},
        warnings=constant_column_warnings(x[train], feature_names, categories or {}), classes=classes,
    )


def constant_column_warnings(x_train: np.ndarray, names: tuple[str, ...],
                             categories: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A warning per numeric input that never varies in the training rows (it is left unscaled)."""
    warnings, offset = [], 0
    for name in names:
        width = len(categories[name]) if name in categories else 1
        if name not in categories and np.ptp(x_train[:, offset]) == 0:
            warnings.append(f"input {name!r} is constant in the training rows ({x_train[0, offset]:g}); it carries "
                            "no information and is left unscaled")
        offset += width
    return tuple(warnings)


# Beyond this, a squared error overflows float32 (3.4e38) and every loss is infinite: no fit means anything.
MAX_MAGNITUDE = 1e15


def check_magnitude(data: Dataset) -> None:
    """Refuse inputs or targets so large that float32 training cannot represent its own loss."""
    splits = [(x, y) for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val),
                                  (data.x_test, data.y_test)) if x is not None and y is not None]
    inputs = np.concatenate([x for x, _ in splits])
    targets = np.concatenate([y for _, y in splits])
    for what, names, values in (("input", data.feature_names, inputs), ("target", (data.target_name,), targets)):
        if values.size == 0:
            continue
        peak = np.abs(values).max(axis=0).reshape(-1)
        worst = int(np.argmax(peak))
        if peak[worst] > MAX_MAGNITUDE:
            # One-hot columns shift the encoded positions; name the column only when they map one to one.
            name = repr(names[worst]) if len(names) == len(peak) else "column"
            raise DataError(f"{what} {name} reaches {peak[worst]:.3g}; values beyond ±{MAX_MAGNITUDE:.0e} "
                            "overflow the squared errors of float32 training, so the fit would mean nothing: "
                            "rescale the column (e.g. to other units)")


def check_finite(x: np.ndarray, y: np.ndarray, where: str) -> None:
    """Every value finite, and finite in float32, the precision the model computes in."""
    x = np.where(np.abs(x) > FLOAT32_MAX, np.inf, x)
    y = np.where(np.abs(y) > FLOAT32_MAX, np.inf, y)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise DataError(f"{where}: x[{bad[0][0]}, {bad[0][1]}] is not finite in float32; inputs must be finite numbers "
                        "within about ±3.4e38")
    bad_y = np.flatnonzero(~np.isfinite(y))
    if len(bad_y):
        raise DataError(f"{where}: y[{bad_y[0]}] is not finite in float32; targets must be finite numbers within "
                        "about ±3.4e38")
