"""A sweep from start to summary: its directory, the runs still to do, the ranked results.

`sweep_grid` expands what the user typed into runs and `executors` runs
them; this module ties the two to a sweep root on disk:

    outputs/sweeps/<name>/<timestamp>/
        sweep.yaml        every run's full config, so --resume needs nothing else
        <NNN>_<overrides>/  the same files as `bbbrun train`
        summary.csv, summary.json, comparison.png
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bbbrun import executors
from bbbrun.errors import BbbrunError, ConfigError
from bbbrun.executors import RunJob
from bbbrun.files import new_run_dir, output_errors, write_text_atomic
from bbbrun.sweep_grid import (
    ExecutorKind,
    Goal,
    SweepPlan,
    expand,
    format_value,
    plan_to_dict,
    read_plan_file,
    read_spec,
)

TABLE_METRICS = ("val_nll", "val_rmse", "val_coverage_90", "train_seconds")


class SweepFailed(BbbrunError):
    """Some runs of a sweep failed; the others finished and are summarised."""

    exit_code = 1


@dataclass(frozen=True)
class ExecOptions:
    executor: ExecutorKind = ExecutorKind.LOCAL
    workers: int | None = None
    scheduler: str | None = None


# ------------------------------------------------------------- planning


def plan_from_args(sources: list[str]) -> SweepPlan:
    """Files first (anything without '='), then overrides, as typed after `bbbrun sweep`."""
    paths = [Path(s) for s in sources if "=" not in s]
    overrides = [s for s in sources if "=" in s]
    return expand(read_spec(paths, overrides))


def with_slurm_flags(plan: SweepPlan, partition: str | None, time_min: int | None, gpus: int | None) -> SweepPlan:
    """Command-line Slurm options win over the sweep file's slurm: section."""
    flags = {"partition": partition, "time_min": time_min, "gpus_per_node": gpus}
    changes = {k: v for k, v in flags.items() if v is not None}
    return dataclasses.replace(plan, slurm=dataclasses.replace(plan.slurm, **changes)) if changes else plan


def dry_run_lines(plan: SweepPlan) -> list[str]:
    lines = [f"{plan.name}: {len(plan.runs)} runs, ranked by {plan.metric.name} ({plan.metric.goal.value})"]
    for run in plan.runs:
        swept = " ".join(f"{k}={format_value(v)}" for k, v in run.swept.items()) or "(no swept keys)"
        lines.append(f"{run.index:03d}  {swept}" + (f"  INVALID: {run.error}" if run.error else ""))
    return lines


# ------------------------------------------------------------- the sweep root


def create_root(plan: SweepPlan, out: Path) -> Path:
    root = new_run_dir(out / "sweeps", plan.name)
    write_plan(plan, root)
    return root


def write_plan(plan: SweepPlan, root: Path) -> None:
    write_text_atomic(root / "sweep.yaml", yaml.safe_dump(plan_to_dict(plan), sort_keys=False))


def load_root(root: Path) -> SweepPlan:
    if not (root / "sweep.yaml").is_file():
        raise ConfigError(f"{root} is not a sweep directory (no sweep.yaml); give outputs/sweeps/<name>/<timestamp>")
    return read_plan_file(root / "sweep.yaml")


def pending_jobs(plan: SweepPlan, root: Path, options: ExecOptions) -> list[RunJob]:
    """Jobs for the valid runs that have no completed metrics.json yet."""
    threads = thread_share(options)
    capture = options.executor is not ExecutorKind.DASK
    return [
        RunJob(run.index, str((root / run.dir_name).resolve()), run.config, threads, capture)
        for run in plan.runs
        if run.error is None and not executors.is_completed(root / run.dir_name)
    ]


def thread_share(options: ExecOptions) -> int | None:
    if options.executor is ExecutorKind.LOCAL:
        return max(1, executors.available_cores() // worker_count(options))
    return None


def worker_count(options: ExecOptions) -> int:
    """Runs at once: 1 in serial; otherwise --workers, by default one per core (the cluster decides beyond)."""
    if options.executor is ExecutorKind.SERIAL:
        return 1
    return options.workers or executors.available_cores()


def execute(plan: SweepPlan, root: Path, jobs: list[RunJob], options: ExecOptions,
            on_done: executors.OnDone) -> None:
    kind = options.executor
    if kind is ExecutorKind.SERIAL:
        executors.run_serial(jobs, on_done)
    elif kind is ExecutorKind.LOCAL:
        executors.run_local(jobs, min(worker_count(options), max(1, len(jobs))), on_done)
    elif kind is ExecutorKind.DASK:
        executors.run_dask(jobs, options.scheduler, on_done)
    else:
        executors.run_slurm(jobs, plan.slurm, root / "slurm", on_done)


# ------------------------------------------------------------- results


def collect(plan: SweepPlan, root: Path, fresh: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per planned run: this time's summary, else the run directory's metrics.json."""
    records = []
    for run in plan.runs:
        if run.error is not None:
            summary = executors.failure(run.index, run.error)
        elif run.index in fresh:
            summary = fresh[run.index]
        else:
            metrics = executors.read_metrics(root / run.dir_name)
            summary = executors.summarize_metrics(run.index, metrics) if metrics else executors.failure(
                run.index, "did not run (interrupted?); rerun with --resume")
        records.append({"index": run.index, "run": run.dir_name, **run.swept, **summary})
    return records


def metric_value(record: dict[str, Any], name: str) -> float | None:
    value = record.get(name)
    ok = record.get("status") == "completed" and isinstance(value, (int, float)) and math.isfinite(value)
    return float(value) if ok else None


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
    rows = []
    for setting, members in groups.items():
        row: dict[str, Any] = dict(zip(setting_keys(plan), setting, strict=True))
        row["runs"] = len(members)
        row["completed"] = sum(m.get("status") == "completed" for m in members)
        for name in dict.fromkeys((plan.metric.name, *TABLE_METRICS)):
            values = [v for m in members if (v := metric_value(m, name)) is not None]
            row[f"{name}_mean"] = statistics.fmean(values) if values else None
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    metric = f"{plan.metric.name}_mean"
    sign = 1.0 if plan.metric.goal is Goal.MINIMIZE else -1.0
    return sorted(rows, key=lambda r: (r[metric] is None, sign * (r[metric] or 0.0)))


def write_summary(plan: SweepPlan, root: Path, records: list[dict[str, Any]]) -> None:
    ranked = rank(records, plan)
    payload = {"name": plan.name, "metric": {"name": plan.metric.name, "goal": plan.metric.goal.value},
               "swept_keys": plan.swept_keys, "runs": ranked, "settings": group_by_setting(records, plan)}
    write_text_atomic(root / "summary.json", json.dumps(payload, indent=2))
    write_text_atomic(root / "summary.csv", records_csv(ranked, plan))
    write_comparison(plan, root, records)


def records_csv(records: list[dict[str, Any]], plan: SweepPlan) -> str:
    columns = ["index", "run", *plan.swept_keys, "status", *dict.fromkeys((plan.metric.name, *TABLE_METRICS)),
               "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: format_value(r[k]) if k in plan.swept_keys else r.get(k) for k in columns} for r in records)
    return buffer.getvalue()


def write_comparison(plan: SweepPlan, root: Path, records: list[dict[str, Any]]) -> None:
    from bbbrun import plots

    keys = setting_keys(plan) or plan.swept_keys or ["index"]
    points = [{**{k: format_value(r.get(k)) for k in keys}, "seed": r.get("seed"),
               "value": metric_value(r, plan.metric.name)} for r in records]
    fig = plots.plot_comparison(points, keys, plan.metric.name, f"{plan.name}: {plan.metric.name} per setting")
    with output_errors(root / "comparison.png"):
        plots.save_figure(fig, root / "comparison.png")


# ------------------------------------------------------------- one call


def run_sweep(plan: SweepPlan, root: Path, options: ExecOptions,
              on_done: Callable[[dict[str, Any], str], None]) -> list[dict[str, Any]]:
    """Run what is pending, then write the summary files; returns every run's record."""
    fresh: dict[int, dict[str, Any]] = {}
    names = {run.index: run.dir_name for run in plan.runs}

    def done(summary: dict[str, Any]) -> None:
        fresh[summary["index"]] = summary
        on_done(summary, names[summary["index"]])

    try:
        execute(plan, root, pending_jobs(plan, root, options), options, done)
    finally:  # an interrupted sweep still leaves a summary of what finished
        records = collect(plan, root, fresh)
        write_summary(plan, root, records)
    return records


def check_executor(options: ExecOptions) -> None:
    """Fail before a sweep directory exists when the executor cannot start."""
    import importlib.util

    if options.executor is ExecutorKind.DASK:
        if importlib.util.find_spec("distributed") is None:
            raise ConfigError("--executor dask needs Dask: pip install 'bbbrun[dask]'")
        if not options.scheduler:
            raise ConfigError("--executor dask needs --scheduler tcp://HOST:PORT of a running dask scheduler")
    if options.executor is ExecutorKind.SLURM and importlib.util.find_spec("submitit") is None:
        raise ConfigError("--executor slurm needs submitit: pip install 'bbbrun[slurm]'")
    if options.scheduler and options.executor is not ExecutorKind.DASK:
        raise ConfigError("--scheduler is for --executor dask")


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
    metrics = list(dict.fromkeys((plan.metric.name, *TABLE_METRICS)))
    columns = ["#", *plan.swept_keys, *metrics, "status"]
    ranked = rank(records, plan)
    rows = [[f"{r['index']:03d}", *(cell(r.get(k)) for k in plan.swept_keys), *(cell(r.get(m)) for m in metrics),
             r.get("status", "?")] for r in ranked]
    return columns, rows, [r.get("status") != "completed" for r in ranked]


def setting_table(records: list[dict[str, Any]], plan: SweepPlan) -> Table:
    """Mean ± standard deviation across seeds, best setting first."""
    metrics = list(dict.fromkeys((plan.metric.name, *TABLE_METRICS)))
    columns = [*setting_keys(plan), "runs", *metrics]
    groups = group_by_setting(records, plan)
    rows = []
    for group in groups:
        stats = [mean_std(group[f"{m}_mean"], group[f"{m}_std"]) for m in metrics]
        rows.append([*(group[k] for k in setting_keys(plan)), f"{group['completed']}/{group['runs']}", *stats])
    return columns, rows, [g["completed"] == 0 for g in groups]


def mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4g} ± {std:.2g}" if std is not None else f"{mean:.4g}"


def has_seeds(plan: SweepPlan) -> bool:
    return "seed" in plan.swept_keys


def final_line(summary: dict[str, Any], name: str, metric: str) -> str:
    """The one line printed when a run ends."""
    if summary.get("status") != "completed":
        return f"failed  {name}: {summary.get('error', summary.get('status'))}"
    parts = [f"{k} {cell(summary.get(k))}" for k in dict.fromkeys((metric, *TABLE_METRICS)) if k in summary]
    return f"done    {name}: " + " | ".join(parts)


def failures_message(records: list[dict[str, Any]], root: Path) -> str | None:
    failed = [r for r in records if r.get("status") != "completed"]
    if not failed:
        return None
    names = ", ".join(f"{r['run']} ({r.get('error', r.get('status'))})" for r in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return (f"{len(failed)} of {len(records)} runs failed: {names}{more}; see {root / 'summary.csv'}; "
            f"rerun them with bbbrun sweep --resume {root}")
