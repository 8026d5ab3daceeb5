"""A sweep's results: ranking, mean and spread across seeds, the summary files, the table rows.

Records are plain dicts, one per planned run: its index, directory name,
swept values, status, error and scalar metrics.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from bbbrun.files import output_errors, write_text_atomic
from bbbrun.runs.layout import SweepDir
from bbbrun.sweeps.grid import SweepPlan, format_value
from bbbrun.sweeps.ranking import Goal


def table_metrics(plan: SweepPlan) -> tuple[str, ...]:
    """The metrics a sweep's table and summary.csv show: the sweep metric first, then each likelihood's own."""
    from bbbrun.bnn.likelihoods import LIKELIHOODS

    kinds = dict.fromkeys(str(run.config.get("model", {}).get("likelihood", "fixed")) for run in plan.runs)
    own = [m for kind in kinds if kind in LIKELIHOODS for m in LIKELIHOODS[kind].table_metrics]
    return tuple(dict.fromkeys((plan.metric.name, *own, "train_seconds")))


def metric_value(record: dict[str, Any], name: str) -> float | None:
    value = record.get(name)
    if record.get("status") != "completed" or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def rank(records: list[dict[str, Any]], plan: SweepPlan) -> list[dict[str, Any]]:
    """Best first by the sweep metric; failed runs (and runs without the metric) last, in order."""
    sign = 1.0 if plan.metric.goal is Goal.MINIMIZE else -1.0

    def key(record: dict[str, Any]) -> tuple[int, float, int]:
        value = metric_value(record, plan.metric.name)
        return (0, sign * value, record["index"]) if value is not None else (1, 0.0, record["index"])

    return sorted(records, key=key)


def setting_keys(plan: SweepPlan) -> list[str]:
    return [k for k in plan.swept_keys if k != "seed"]


def group_by_setting(records: list[dict[str, Any]], plan: SweepPlan) -> list[dict[str, Any]]:
    """Mean and standard deviation across seeds of each setting (the swept keys but seed)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(tuple(format_value(record.get(k)) for k in setting_keys(plan)), []).append(record)
    rows, metrics = [], table_metrics(plan)
    for setting, members in groups.items():
        row: dict[str, Any] = dict(zip(setting_keys(plan), setting, strict=True))
        row["runs"] = len(members)
        row["completed"] = sum(m.get("status") == "completed" for m in members)
        for name in metrics:
            values = [v for m in members if (v := metric_value(m, name)) is not None]
            row[f"{name}_mean"] = statistics.fmean(values) if values else None
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else None
            row[f"{name}_se"] = row[f"{name}_std"] / math.sqrt(len(values)) if len(values) > 1 else None
        rows.append(row)
    metric = f"{plan.metric.name}_mean"
    sign = 1.0 if plan.metric.goal is Goal.MINIMIZE else -1.0
    return sorted(rows, key=lambda r: (r[metric] is None, sign * (r[metric] or 0.0)))


def write_summary(plan: SweepPlan, sweep: SweepDir, records: list[dict[str, Any]]) -> None:
    ranked = rank(records, plan)
    payload = {"name": plan.name, "metric": {"name": plan.metric.name, "goal": plan.metric.goal.value},
               "swept_keys": plan.swept_keys, "runs": ranked, "settings": group_by_setting(records, plan)}
    write_text_atomic(sweep.summary_json, json.dumps(payload, indent=2))
    write_text_atomic(sweep.summary_csv, records_csv(ranked, plan))
    write_comparison(plan, sweep.comparison, records)


def records_csv(records: list[dict[str, Any]], plan: SweepPlan) -> str:
    columns = ["index", "run", *plan.swept_keys, "status", *table_metrics(plan), "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: format_value(r[k]) if k in plan.swept_keys else r.get(k) for k in columns} for r in records)
    return buffer.getvalue()


def write_comparison(plan: SweepPlan, path: Path, records: list[dict[str, Any]]) -> None:
    from bbbrun import plots

    keys = setting_keys(plan) or plan.swept_keys or ["index"]
    points = [{**{k: format_value(r.get(k)) for k in keys}, "seed": r.get("seed"),
               "value": metric_value(r, plan.metric.name)} for r in records]
    fig = plots.plot_comparison(points, keys, plan.metric.name, f"{plan.name}: {plan.metric.name} per setting")
    with output_errors(path):
        plots.save_figure(fig, path)


# ------------------------------------------------------------- what the terminal shows


def cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return format_value(value)


Table = tuple[list[str], list[list[str]], list[bool]]  # columns, rows, which rows failed


def run_table(records: list[dict[str, Any]], plan: SweepPlan) -> Table:
    """Every run, best first: the swept keys, the metrics, status."""
    metrics = list(table_metrics(plan))
    columns = ["#", *plan.swept_keys, *metrics, "status"]
    ranked = rank(records, plan)
    rows = [[f"{r['index']:03d}", *(cell(r.get(k)) for k in plan.swept_keys), *(cell(r.get(m)) for m in metrics),
             r.get("status", "?")] for r in ranked]
    return columns, rows, [r.get("status") != "completed" for r in ranked]


def setting_table(records: list[dict[str, Any]], plan: SweepPlan) -> Table:
    """Mean ± standard error (std / sqrt(runs)) across seeds, best setting first."""
    metrics = list(table_metrics(plan))
    columns = [*setting_keys(plan), "runs", *metrics]
    groups = group_by_setting(records, plan)
    rows = []
    for group in groups:
        stats = [mean_std(group[f"{m}_mean"], group[f"{m}_se"]) for m in metrics]
        rows.append([*(group[k] for k in setting_keys(plan)), f"{group['completed']}/{group['runs']}", *stats])
    return columns, rows, [g["completed"] == 0 for g in groups]


def mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4g} ± {std:.2g}" if std is not None else f"{mean:.4g}"


def has_seeds(plan: SweepPlan) -> bool:
    return "seed" in plan.swept_keys


def final_line(summary: dict[str, Any], name: str, metrics: tuple[str, ...]) -> str:
    """The one line printed when a run ends."""
    if summary.get("status") != "completed":
        return f"failed  {name}: {summary.get('error', summary.get('status'))}"
    parts = [f"{k} {cell(summary.get(k))}" for k in metrics if k in summary]
    return f"done    {name}: " + " | ".join(parts)
