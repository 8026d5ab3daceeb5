"""The executor interface, and the one function every executor runs for a job.

`execute_run` never raises: a run that fails comes back as a summary with
status "failed" and its error, so one bad run cannot stop the others.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bbbrun.runs import marker
from bbbrun.runs.layout import RunDir, failure_record
from bbbrun.runs.provenance import Invocation
from bbbrun.sweeps.grid import ExecutorKind
from bbbrun.sweeps.slurm_options import SlurmOptions

SUMMARY_KEYS = ("status", "error", "epochs_completed", "train_seconds", "device")

OnDone = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ExecOptions:
    """Where and how wide a sweep runs, as the user asked."""

    executor: ExecutorKind = ExecutorKind.LOCAL
    workers: int | None = None
    scheduler: str | None = None
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    # Runs that can share a batched model train as one, up to this many (1: each alone).
    batch_members: int = 64


@dataclass(frozen=True)
class RunJob:
    """One run as it travels to a worker: plain data only, so any executor can pickle it."""

    index: int
    run_dir: str
    config: dict[str, Any]
    num_threads: int | None = None
    # Workers that run one job at a time send their output to run.log; Dask's
    # threads share sys.stdout, so there it stays where the worker put it.
    capture_output: bool = True
    # The sweep's command line, for each run's run.json (None: the worker's own).
    invocation: Invocation | None = None
    tracking_parent: str | None = None  # the sweep's parent run in the tracking service
    # A batched group: these runs train as one model (this job's own index and
    # directory are its first member's); its summary lists theirs under "members".
    members: tuple[RunJob, ...] = ()


class Executor(ABC):
    """Runs a sweep's jobs somewhere and reports each summary as it arrives."""

    # Whether each worker runs one job at a time in its own process (so its output can go to run.log).
    captures_output: ClassVar[bool] = True

    def __init__(self, options: ExecOptions) -> None:
        self.options = options

    def check(self) -> None:  # noqa: B027 - most executors need nothing
        """Fail, before a sweep directory exists, when this executor cannot start."""

    def workers(self) -> int:
        """Runs at once: --workers, by default one per core (a cluster decides beyond that)."""
        return self.options.workers or available_cores()

    def thread_share(self) -> int | None:
        """torch threads per run; None leaves it to the worker."""
        return None

    @abstractmethod
    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        """Run every job; `folder` is the sweep's place for the executor's own files."""


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def summarize_metrics(index: int, metrics: dict[str, Any]) -> dict[str, Any]:
    """The small summary a run returns: status, error and every scalar metric."""
    summary: dict[str, Any] = {"index": index}
    for key, value in metrics.items():
        if key in SUMMARY_KEYS or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            summary[key] = value
    if metrics.get("stage") == "results" and "error" not in summary:
        summary["error"] = "stopped while writing its results; training is complete and --resume finishes them"
    return summary


def failure(index: int, error: str) -> dict[str, Any]:
    return {"index": index, **failure_record(error)}


def not_run(index: int, reason: str) -> dict[str, Any]:
    """A run the user's stop kept from running: interrupted, not failed, and --resume runs it."""
    return {"index": index, "status": "interrupted", "error": reason}


def result_of(future: Any, index: int) -> dict[str, Any]:
    """A future's summary, or a failure naming why the worker itself died."""
    try:
        return future.result()
    except Exception as err:
        return failure(index, f"worker failed: {type(err).__name__}: {err}")


def execute_run(job: RunJob) -> dict[str, Any]:
    """Train one run (or a batched group) into its directory; a completed run is read back, not retrained."""
    if job.num_threads:
        import torch

        torch.set_num_threads(job.num_threads)
    if job.members:
        from bbbrun.sweeps.batching import execute_group

        return execute_group(job)
    run_dir = RunDir(Path(job.run_dir))
    if run_dir.is_completed():
        return summarize_metrics(job.index, run_dir.read_metrics() or {})
    make_run_dir(run_dir)
    if not job.capture_output:
        return summarize_metrics(job.index, train_run(job, run_dir))
    with open(run_dir.log, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return summarize_metrics(job.index, train_run(job, run_dir))


def make_run_dir(run_dir: RunDir) -> None:
    """A sweep run's directory, marked as bbbrun's (so --resume and the output checks know it)."""
    run_dir.path.mkdir(parents=True, exist_ok=True)
    if marker.marker_kind(run_dir.path) is None:
        marker.mark(run_dir.path, marker.RUN)


def log_lines() -> Any:
    """Callbacks that print the training log, as `bbbrun train` does off a terminal (into run.log here)."""
    from bbbrun.fit.logline import format_log_line
    from bbbrun.fit.loop import Callbacks

    return Callbacks(on_log=lambda row: print(format_log_line(row), flush=True),
                     on_stage=lambda message: print(message, flush=True))


def train_run(job: RunJob, run_dir: RunDir) -> dict[str, Any]:
    from bbbrun.runs import runner
    from bbbrun.runs.session import sweep_session

    try:
        session = sweep_session(job.config, run_dir)
        return runner.run_training(session, run_dir, log_lines(), job.invocation,
                                   job.tracking_parent).metrics
    except Exception as err:  # any failure is this run's result, not the sweep's
        traceback.print_exc()
        return run_dir.write_failure(f"{type(err).__name__}: {err}")
