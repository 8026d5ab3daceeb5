"""Executors on this machine: one run after another in this process, or a pool of spawned processes."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bbbrun.sweeps.executors.base import (
    Executor,
    OnDone,
    RunJob,
    available_cores,
    execute_run,
    not_run,
    result_of,
)


class SerialExecutor(Executor):
    """`--executor serial`: in this process, in order."""

    def workers(self) -> int:
        return 1

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        for job in jobs:
            on_done(execute_run(job))


class LocalExecutor(Executor):
    """`--executor local`: a spawn process pool; each worker gets cores // workers torch threads and a GPU."""


    def thread_share(self) -> int:
        return max(1, available_cores() // self.workers())

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        workers = min(self.workers(), max(1, len(jobs)))
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
        return not_run(job.index, "not started: the sweep was stopped")
    return execute_run(job)
