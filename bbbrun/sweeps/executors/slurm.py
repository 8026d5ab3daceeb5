"""`--executor slurm`: one Slurm job array through submitit; cluster "local" runs it here, for tests.

On a real cluster the array is watched through the controller (`slurm_queue`), so a task that ends
without a result (cancelled, past its time limit, its node lost) is reported as a failed run at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import time
from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.sweeps.executors.base import Executor, OnDone, RunJob, execute_run, failure
from bbbrun.sweeps.executors.slurm_queue import (
    ACTIVE,
    check_partition,
    check_submission,
    ending,
    last_error_line,
    slurm,
    task_states,
)

# The longest wait between two looks at the queue: polling a real controller often loads it.
MAX_POLL_SECONDS = 10.0


class SlurmExecutor(Executor):
    def check(self) -> None:
        if importlib.util.find_spec("submitit") is None:
            raise ConfigError("--executor slurm needs submitit: pip install 'bbbrun[slurm]'")
        if self.options.slurm.cluster != "slurm":
            return
        if shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm needs Slurm: no sbatch on PATH; run on a Slurm login node, "
                              "or use --executor local")
        check_partition(self.options.slurm.partition, self.options.slurm.time_min)
        check_submission(self.options.slurm)

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        if not jobs:
            return
        array = self.submit(jobs, folder)
        indices = {job.job_id: run.index for job, run in zip(array, jobs, strict=True)}
        if self.options.slurm.cluster == "slurm":
            watch_array(array, indices, on_done, self.options.slurm.time_min)
        else:
            import submitit

            for job in submitit.helpers.as_completed(array, poll_frequency=0.5):
                on_done(job_summary(job, indices[job.job_id]))

    def submit(self, jobs: list[RunJob], folder: Path) -> list[Any]:
        import submitit

        options = self.options.slurm
        executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
        params: dict[str, Any] = {
            "timeout_min": options.time_min, "gpus_per_node": options.gpus_per_node,
            "cpus_per_task": options.cpus_per_task, "slurm_array_parallelism": options.array_parallelism,
        }
        if options.cluster == "slurm":
            # submitit asks for a USR2 90 s before the limit to requeue checkpointable jobs, and fails the
            # others when it arrives; Slurm sends it up to 30 s earlier still, so with --time 1 every run
            # would fail at once. A run here is never requeued: it runs to its limit and is reported then.
            params["slurm_signal_delay_s"] = 0
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.mem_gb:
            params["mem_gb"] = options.mem_gb
        executor.update_parameters(**params)
        try:  # submitit prints sbatch's refusal as well as raising it: it is said once, below
            with contextlib.redirect_stderr(io.StringIO()):
                return list(executor.map_array(execute_run, jobs))
        except Exception as err:
            raise ConfigError(f"Slurm refused the job array: {last_error_line(str(err))}") from None


def watch_array(array: list[Any], indices: dict[str, int], on_done: OnDone, time_min: int) -> None:
    """Report each task as it ends, with its result or the reason Slurm gives; stopping cancels the rest."""
    waiting = {job.job_id: job for job in array}
    array_id = next(iter(waiting)).split("_")[0]
    ended_once: set[str] = set()
    start = time.monotonic()
    try:
        while waiting:
            touch_folder(array[0].paths.folder)
            states = task_states(array_id)
            seen_ending = len(ended_once)
            for task, job in list(waiting.items()):
                summary = task_summary(job, indices[task], states, ended_once, time_min)
                if summary is not None:
                    del waiting[task]
                    on_done(summary)
            if waiting:  # a task just seen ending is looked at again soon
                soon = len(ended_once) > seen_ending
                time.sleep(1.0 if soon else min(MAX_POLL_SECONDS, 1.0 + (time.monotonic() - start) / 6))
    except BaseException:
        if waiting:
            slurm("scancel", *waiting)
        raise


def task_summary(job: Any, index: int, states: dict[str, str] | None, ended_once: set[str],
                 time_min: int) -> dict[str, Any] | None:
    """The task's summary once it has ended, else None."""
    if job.paths.result_pickle.exists():
        return job_summary(job, index)
    if states is None or states.get(job.job_id) in ACTIVE:
        return None
    if job.job_id not in ended_once:  # its result may reach shared storage a moment after the state changes
        ended_once.add(job.job_id)
        return None
    return failure(index, ending(job.job_id, states.get(job.job_id), time_min, job.paths.stderr))


def job_summary(job: Any, index: int) -> dict[str, Any]:
    """The run's summary from the job's result file, or the job's own error in one line."""
    try:
        return job.result()
    except Exception as err:
        return failure(index, f"slurm job {job.job_id} failed: {last_error_line(str(err))}")


def touch_folder(folder: Path) -> None:
    """Revalidate a shared folder's listing, so that a result file written on another node is seen."""
    with contextlib.suppress(OSError):
        folder.chmod(folder.stat().st_mode)
