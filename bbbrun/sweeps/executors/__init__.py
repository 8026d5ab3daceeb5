"""Where sweep runs execute, by `--executor` name. A new executor is one module with an
`Executor` subclass plus one entry in `EXECUTORS` (and its name in `grid.ExecutorKind`).

torch, dask and submitit are imported only where a run needs them.
"""

from __future__ import annotations

from bbbrun.errors import ConfigError
from bbbrun.sweeps.executors.base import ExecOptions, Executor, OnDone, RunJob, execute_run
from bbbrun.sweeps.executors.dask import DaskExecutor
from bbbrun.sweeps.executors.local import LocalExecutor, SerialExecutor
from bbbrun.sweeps.executors.slurm import SlurmExecutor
from bbbrun.sweeps.grid import ExecutorKind

EXECUTORS: dict[ExecutorKind, type[Executor]] = {
    ExecutorKind.SERIAL: SerialExecutor,
    ExecutorKind.LOCAL: LocalExecutor,
    ExecutorKind.DASK: DaskExecutor,
    ExecutorKind.SLURM: SlurmExecutor,
}


def make_executor(options: ExecOptions) -> Executor:
    """The executor the options name, checked: every problem is raised here, before anything is created."""
    if options.scheduler and options.executor is not ExecutorKind.DASK:
        raise ConfigError("--scheduler is for --executor dask")
    executor = EXECUTORS[options.executor](options)
    executor.check()
    return executor


__all__ = ["EXECUTORS", "ExecOptions", "Executor", "OnDone", "RunJob", "execute_run", "make_executor"]
