"""A sweep from start to summary: its directory, the runs still to do, the ranked results.

`sweep_grid` expands what the user typed into runs and `executors` runs
them; this module ties the two to a sweep root on disk:

    outputs/sweeps/<name>/<timestamp>/
        sweep.yaml        every run's full config, so --resume needs nothing else
        <NNN>_<overrides>/  the same files as `bbbrun train`
        summary.csv, summary.json, comparison.png  (written by sweep_summary)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bbbrun import executors
from bbbrun.errors import ConfigError
from bbbrun.executors import RunJob
from bbbrun.files import new_run_dir, write_text_atomic
from bbbrun.sweep_grid import (
    ExecutorKind,
    SweepPlan,
    expand,
    format_value,
    plan_to_dict,
    read_plan_file,
    read_spec,
)
from bbbrun.sweep_summary import write_summary


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
    flags: dict[str, Any] = {"partition": partition, "time_min": time_min, "gpus_per_node": gpus}
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


def failures_message(records: list[dict[str, Any]], root: Path) -> str | None:
    failed = [r for r in records if r.get("status") != "completed"]
    if not failed:
        return None
    names = ", ".join(f"{r['run']} ({r.get('error', r.get('status'))})" for r in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return (f"{len(failed)} of {len(records)} runs failed: {names}{more}; see {root / 'summary.csv'}; "
            f"rerun them with bbbrun sweep --resume {root}")
