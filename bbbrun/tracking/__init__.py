"""Experiment tracking besides the run directory, by the config's `tracking` key. A new service is one
module with a `Tracker` (and a `SweepTracker`) plus one entry in TRACKERS (and its name in
`config.Tracking`). Services are optional extras: their packages are imported only when a run uses one."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Any

from bbbrun.config import Config, Tracking, config_to_dict
from bbbrun.errors import ConfigError
from bbbrun.fit.loop import Callbacks
from bbbrun.tracking.base import SweepTracker, TrackedRun, Tracker

# Each service: the package it needs, the extra that installs it, and its tracker classes' module.
TRACKERS: dict[Tracking, tuple[str, str, str]] = {
    Tracking.MLFLOW: ("mlflow", "mlflow", "bbbrun.tracking.mlflow_store"),
}


def check_tracking(cfg: Config) -> None:
    """Refuse, in one line and before anything runs, a tracking service whose package is not installed."""
    if cfg.tracking is Tracking.NONE:
        return
    package, extra, _ = TRACKERS[cfg.tracking]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"tracking: {cfg.tracking.value} needs the {package} package: "
                          f"pip install 'bbbrun[{extra}]' (or set tracking: none)")


def tracker_classes(cfg: Config) -> Any:
    """The service's module, which names its RUN_TRACKER and SWEEP_TRACKER classes."""
    check_tracking(cfg)
    return importlib.import_module(TRACKERS[cfg.tracking][2])


def flat_params(cfg: Config) -> dict[str, Any]:
    """The config as dotted keys: model.hidden_dim, optim.lr, ..."""
    def walk(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            name = f"{prefix}{key}"
            flat.update(walk(value, f"{name}.") if isinstance(value, dict) else {name: value})
        return flat

    return walk(config_to_dict(cfg), "")


def open_tracker(cfg: Config, run_name: str, parent_id: str | None = None) -> Tracker | None:
    """The run's tracker with the config logged as its parameters, or None with tracking: none."""
    if cfg.tracking is Tracking.NONE:
        return None
    where = TrackedRun(cfg.tracking_uri, cfg.name, run_name, parent_id)
    module = tracker_classes(cfg)
    try:
        tracker: Tracker = module.RUN_TRACKER(where)
        tracker.log_params(flat_params(cfg))
    except Exception as err:  # an unreachable server, a bad URI: the service's own words, in one line
        raise ConfigError(f"tracking: could not log to {cfg.tracking.value} at {cfg.tracking_uri}: "
                          f"{type(err).__name__}: {err}") from None
    return tracker


def open_sweep_tracker(cfg: Config, sweep_name: str) -> SweepTracker | None:
    """A sweep's parent run (from its first run's config), or None when its runs are not tracked."""
    if cfg.tracking is Tracking.NONE:
        return None
    sweep: SweepTracker = tracker_classes(cfg).SWEEP_TRACKER(TrackedRun(cfg.tracking_uri, cfg.name, sweep_name))
    return sweep


def finite_numbers(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a history row or metrics.json (a tracker refuses NaN on some stores)."""
    return {k: float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def with_tracking(calls: Callbacks, tracker: Tracker | None) -> Callbacks:
    """The callbacks, each log point also sent to the tracker (step: the epoch)."""
    if tracker is None:
        return calls
    on_log = calls.on_log

    def log(row: dict[str, float]) -> None:
        tracker.log_metrics(finite_numbers(row), int(row["epoch"]))
        on_log(row)

    return dataclasses.replace(calls, on_log=log)


def close_tracker(tracker: Tracker | None, status: str, metrics: dict[str, Any] | None, step: int,
                  folder: Path) -> None:
    """metrics.json's numbers at the last epoch, the files of the run's directory, the final status."""
    if tracker is None:
        return
    try:
        if metrics is not None:
            tracker.log_metrics(finite_numbers(metrics), step)
        tracker.finish(status, sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")))
    except Exception as err:  # the run's own files are whole; only the copy in the service is missing
        raise ConfigError(f"the run ended ({status}) and its files are in {folder}, but logging it to the tracking "
                          f"service failed: {type(err).__name__}: {err}") from None


def check_plan_tracking(configs: list[dict[str, Any]]) -> None:
    """A sweep's runs' tracking services, checked before its directory exists."""
    from bbbrun.config import config_from_dict

    for raw in configs:
        check_tracking(config_from_dict(raw))


__all__ = ["TRACKERS", "SweepTracker", "TrackedRun", "Tracker", "check_plan_tracking", "check_tracking",
           "close_tracker", "open_sweep_tracker", "open_tracker", "with_tracking"]
