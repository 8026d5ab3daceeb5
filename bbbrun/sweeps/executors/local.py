"""Executors on this machine: one run after another in this process, or a pool of spawned processes."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from bbbrun import interrupts
from bbbrun.runs.layout import RunDir
from bbbrun.sweeps.executors.base import (
    Executor,
    OnDone,
    RunJob,
    available_cores,
    execute_run,
    failure,
    not_run,
    result_of,
)


class SerialExecutor(Executor):
    """`--executor serial`: in this process, in order."""

    def workers(self) -> int:
        return 1

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        for job in jobs:
            seen = len(interrupts.received)
            on_done(execute_run(job))
            # A signal the run caught itself (one that came while it wrote its results) still stops the sweep.
            if len(interrupts.received) > seen:
                raise interrupts.SignalStop(interrupts.received[-1])


class LocalExecutor(Executor):
    """`--executor local`: a spawn process pool; each worker gets cores // workers torch threads and a GPU.

    A worker killed by the system (SIGKILL, the out-of-memory killer) breaks the whole pool; the jobs it
    took down with it are run again in a fresh pool, and a job whose worker dies twice fails alone.
    Stopped by a signal, the pool's running workers are terminated, so none outlives the sweep.
    """

    def thread_share(self) -> int:
        return max(1, available_cores() // self.workers())

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        pending = list(jobs)
        for _ in range(len(jobs) + 1):  # each round ends with a finished pool or at least one death
            if not pending:
                return
            pending = self.run_pool(pending, on_done)
        for job in pending:
            fail_job(job, "its worker processes kept dying; see its run.log", on_done)

    def run_pool(self, jobs: list[RunJob], on_done: OnDone) -> list[RunJob]:
        """Run jobs in one pool; returns those to run again because another job's worker died."""
        workers = min(self.workers(), max(1, len(jobs)))
        context = multiprocessing.get_context("spawn")
        gpus = visible_gpus(job.config for job in jobs)
        queue, stop = context.Queue(), context.Event()
        # Per job: the pid of the worker running it, negated once the pool terminated that worker; 0: never ran.
        running = context.Array("i", max(job.index for job in jobs) + 1)
        for i in range(workers):
            queue.put(gpus[i % len(gpus)] if gpus else None)
        threads = max(1, available_cores() // workers)
        lost: list[RunJob] = []
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=init_worker, initargs=(threads, queue, stop, running)
        ) as pool:
            futures = {pool.submit(execute_local, job): job for job in jobs}
            try:
                for future in concurrent.futures.as_completed(futures):
                    job = futures[future]
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(job)
                    else:
                        on_done(result_of(future, job.index))
            except BaseException:
                stop.set()
                terminate_running(running)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return retry_or_fail(lost, running, on_done)


def terminate_running(running: Any) -> None:
    """SIGTERM to every worker that is running a job, so a stopped sweep leaves no process behind."""
    for pid in {p for p in running[:] if p > 0}:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def retry_or_fail(lost: list[RunJob], running: Any, on_done: OnDone) -> list[RunJob]:
    """Jobs a broken pool took down: the one whose worker was killed fails; the others run again."""
    again = []
    for job in lost:
        if running[job.index] > 0:  # its worker died without being terminated by the pool: killed
            fail_job(job, "its worker process was killed (SIGKILL, or the system ran out of memory); the "
                     "other runs went on; see its run.log", on_done)
        else:
            again.append(job)
    return again


def fail_job(job: RunJob, reason: str, on_done: OnDone) -> None:
    RunDir(Path(job.run_dir)).write_failure(reason)
    on_done(failure(job.index, reason))


def visible_gpus(configs: Iterable[dict[str, Any]]) -> list[int]:
    """GPU indices to hand out, one per worker; none when every run asks for the CPU."""
    if all(cfg.get("device") == "cpu" for cfg in configs):
        return []
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


# Set in each local worker: the parent's "stop" event, so jobs already queued
# to a worker when the sweep is interrupted return at once instead of training;
# and the shared table where a worker writes its pid under the job it runs.
_stop_event: Any = None
_running: Any = None


def init_worker(num_threads: int, gpus: Any, stop: Any, running: Any) -> None:
    """Runs once in each spawned worker, before torch touches a device."""
    # The parent owns Ctrl-C (the terminal sends it to every worker too): it stops the pool and
    # terminates running workers; a KeyboardInterrupt here would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _stop_event, _running
    _stop_event, _running = stop, running
    signal.signal(signal.SIGTERM, on_terminate)
    gpu = gpus.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(num_threads)


def on_terminate(signum: int, _frame: Any) -> None:
    """The pool (or the stopped sweep) terminates this worker: mark its job as not this worker's fault."""
    if _running is not None:
        for i, pid in enumerate(_running[:]):
            if pid == os.getpid():
                _running[i] = -pid
    os._exit(128 + signum)


def execute_local(job: RunJob) -> dict[str, Any]:
    if _stop_event is not None and _stop_event.is_set():
        return not_run(job.index, "not started: the sweep was stopped")
    if _running is not None:
        _running[job.index] = os.getpid()
    try:
        return execute_run(job)
    finally:
        if _running is not None:
            _running[job.index] = 0
