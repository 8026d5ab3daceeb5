"""`--executor slurm`: one Slurm job array through submitit; cluster "local" runs it here, for tests."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.sweeps.executors.base import Executor, OnDone, RunJob, execute_run, result_of


class SlurmExecutor(Executor):
    def check(self) -> None:
        if importlib.util.find_spec("submitit") is None:
            raise ConfigError("--executor slurm needs submitit: pip install 'bbbrun[slurm]'")
        if self.options.slurm.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError("--executor slurm needs Slurm: no sbatch on PATH; run on a Slurm login node, "
                              "or use --executor local")

    def run(self, jobs: list[RunJob], on_done: OnDone, folder: Path) -> None:
        import submitit

        options = self.options.slurm
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
