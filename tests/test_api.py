"""The public Python API (`import bbbrun`), used only through its public names."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY, write_config
from typer.testing import CliRunner

import bbbrun
from bbbrun.cli import app


def cli_predictions(run: Path, level: float) -> dict[str, np.ndarray]:
    """What `bbbrun predict` writes for a 7-point grid over [-2, 2], column by column."""
    result = CliRunner().invoke(app, ["predict", str(run), "--x-min", "-2", "--x-max", "2", "--num-points", "7",
                                      "--level", str(level)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def test_load_predicts_what_bbbrun_predict_writes(two_runs: list[Path]) -> None:
    run = bbbrun.load(two_runs[0])
    x = np.linspace(-2, 2, 7, dtype=np.float32)
    expected = cli_predictions(two_runs[0], 0.8)
    pred = run.predict(x)
    for name in ("mean", "std", "epistemic_std", "aleatoric_std"):
        assert getattr(pred, name).shape == (7,)
        np.testing.assert_allclose(getattr(pred, name), expected[name], rtol=1e-5, atol=1e-6)
    lower, upper = pred.interval(0.8)
    np.testing.assert_allclose(lower, expected["lower"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(upper, expected["upper"], rtol=1e-5, atol=1e-6)


def test_numpy_torch_and_column_inputs_give_the_same_prediction(two_runs: list[Path]) -> None:
    run = bbbrun.load(two_runs[0] / "checkpoint.pt")
    x = np.linspace(-1, 1, 5)
    flat = run.predict(x)
    for other in (run.predict(torch.tensor(x)), run.predict(x.reshape(-1, 1)), run.predict(list(x))):
        np.testing.assert_array_equal(other.mean, flat.mean)
        np.testing.assert_array_equal(other.std, flat.std)
    np.testing.assert_allclose(flat.std ** 2, flat.epistemic_std ** 2 + flat.aleatoric_std ** 2, rtol=1e-10)


def test_a_loaded_run_carries_its_config_metrics_history_and_provenance(two_runs: list[Path]) -> None:
    run = bbbrun.load(two_runs[1])
    assert isinstance(run.config, bbbrun.Config) and run.config.model.hidden_dim == 16
    assert run.metrics == json.loads((two_runs[1] / "metrics.json").read_text())
    history = run.history
    rows = history.to_dict("records") if hasattr(history, "to_dict") else history
    assert [row["epoch"] for row in rows] == [10, 20, 30]
    assert run.provenance is not None and run.provenance["status"] == "completed"
    assert run.feature_names == ("x",)


def test_bad_inputs_are_bbbrun_errors(two_runs: list[Path], tmp_path: Path) -> None:
    run = bbbrun.load(two_runs[0])
    with pytest.raises(bbbrun.BbbrunError, match=r"shape \(N, 1\)"):
        run.predict(np.zeros((3, 2)))
    with pytest.raises(bbbrun.BbbrunError, match="finite"):
        run.predict(np.array([0.0, np.nan]))
    with pytest.raises(bbbrun.BbbrunError, match="level"):
        run.predict(np.zeros(2)).interval(1.5)
    with pytest.raises(bbbrun.BbbrunError, match="checkpoint"):
        bbbrun.load(tmp_path)


def test_train_takes_a_file_a_dict_or_a_config_with_overrides(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml")
    run = bbbrun.train(config, out=tmp_path / "out", train__epochs=20, **{"model.hidden_dim": 12})
    assert run.config.train.epochs == 20 and run.config.model.hidden_dim == 12
    assert run.metrics["status"] == "completed" and run.metrics["epochs_completed"] == 20
    assert run.path.parent == tmp_path / "out" / "tiny"
    assert run.provenance is not None and run.provenance["overrides"] == ["train.epochs=20", "model.hidden_dim=12"]
    from_dict = bbbrun.train(yaml.safe_load(config.read_text()), out=tmp_path / "out", train__epochs=20,
                             model__hidden_dim=12)
    # The same config and seed give the same model, whichever way the config came.
    assert from_dict.metrics["val_rmse"] == run.metrics["val_rmse"]
    with pytest.raises(bbbrun.BbbrunError, match="hiden_dim"):
        bbbrun.train(run.config, out=tmp_path / "out", model__hiden_dim=3)


def test_sweep_returns_the_ranked_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", train={**TINY["train"], "epochs": 10})
    result = bbbrun.sweep(config, out=tmp_path / "out", model__hidden_dim=[4, 8])
    assert len(result.records) == 2 and result.metric == "val_nll"
    nlls = [r["val_nll"] for r in result.records]
    assert nlls == sorted(nlls)
    best = result.best
    assert isinstance(best, bbbrun.Run) and best.metrics["val_nll"] == nlls[0]
    assert bbbrun.load_sweep(result.path).records == result.records


def test_the_front_door_names_are_public() -> None:
    for name in ("load", "train", "sweep", "load_sweep", "Run", "Prediction", "SweepResult"):
        assert name in bbbrun.__all__ and getattr(bbbrun, name) is not None
