"""A run's part of a report: its headline, metrics, warnings, figures, config and provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bbbrun.report.html import Section, escape, figures, preformatted, status, table
from bbbrun.runs.class_results import CLASS_FIGURES
from bbbrun.runs.figures import FEATURE_FIGURES, SPLIT_TITLES
from bbbrun.runs.layout import FIGURES, RunDir

FIGURE_CAPTIONS = {"train": "Training rows: predictive bands", "val": "Validation rows: predictive bands",
                   "loss": "Loss against epoch", "calibration": "Calibration on the validation rows",
                   "decision": "Decision map: predicted probability and mutual information"}
PROVENANCE_KEYS = ("status", "command", "cwd", "config_file", "config_sha256", "overrides", "started_at",
                   "ended_at", "wall_seconds", "epochs_completed", "error", "pid")


def run_title(run_dir: RunDir) -> str:
    return f"bbbrun run {run_dir.path.parent.name}/{run_dir.path.name}"


def run_subtitle(run_dir: RunDir) -> str:
    provenance = run_dir.read_provenance() or {}
    metrics = run_dir.read_metrics() or {}
    state = provenance.get("status") or metrics.get("status") or "unknown"
    started = provenance.get("started_at", "start not recorded")
    return f"{escape(run_dir.path)} · started {escape(started)} · {status(state)}"


METRIC_COLUMNS = 3  # metric/value pairs per table row: a long list reads better wide than tall


def scalar_metrics(metrics: dict[str, Any]) -> list[list[str]]:
    return [[key, f"{value:.5g}" if isinstance(value, float) else str(value)]
            for key, value in metrics.items()
            if isinstance(value, (int, float, str)) and not isinstance(value, bool) and key != "status"]


def side_by_side(pairs: list[list[str]], columns: int) -> list[list[str]]:
    """Pairs laid out down `columns` column pairs, filled column by column."""
    height = -(-len(pairs) // columns)
    rows = []
    for i in range(height):
        row: list[str] = []
        for c in range(columns):
            k = c * height + i
            row += pairs[k] if k < len(pairs) else ["", ""]
        rows.append(row)
    return rows


def metrics_section(run_dir: RunDir) -> Section:
    metrics = run_dir.read_metrics()
    if metrics is None:
        return Section("Metrics", "<p>No metrics.json: the run has not finished.</p>")
    body = f"<p>Status: {status(str(metrics.get('status', 'unknown')))}</p>"
    body += table(["metric", "value"] * METRIC_COLUMNS, side_by_side(scalar_metrics(metrics), METRIC_COLUMNS))
    warnings = metrics.get("warnings") or []
    if warnings:
        body += "<h3>Warnings</h3><ul class=\"warnings\">" + "".join(f"<li>{escape(w)}</li>" for w in warnings)
        body += "</ul>"
    return Section("Metrics", body)


def figure_items(run_dir: RunDir) -> list[tuple[Path, str]]:
    """Every PNG of the run, in reading order: the band plots, loss, calibration, the decision map, the
    per-split figures (a regressor's, then a classifier's), then any other (prune, snr, x-range redraws)."""
    items = [(run_dir.figure(name), FIGURE_CAPTIONS[name]) for name in (*FIGURES, "decision")]
    for split in ("val", "test"):
        items += [(run_dir.split_figure(split, kind), f"{SPLIT_TITLES[split]} rows: {kind}")
                  for kind in (*FEATURE_FIGURES, *CLASS_FIGURES)]
    known = {path for path, _ in items}
    items += [(path, path.stem) for path in sorted(run_dir.path.glob("*.png")) if path not in known]
    return [(path, caption) for path, caption in items if path.is_file()]


def provenance_section(run_dir: RunDir) -> Section:
    record = run_dir.read_provenance()
    if record is None:
        return Section("Provenance", "<p>No run.json: this run was made before bbbrun recorded provenance.</p>")
    rows = [[key, format_value(record[key])] for key in PROVENANCE_KEYS if record.get(key) is not None]
    git = record.get("git")
    rows.append(["git", "not a git checkout" if not git else
                 f"{git.get('commit')}{' (uncommitted changes)' if git.get('dirty') else ''}"])
    rows += [[f"machine.{k}", format_value(v)] for k, v in (record.get("machine") or {}).items() if v is not None]
    rows += [[f"version.{k}", str(v)] for k, v in (record.get("versions") or {}).items()]
    body = table(["field", "value"], rows)
    if record.get("previous"):
        body += f"<p>Resumed: {len(record['previous'])} earlier session(s), recorded in run.json.</p>"
    return Section("Provenance", body)


def format_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def config_section(run_dir: RunDir) -> Section:
    try:
        text = run_dir.config.read_text()
    except OSError:
        return Section("Config", "<p>No config.yaml.</p>")
    return Section("Config (every key, defaults filled in)", preformatted(text))


def run_sections(run_dir: RunDir) -> list[Section]:
    return [metrics_section(run_dir), Section("Figures", figures(figure_items(run_dir))),
            config_section(run_dir), provenance_section(run_dir)]
