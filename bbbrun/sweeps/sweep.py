"""A sweep from request to summary: its plan, its directory, the runs still to do, the ranked results.

`grid` expands what the user typed into runs and an executor runs them; this
module ties the two to a sweep directory (`runs.layout.SweepDir`), whose
sweep.yaml holds every run's full config, so --resume needs nothing else.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bbbrun.config import config_from_dict
from bbbrun.config.schema import MAX_SEED
from bbbrun.errors import ConfigError, Interrupted, SweepFailed
from bbbrun.reprs import short_repr
from bbbrun.runs.layout import RunDir, SweepDir
from bbbrun.runs.provenance import Invocation
from bbbrun.sweeps.batching import batch_jobs, member_indices
from bbbrun.sweeps.executors import Executor, RunJob
from bbbrun.sweeps.executors.base import failure, not_run, summarize_metrics
from bbbrun.sweeps.grid import (
    MAX_RUNS,
    RunPlan,
    SweepPlan,
    expand,
    format_value,
    plan_from_dict,
    plan_to_dict,
    read_spec,
)
from bbbrun.sweeps.summary import write_summary
from bbbrun.tracking import SweepTracker, check_plan_tracking, open_sweep_tracker


@dataclass(frozen=True)
class SweepRequest:
    """What the user typed: sources (config or sweep files, then overrides), or a sweep directory to resume."""

    sources: tuple[str, ...] = ()
    resume: Path | None = None
    partition: str | None = None
    time_min: int | None = None
    gpus: int | None = None


@dataclass(frozen=True)
class Prepared:
    plan: SweepPlan
    existing: SweepDir | None  # the directory being resumed, if any


# ------------------------------------------------------------- planning


def prepare(request: SweepRequest) -> Prepared:
    """The plan to run: expanded from the sources, or read back from the resumed directory."""
    if request.resume is not None:
        if request.sources:
            raise ConfigError("--resume takes the sweep directory alone; its sweep.yaml fixes every run")
        prepared = resume_plan(request.resume)
    else:
        prepared = Prepared(plan_from_args(list(request.sources)), None)
    plan = with_slurm_flags(prepared.plan, request.partition, request.time_min, request.gpus)
    check_plan_tracking([run.config for run in plan.runs if run.error is None])
    return Prepared(plan, prepared.existing)


def resume_plan(path: Path) -> Prepared:
    """A sweep (or benchmark) directory's own plan, to finish what it has not."""
    existing = SweepDir.existing(path)
    return Prepared(plan_from_dict(existing.read_plan(), existing.plan), existing)


def split_seeds(overrides: list[str]) -> tuple[int | None, list[str]]:
    """`seeds=K` (K runs with seeds seed, seed+1, ...: `bbbrun train CONFIG seeds=K`) apart from the rest."""
    count, rest = None, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() != "seeds":
            rest.append(item)
            continue
        if count is not None:
            raise ConfigError("seeds= is given twice; give it once")
        count = int(value) if value.strip().isdigit() and len(value.strip()) <= 9 else 0
        if value.strip().isdigit() and (len(value.strip()) > 9 or count > MAX_RUNS):
            raise ConfigError(f"seeds={short_repr(value)} is more runs than one sweep takes (at most {MAX_RUNS:,})")
        if count < 1:
            raise ConfigError(f"seeds={short_repr(value)}: give a whole number of seeds >= 1, e.g. seeds=10")
    return count, rest


def seeds_request(config: Path, overrides: list[str], count: int, base_seed: int) -> SweepRequest:
    """The sweep over `count` consecutive seeds from the config's own that `train ... seeds=K` runs."""
    if base_seed + count - 1 > MAX_SEED:
        raise ConfigError(f"seeds={count} from seed={base_seed} goes past the largest seed, {MAX_SEED}")
    rest = [item for item in overrides if item.partition("=")[0].strip() != "seed"]  # base_seed has it
    return SweepRequest((str(config), *rest, f"seed=range({base_seed},{base_seed + count})"))


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


# ------------------------------------------------------------- the sweep directory


def open_sweep(prepared: Prepared, out: Path, kind: str = "sweeps") -> SweepDir:
    """The resumed directory, or a new one under out/<kind>/ with the plan written into it."""
    if prepared.existing is not None:
        return prepared.existing
    sweep = SweepDir.create(out, prepared.plan.name, kind)
    sweep.write_plan(plan_to_dict(prepared.plan))
    return sweep


def pending_jobs(plan: SweepPlan, sweep: SweepDir, executor: Executor,
                 tracking_parent: str | None = None) -> list[RunJob]:
    """Jobs for the valid runs that have no completed metrics.json yet."""
    threads = executor.thread_share()
    return [
        RunJob(run.index, str(sweep.run(run.dir_name).path.resolve()), run.config, threads, executor.captures_output,
               run_invocation(run), tracking_parent)
        for run in plan.runs
        if run.error is None and not sweep.run(run.dir_name).is_completed()
    ]


def run_invocation(run: RunPlan) -> Invocation:
    """The sweep's command line, with the run's own swept values as its overrides."""
    return Invocation.current(None, [f"{k}={format_value(v)}" for k, v in run.swept.items()])


# ------------------------------------------------------------- results


def collect(plan: SweepPlan, sweep: SweepDir, fresh: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per planned run: this time's summary, else the run directory's metrics.json."""
    records = []
    for run in plan.runs:
        if run.error is not None:
            summary = failure(run.index, run.error)
        elif run.index in fresh:
            summary = fresh[run.index]
        else:
            metrics = sweep.run(run.dir_name).read_metrics()
            summary = summarize_metrics(run.index, metrics) if metrics else not_run(run.index, stopped_reason(
                sweep.run(run.dir_name)))
        records.append({"index": run.index, "run": run.dir_name, **run.swept, **summary})
    return records


def stopped_reason(run_dir: RunDir) -> str:
    """Why a run of a stopped sweep has no metrics: it never started, or it stopped with a checkpoint to go on from."""
    if run_dir.checkpoint.is_file():
        return "stopped with the sweep; its last checkpoint is kept and --resume goes on from it"
    return "did not run (the sweep was stopped); rerun with --resume"


# ------------------------------------------------------------- one call


def run_sweep(plan: SweepPlan, sweep: SweepDir, executor: Executor, on_done: Callable[[dict[str, Any], str], None],
              resume_with: str = "bbbrun sweep") -> list[dict[str, Any]]:
    """Run what is pending, then write the summary files; returns every run's record.

    An interrupt still leaves a summary of what finished, and becomes an `Interrupted` error.
    """
    fresh: dict[int, dict[str, Any]] = {}
    names = {run.index: run.dir_name for run in plan.runs}
    parent = open_parent_tracker(plan, sweep)
    pending = pending_jobs(plan, sweep, executor, parent.parent_id if parent else None)
    jobs = batch_jobs(pending, executor.options.batch_members, executor.workers())
    groups = {job.index: member_indices(job) for job in jobs}

    def record(summary: dict[str, Any]) -> None:
        fresh[summary["index"]] = summary
        on_done(summary, names[summary["index"]])

    def done(summary: dict[str, Any]) -> None:
        # A group job reports its runs under "members"; a group whose worker died, once for all of them.
        if "members" in summary:
            for member in summary["members"]:
                record(member)
            return
        for index in groups.get(summary["index"], [summary["index"]]):
            record({**summary, "index": index})

    status = "interrupted"
    try:
        executor.run(jobs, done, sweep.slurm)
        status = "completed"
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)  # interrupts.SignalStop names SIGTERM too
        raise Interrupted(f"sweep stopped by {signal.Signals(signum).name}; what finished is in "
                          f"{sweep.summary_csv}; continue with: {resume_with} --resume {sweep.path}", signum) from None
    finally:
        records = collect(plan, sweep, fresh)
        write_summary(plan, sweep, records)
        if parent is not None:
            parent.finish(status, [sweep.plan, sweep.summary_csv, sweep.summary_json, sweep.comparison])
    return records


def open_parent_tracker(plan: SweepPlan, sweep: SweepDir) -> SweepTracker | None:
    """The sweep's parent run when its runs are tracked (the first valid run's config says where)."""
    first = next((run for run in plan.runs if run.error is None), None)
    if first is None:
        return None
    return open_sweep_tracker(config_from_dict(first.config), f"{plan.name}/{sweep.path.name}")


def raise_for_failures(records: list[dict[str, Any]], sweep: SweepDir, resume_with: str = "bbbrun sweep") -> None:
    failed = [r for r in records if r.get("status") != "completed"]
    if not failed:
        return
    names = ", ".join(f"{r['run']} ({r.get('error', r.get('status'))})" for r in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    what = "failed" if all(r.get("status") == "failed" for r in failed) else "did not complete"
    raise SweepFailed(f"{len(failed)} of {len(records)} runs {what}: {names}{more}; see {sweep.summary_csv}; "
                      f"rerun them with {resume_with} --resume {sweep.path}")
