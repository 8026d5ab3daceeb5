"""Tracking to MLflow (the `bbbrun[mlflow]` extra): a local folder by default, any tracking URI MLflow accepts.

Everything goes through an explicit `MlflowClient`, never MLflow's global
"active run", so runs in threads (Dask) or processes (the local pool) do not
share state. mlflow is imported only here, and only when a run asks for it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bbbrun.tracking.base import SweepTracker, TrackedRun, Tracker

# bbbrun's statuses as MLflow's run states.
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
MAX_PARAM_LENGTH = 500  # MLflow's limit on a parameter's value
BATCH = 100  # MLflow takes at most this many parameters in one call


def store_uri(uri: str) -> str:
    """A plain path (default: ./mlruns) as a file: URI; anything with a scheme as it is."""
    if "://" in uri or uri.startswith("file:"):
        return uri
    return Path(uri).resolve().as_uri()


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    resolved = store_uri(uri)
    if resolved.startswith("file:"):
        # MLflow 3 keeps its folder store behind an opt-in; a local folder is what bbbrun promises by default.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=resolved)


def experiment_id(mlflow_client: Any, name: str) -> str:
    """The experiment's id, created if new (two workers creating it at once both end up with the one)."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(mlflow_client.create_experiment(name))
    except Exception:  # created meanwhile by another run of the sweep
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


class MlflowRun:
    """One MLflow run opened through a client."""

    def __init__(self, where: TrackedRun) -> None:
        self.client = client(where.uri)
        tags = {"mlflow.runName": where.name}
        if where.parent_id is not None:
            tags["mlflow.parentRunId"] = where.parent_id
            experiment = self.client.get_run(where.parent_id).info.experiment_id
        else:
            experiment = experiment_id(self.client, where.experiment)
        self.run_id: str = self.client.create_run(experiment, tags=tags, run_name=where.name).info.run_id

    def finish(self, status: str, files: list[Path]) -> None:
        for path in files:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(status, "FAILED"))


class MlflowTracker(MlflowRun, Tracker):
    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in params.items()]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + BATCH])

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, float(value), stamp, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)


class MlflowSweepTracker(MlflowRun, SweepTracker):
    @property
    def parent_id(self) -> str:
        return self.run_id


# What bbbrun.tracking opens for `tracking: mlflow`.
RUN_TRACKER = MlflowTracker
SWEEP_TRACKER = MlflowSweepTracker
