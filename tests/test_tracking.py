"""`tracking: mlflow`: each run's parameters, log points, final metrics and files in an MLflow store;
a sweep as a parent run with its runs as children. Needs the mlflow extra; the refusal does not."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from typer.testing import CliRunner

from bbbrun import tracking
from bbbrun.cli import app

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow is not installed (pip install 'bbbrun[mlflow]')")


def client(store: Path) -> Any:  # an MlflowClient (mlflow is imported only where installed)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.resolve().as_uri())


def runs_of(store: Path, experiment: str) -> list[Any]:
    mlflow = client(store)
    found = mlflow.get_experiment_by_name(experiment)
    assert found is not None
    return mlflow.search_runs([found.experiment_id])


@needs_mlflow
def test_a_tracked_run_logs_params_each_log_point_final_metrics_and_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    config = write_config(tmp_path / "tiny.yaml", tracking="mlflow", tracking_uri=str(store))
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    (run,) = runs_of(store, "tiny")
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.runName"] == f"tiny/{run_dir.name}"
    assert run.data.params["model.hidden_dim"] == "8" and run.data.params["tracking"] == "mlflow"
    history = list(csv.DictReader(io.StringIO((run_dir / "history.csv").read_text())))
    logged = client(store).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in logged] == [int(r["epoch"]) for r in history] == [10, 20, 30]
    assert [m.value for m in logged] == pytest.approx([float(r["loss"]) for r in history])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["val_rmse"] == pytest.approx(metrics["val_rmse"])
    files = {a.path for a in client(store).list_artifacts(run.info.run_id)}
    assert {"metrics.json", "run.json", "config.yaml", "checkpoint.pt", "val.png"} <= files


@needs_mlflow
def test_a_tracked_sweep_is_a_parent_run_with_its_runs_as_children(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 10}, tracking="mlflow",
                          tracking_uri=str(store))
    result = CliRunner().invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "serial",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    runs = runs_of(store, "tiny")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 3 and len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r is not parent]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1"]
    assert {a.path for a in client(store).list_artifacts(parent.info.run_id)} >= {"summary.csv", "sweep.yaml"}
    assert all(r.info.status == "FINISHED" for r in runs)


def test_without_the_extra_tracking_is_refused_in_one_line_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    config = write_config(tmp_path / "tiny.yaml", tracking="mlflow")
    for args in (["train", str(config)], ["sweep", str(config), "seed=0,1", "--executor", "serial"]):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and "pip install 'bbbrun[mlflow]'" in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@needs_mlflow
def test_a_store_that_cannot_be_written_fails_the_run_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 10}, tracking="mlflow",
                          tracking_uri=str(tmp_path / "file"))
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "could not log to mlflow" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
