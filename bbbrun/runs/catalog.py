"""Finding the runs under an output root and describing each in one flat record (`bbbrun runs`).

A run directory is any directory holding a run.json or a metrics.json (runs
from before run.json existed are found by the latter). Each record is flat:
its name, start, status, epochs, directory, every config key (dotted), every
scalar metric and the provenance fields that identify where it came from,
so `--filter key=value` can match any of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bbbrun.errors import ConfigError
from bbbrun.runs.layout import RUN_MARKERS, RunDir
from bbbrun.runs.provenance import process_gone

# The metrics worth a column in the table, in order, when a run has them.
KEY_METRICS = ("val_rmse", "val_nll", "val_coverage_90", "test_rmse", "test_ll", "train_seconds")


@dataclass(frozen=True)
class Filter:
    """key=value: a record matches when its value for key, written as text, equals value."""

    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter takes key=value (e.g. status=completed or model.hidden_dim=50), got {text!r}")
        return cls(key.strip(), value.strip())

    def matches(self, record: dict[str, Any]) -> bool:
        if self.key not in record:
            return False
        value = record[self.key]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:  # numbers compare as numbers, so optim.lr=1e-3 matches 0.001
                return float(self.value) == float(value)
            except ValueError:
                return False
        return as_text(value) == self.value


def as_text(value: Any) -> str:
    """A value as YAML would write it in a key=value override (true, null, ...)."""
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def find_run_dirs(root: Path) -> list[RunDir]:
    """Every run directory under root (root itself included), without descending into one."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory; give the output root of your runs (e.g. outputs)")
    found = []
    for current, dirs, files in os.walk(root):
        if any(marker in files for marker in RUN_MARKERS):
            found.append(RunDir(Path(current)))
            dirs.clear()
        dirs.sort()
    return found


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"model": {"hidden_dim": 8}} as {"model.hidden_dim": 8}; lists stay whole."""
    if not isinstance(value, dict):
        return {prefix: value} if prefix else {}
    flat: dict[str, Any] = {}
    for key, child in value.items():
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def read_config(run_dir: RunDir) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(run_dir.config.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def start_time(run_dir: RunDir, provenance: dict[str, Any]) -> str:
    """When the run started: run.json's record, else the directory's own time (older runs)."""
    first = (provenance.get("previous") or [provenance])[0]
    if isinstance(first.get("started_at"), str):
        return first["started_at"]
    stamp = run_dir.path.stat().st_mtime
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def describe(run_dir: RunDir) -> dict[str, Any]:
    """One run as a flat record (see the module's docstring)."""
    provenance = run_dir.read_provenance() or {}
    metrics = run_dir.read_metrics() or {}
    config = read_config(run_dir)
    status = provenance.get("status") or metrics.get("status") or "unknown"
    if process_gone(provenance):
        status = "running (process gone)"  # killed outright: it will never finish; resume it
    record: dict[str, Any] = {
        "name": config.get("name", run_dir.path.parent.name),
        "start": start_time(run_dir, provenance),
        "status": status,
        "epochs": metrics.get("epochs_completed", provenance.get("epochs_completed")),
        "directory": str(run_dir.path),
    }
    record.update(flatten(config))
    record.update({k: v for k, v in metrics.items()
                   if isinstance(v, (int, float, str)) and not isinstance(v, bool) and k not in record})
    for key in ("command", "config_sha256", "wall_seconds", "error"):
        if provenance.get(key) is not None:
            record.setdefault(key, provenance[key])
    git = provenance.get("git") or {}
    record.update({f"git.{k}": v for k, v in git.items()})
    return record


def list_runs(root: Path, filters: list[Filter] | None = None) -> list[dict[str, Any]]:
    """Every run under root as a record, newest first, keeping those that match every filter."""
    records = [describe(run_dir) for run_dir in find_run_dirs(root)]
    kept = [r for r in records if all(f.matches(r) for f in filters or [])]
    return sorted(kept, key=lambda r: r["start"], reverse=True)


def table(records: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The columns and rows `bbbrun runs` prints: name, start, status, epochs, key metrics, directory."""
    metrics = [m for m in KEY_METRICS if any(isinstance(r.get(m), (int, float)) for r in records)]
    columns = ["name", "start", "status", "epochs", *metrics, "directory"]
    rows = [[str(r["name"]), short_time(r["start"]), str(r["status"]), cell(r.get("epochs")),
             *(cell(r.get(m)) for m in metrics), r["directory"]] for r in records]
    return columns, rows


def short_time(iso: str) -> str:
    """An ISO time in local time to the second, without the offset, for a table."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
