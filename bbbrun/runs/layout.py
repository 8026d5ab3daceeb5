"""The one owner of a run directory's and a sweep directory's layout: file names, status, reading, writing.

    <out>/<name>/<timestamp>/          a run (RunDir)
        .bbbrun  config.yaml  checkpoint.pt  history.csv  metrics.json  run.json (provenance)  run.log
        splits.json (file data)  report.html (bbbrun report)
        train.png  val.png  loss.png  calibration.png       (one input)
        <val|test>_<predicted|errors|pit|calibration>.png   (more inputs)
        <val|test>_<reliability|rejection|confusion>.png  decision.png (2 inputs)   (a classifier)
        prune.json  prune.png  snr.png  checkpoint_pruned_<percent>.pt          (bbbrun prune)
    <out>/sweeps/<name>/<timestamp>/   a sweep (SweepDir)
        .bbbrun  sweep.yaml  summary.csv  summary.json  comparison.png  slurm/  report.html
        benchmark.json  benchmark.csv  (a benchmark: <out>/benchmarks/<name>/<timestamp>/)
        <NNN>_<overrides>/             one RunDir per run
    <dir>/                             a comparison (CompareDir, bbbrun compare --out)
        compare_loss.png  compare_calibration.png  compare_bands.png

No other module spells these names.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bbbrun.config import read_text_file
from bbbrun.config.loading import parse_yaml
from bbbrun.errors import CheckpointError, ConfigError, OutputError
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.names import check_name
from bbbrun.runs import marker

CHECKPOINT = "checkpoint.pt"
PROVENANCE = "run.json"
METRICS = "metrics.json"
# A directory holding either is a run (runs from before run.json existed have only metrics.json).
RUN_MARKERS = (PROVENANCE, METRICS)
FIGURES = ("train", "val", "loss", "calibration")


@dataclass(frozen=True)
class RunDir:
    """One run's directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def log(self) -> Path:
        return self.path / "run.log"

    @property
    def splits(self) -> Path:
        return self.path / "splits.json"

    @property
    def provenance(self) -> Path:
        return self.path / PROVENANCE

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def write_provenance(self, record: dict[str, Any]) -> None:
        write_text_atomic(self.provenance, json.dumps(record, indent=2))

    def read_provenance(self) -> dict[str, Any] | None:
        return read_json_object(self.provenance)

    def read_history(self) -> list[dict[str, float]]:
        """history.csv's rows as numbers (empty when there is none yet)."""
        try:
            text = self.history.read_text()
        except OSError:
            return []
        return [numbers(row) for row in csv.DictReader(io.StringIO(text))]

    def write_splits(self, rows: dict[str, Any]) -> None:
        """The row numbers of the source that each split took, so a run can be re-scored and audited."""
        write_text_atomic(self.splits, json.dumps({k: [int(i) for i in v] for k, v in rows.items()}))

    def figure(self, name: str) -> Path:
        """One of FIGURES as a PNG path."""
        return self.path / f"{name}.png"

    def split_figure(self, split: str, kind: str) -> Path:
        """A figure of one split's rows for inputs of more than one feature: <split>_<kind>.png
        (kinds: predicted, errors, pit, calibration)."""
        return self.path / f"{split}_{kind}.png"

    def range_figure(self, name: str, x_min: float, x_max: float) -> Path:
        """A band plot over [x_min, x_max]: its own name, so it never replaces the run's own figure."""
        return self.path / f"{name}_x{x_min:g}_{x_max:g}.png"

    @property
    def prune_json(self) -> Path:
        """bbbrun prune's table: validation metrics per fraction of weights removed."""
        return self.path / "prune.json"

    def pruned_checkpoint(self, percent: str) -> Path:
        """A checkpoint with `percent`% of its weights removed by bbbrun prune --save."""
        return self.path / f"checkpoint_pruned_{percent}.pt"

    def write_config(self, text: str) -> None:
        write_text_atomic(self.config, text)

    def write_history(self, rows: Sequence[dict[str, float]], columns: Sequence[str]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.history, buffer.getvalue())

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_text_atomic(self.metrics, json.dumps(metrics, indent=2))

    def write_failure(self, error: str, **details: Any) -> dict[str, Any]:
        """Mark the run failed in metrics.json; returns the record written."""
        metrics = failure_record(error, **details)
        self.write_metrics(metrics)
        return metrics

    def read_metrics(self) -> dict[str, Any] | None:
        return read_json_object(self.metrics)

    def is_completed(self) -> bool:
        metrics = self.read_metrics()
        return metrics is not None and metrics.get("status") == "completed"


def numbers(row: dict[str, str]) -> dict[str, float]:
    """A CSV row's cells that are numbers: whole numbers (the epoch) as int, the others as float."""
    values: dict[str, float] = {}
    for key, text in row.items():
        for kind in (int, float):
            try:
                values[key] = kind(text)
                break
            except (TypeError, ValueError):
                continue
    return values


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file holding an object, or None when it is missing, unreadable or something else."""
    if not path.is_file():  # absent, or not a regular file (a FIFO would block the read)
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def failure_record(error: str, **details: Any) -> dict[str, Any]:
    """The metrics.json of a run that did not finish: status, the reason, anything known."""
    return {"status": "failed", "error": error, **details}


def checkpoint_file(target: Path) -> Path:
    """A checkpoint file as given, or the checkpoint of a run directory."""
    if target.is_dir():
        candidate = target / CHECKPOINT
        if not candidate.is_file():
            raise CheckpointError(f"{target} is a directory without a {CHECKPOINT}; give a checkpoint file")
        return candidate
    return target


def run_dir_of_checkpoint(checkpoint: Path) -> RunDir:
    return RunDir(checkpoint.parent)


def existing_run_dir(target: Path) -> RunDir:
    """The run directory a --resume names (the directory or its checkpoint), refused unless bbbrun made it."""
    folder = target if target.is_dir() else target.parent
    if not target.exists():
        raise CheckpointError(f"--resume: {target} does not exist; give a run directory")
    if marker.marker_kind(folder) != marker.RUN:
        raise ConfigError(f"--resume: {folder} is not a run directory made by bbbrun (it has no {marker.MARKER} "
                          "marker); give outputs/<name>/<timestamp>")
    return RunDir(folder)


def new_run_dir(root: Path, name: str, now: datetime | None = None, kind: str = marker.RUN) -> RunDir:
    """Create root/name/<YYYY-MM-DD_HH-MM-SS>[_K]/, never reusing an existing directory, and mark it."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    parent = root / check_name(name, "name")
    with output_errors(parent):
        parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(10_000):
            candidate = parent / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                candidate.mkdir()  # atomic: fails if another run took the name
            except FileExistsError:
                continue
            marker.mark(candidate, kind)
            return RunDir(candidate)
    raise OutputError(f"could not find a free run directory under {parent}")


@dataclass(frozen=True)
class SweepDir:
    """A sweep's root: its plan, summaries and one run directory per planned run."""

    path: Path

    @classmethod
    def create(cls, out: Path, name: str, kind: str = "sweeps") -> SweepDir:
        """A fresh out/<kind>/<name>/<timestamp>/ (kind: sweeps, or benchmarks)."""
        return cls(new_run_dir(out / kind, name, kind=marker.SWEEP).path)

    @classmethod
    def existing(cls, path: Path) -> SweepDir:
        sweep = cls(path)
        if marker.marker_kind(path) != marker.SWEEP or not sweep.plan.is_file():
            raise ConfigError(f"{path} is not a sweep directory made by bbbrun (no {marker.MARKER} marker or no "
                              f"{sweep.plan.name}); give outputs/sweeps/<name>/<timestamp>")
        return sweep

    @property
    def plan(self) -> Path:
        return self.path / "sweep.yaml"

    def write_plan(self, plan: dict[str, Any]) -> None:
        """The sweep's manifest: every run's full config and directory, all a --resume needs."""
        write_text_atomic(self.plan, yaml.safe_dump(plan, sort_keys=False))

    def read_plan(self) -> Any:
        """The manifest as plain data (read as hostile: it may have been edited), or one ConfigError line."""
        return parse_yaml(read_text_file(self.plan, "sweep"), self.plan)

    @property
    def summary_csv(self) -> Path:
        return self.path / "summary.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "summary.json"

    @property
    def comparison(self) -> Path:
        return self.path / "comparison.png"

    @property
    def benchmark_json(self) -> Path:
        return self.path / "benchmark.json"

    @property
    def benchmark_csv(self) -> Path:
        return self.path / "benchmark.csv"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def is_benchmark(self) -> bool:
        return self.benchmark_json.is_file()

    @property
    def slurm(self) -> Path:
        return self.path / "slurm"

    def run(self, dir_name: str) -> RunDir:
        """A run's directory inside the sweep; the name is one plain component, whatever sweep.yaml says."""
        return RunDir(self.path / check_name(dir_name, f"{self.plan}: a run directory name"))


@dataclass(frozen=True)
class CompareDir:
    """Where `bbbrun compare` writes its figures."""

    path: Path

    def figure(self, name: str) -> Path:
        """compare_<name>.png (names: loss, calibration, bands)."""
        return self.path / f"compare_{name}.png"
