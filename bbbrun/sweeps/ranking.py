"""What a sweep ranks by: the metric's name, checked against what runs report, and its goal."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.reprs import short_repr


class Goal(str, Enum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


@dataclass(frozen=True)
class Metric:
    name: str = "val_nll"
    goal: Goal = Goal.MINIMIZE


def read_metric(path: Path, raw: Any) -> Metric:
    if not isinstance(raw, dict) or set(raw) - {"name", "goal"}:
        raise ConfigError(f"{path}: 'metric' must be {{name: val_nll, goal: minimize}}")
    goal = raw.get("goal", "minimize")
    if goal not in [g.value for g in Goal]:
        raise ConfigError(f"{path}: metric.goal must be minimize or maximize, got {short_repr(goal)}")
    name = raw.get("name", "val_nll")
    allowed = rankable_metrics()
    if name not in allowed:
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{path}: metric.name {short_repr(name)} is not a metric a run reports{hint} "
                          f"(valid: {', '.join(allowed)})")
    return Metric(name, Goal(goal))


def rankable_metrics() -> list[str]:
    """Every scalar a run's metrics.json holds that a sweep can rank by."""
    from bbbrun.bnn.likelihoods import LIKELIHOODS
    from bbbrun.evaluate.regression import metric_names

    own = [m for kind in LIKELIHOODS.values() for m in (*kind.headline_metrics, *kind.table_metrics)]
    split = [f"{s}_{m}" for s in ("val", "test") for m in metric_names()]
    return list(dict.fromkeys([*split, "train_rmse", *own, "train_seconds"]))
