"""Runs side by side (`bbbrun compare`): the config keys that differ, the metrics, overlaid curves.

Each argument is a run directory or a sweep (or benchmark) directory, which
stands for all its runs. Nothing is recomputed: everything comes from the
files each run wrote (config.yaml, metrics.json, history.csv, val.png).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.files import output_errors
from bbbrun.runs.catalog import find_run_dirs, flatten, read_config
from bbbrun.runs.layout import CompareDir, RunDir
from bbbrun.runs.outputs import check_output_dir

MISSING = "-"


@dataclass
class Compared:
    """One run as the comparison sees it."""

    label: str
    run_dir: RunDir
    config: dict[str, Any]  # flattened: dotted keys
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Comparison:
    runs: list[Compared]
    config_rows: list[list[str]]  # key, then one value per run
    metric_rows: list[list[str]]  # metric, then one value per run
    figures: list[Path] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [run.label for run in self.runs]


def expand(paths: list[Path]) -> list[RunDir]:
    """The runs the arguments name: a run directory itself, a sweep's runs in order."""
    found: list[RunDir] = []
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"{path} is not a directory; give run directories or sweep directories")
        runs = find_run_dirs(path)
        if not runs:
            raise ConfigError(f"{path} holds no run (no run.json or metrics.json below it)")
        found.extend(runs)
    seen: dict[Path, Path] = {}
    for run_dir in found:
        first = seen.setdefault(run_dir.path.resolve(), run_dir.path)
        if first is not run_dir.path:
            raise ConfigError(f"{run_dir.path} is named twice (also as {first}); give each run once")
    if len(found) < 2:
        raise ConfigError("give at least two runs to compare (or a sweep directory with two or more runs)")
    return found


def labels_for(run_dirs: list[RunDir]) -> list[str]:
    """Each run's directory name, with its parent's when two runs share a name."""
    counts = Counter(r.path.name for r in run_dirs)
    return [r.path.name if counts[r.path.name] == 1 else f"{r.path.parent.name}/{r.path.name}" for r in run_dirs]


def load(run_dirs: list[RunDir]) -> list[Compared]:
    return [Compared(label, run_dir, flatten(read_config(run_dir)), run_dir.read_metrics() or {},
                     run_dir.read_history())
            for label, run_dir in zip(labels_for(run_dirs), run_dirs, strict=True)]


def text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def differing_config(runs: list[Compared]) -> list[list[str]]:
    """The config keys whose values are not the same in every run (a key some runs lack differs)."""
    keys = list(dict.fromkeys(k for run in runs for k in run.config))
    rows = []
    for key in keys:
        values = [run.config.get(key, MISSING) for run in runs]
        if any(v != values[0] for v in values[1:]):
            rows.append([key, *(text(v) for v in values)])
    return rows


def metric_rows(runs: list[Compared]) -> list[list[str]]:
    """Every scalar metric any run has, its value in each run (status first)."""
    names = list(dict.fromkeys(k for run in runs for k, v in run.metrics.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)))
    rows = [["status", *(str(run.metrics.get("status", MISSING)) for run in runs)]]
    rows.extend([name, *(text(run.metrics.get(name)) for run in runs)] for name in names)
    return rows


def compare(paths: list[Path], out: Path | None = None) -> Comparison:
    """Load the runs, tabulate what differs, and (with `out`) write the overlaid figures there."""
    runs = load(expand(paths))
    if out is not None:
        check_output_dir(out, "--out")  # never into a run or sweep bbbrun made
    comparison = Comparison(runs, differing_config(runs), metric_rows(runs))
    if out is not None:
        comparison.figures = write_figures(runs, CompareDir(out))
    return comparison


def write_figures(runs: list[Compared], target: CompareDir) -> list[Path]:
    """compare_loss.png, compare_calibration.png and, when runs have band plots, compare_bands.png."""
    from bbbrun import plots

    with output_errors(target.path):
        target.path.mkdir(parents=True, exist_ok=True)
    labels = [run.label for run in runs]
    figures = {
        "loss": plots.plot_losses(labels, [run.history for run in runs]),
        "calibration": plots.plot_calibrations(labels, [run.metrics.get("val_calibration") or []
                                                                for run in runs]),
    }
    bands = [(run.label, run.run_dir.figure("val")) for run in runs if run.run_dir.figure("val").is_file()]
    if bands:
        figures["bands"] = plots.tile_images(bands, "Validation bands, run by run")
    for name, fig in figures.items():
        plots.save_figure(fig, target.figure(name))
    return [target.figure(name) for name in figures]
