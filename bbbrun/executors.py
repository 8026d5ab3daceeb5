"""Where sweep runs execute: this process, a local process pool, a Dask cluster, Slurm.

Every executor calls the same function, `execute_run`, which never raises:
a run that fails comes back as a summary with status "failed" and its error,
so one bad run cannot stop the others. torch, dask and submitit are imported
only where they are needed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.sweep_grid import SlurmOptions

SUMMARY_KEYS = ("status", "error", "epochs_completed", "train_seconds", "device")

OnDone = Callable[[dict[str, Any]], None]


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


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def is_completed(run_dir: Path) -> bool:
    metrics = read_metrics(run_dir)
    return metrics is not None and metrics.get("status") == "completed"


def summarize_metrics(index: int, metrics: dict[str, Any]) -> dict[str, Any]:
    """The small summary a run returns: status, error and every scalar metric."""
    summary: dict[str, Any] = {"index": index}
    for key, value in metrics.items():
        if key in SUMMARY_KEYS or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            summary[key] = value
    return summary


def failure(index: int, error: str) -> dict[str, Any]:
    return {"index": index, "status": "failed", "error": error}


def execute_run(job: RunJob) -> dict[str, Any]:
    """Train one run into its directory; idempotent: a completed run is read back, not retrained."""
    run_dir = Path(job.run_dir)
    if is_completed(run_dir):
        return summarize_metrics(job.index, read_metrics(run_dir) or {})
    run_dir.mkdir(parents=True, exist_ok=True)
    if not job.capture_output:
        return summarize_metrics(job.index, train_run(job, run_dir))
    with open(run_dir / "run.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return summarize_metrics(job.index, train_run(job, run_dir))


def train_run(job: RunJob, run_dir: Path) -> dict[str, Any]:
    import torch

    from bbbrun import runner
    from bbbrun.config import config_from_dict
    from bbbrun.files import write_text_atomic

    if job.num_threads:
        torch.set_num_threads(job.num_threads)
    try:
        session = runner.start_session(config_from_dict(job.config))
        return runner.run_training(session, run_dir).metrics
    except Exception as err:  # any failure is this run's result, not the sweep's
        traceback.print_exc()
        metrics = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
        return metrics


# ------------------------------------------------------------- local


def run_serial(jobs: list[RunJob], on_done: OnDone) -> None:
    for job in jobs:
        on_done(execute_run(job))


def visible_gpus(configs: Iterable[dict[str, Any]]) -> list[int]:
    """GPU indices to hand out, one per worker; none when every run asks for the CPU."""
    if all(cfg.get("device") == "cpu" for cfg in configs):
        return []
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


# Set in each local worker: the parent's "stop" event, so jobs already queued
# to a worker when the sweep is interrupted return at once instead of training.
_stop_event: Any = None


def init_worker(num_threads: int, gpus: Any, stop: Any) -> None:
    """Runs once in each spawned worker, before torch touches a device."""
    global _stop_event
    _stop_event = stop
    gpu = gpus.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(num_threads)


def execute_local(job: RunJob) -> dict[str, Any]:
    if _stop_event is not None and _stop_event.is_set():
        return failure(job.index, "not started: the sweep was stopped")
    return execute_run(job)


def run_local(jobs: list[RunJob], workers: int, on_done: OnDone) -> None:
    """A spawn process pool; each worker gets cores // workers torch threads and, if there are GPUs, one GPU."""
    context = multiprocessing.get_context("spawn")
    gpus = visible_gpus(job.config for job in jobs)
    queue, stop = context.Queue(), context.Event()
    for i in range(workers):
        queue.put(gpus[i % len(gpus)] if gpus else None)
    threads = max(1, available_cores() // workers)
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(threads, queue, stop)
    ) as pool:
        futures = {pool.submit(execute_local, job): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                on_done(result_of(future, futures[future].index))
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def result_of(future: Any, index: int) -> dict[str, Any]:
    """A future's summary, or a failure naming why the worker itself died."""
    try:
        return future.result()
    except Exception as err:
        return failure(index, f"worker failed: {type(err).__name__}: {err}")


# ------------------------------------------------------------- clusters


def run_dask(jobs: list[RunJob], scheduler: str | None, on_done: OnDone) -> None:
    """Submit to an existing Dask cluster; the run directories must be on storage its workers share."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--executor dask needs Dask: pip install 'bbbrun[dask]'") from None
    if not scheduler:
        raise ConfigError("--executor dask needs --scheduler tcp://HOST:PORT of a running dask scheduler")
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as err:
        raise ConfigError(f"could not reach the dask scheduler at {scheduler}: {err}") from None
    tag = uuid.uuid4().hex[:8]
    with client:
        futures = {
            client.submit(execute_run, job, key=f"bbbrun-{tag}-{job.index:03d}", pure=False): job.index for job in jobs
        }
        for future in as_completed(futures):
            on_done(result_of(future, futures[future]))


def run_slurm(jobs: list[RunJob], options: SlurmOptions, folder: Path, on_done: OnDone) -> None:
    """One Slurm job array through submitit; cluster "local" runs it here, for tests."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'bbbrun[slurm]'") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    params: dict[str, Any] = {
        "timeout_min": options.time_min, "gpus_per_node": options.gpus_per_node,
        "cpus_per_task": options.cpus_per_task, "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition:
        params["slurm_partition"] = options.partition
    if options.mem_gb:
        params["mem_gb"] = options.mem_gb
    executor.update_parameters(**params)
    array = executor.map_array(execute_run, jobs)
    indices = {job.job_id: run.index for job, run in zip(array, jobs, strict=True)}
    # Polling a real Slurm queue often loads its controller; a local array can be watched closely.
    poll_seconds = 10.0 if options.cluster == "slurm" else 0.5
    for job in submitit.helpers.as_completed(array, poll_frequency=poll_seconds):
        on_done(result_of(job, indices[job.job_id]))
