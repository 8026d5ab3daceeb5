"""Pruning by signal-to-noise ratio: which weights go, that they are gone, and `bbbrun prune` on both tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.pruning import pruned, signal_to_noise, weight_positions
from bbbrun.cli import app
from bbbrun.config import ModelConfig


def small_network() -> BayesianNetwork:
    torch.manual_seed(0)
    model = BayesianNetwork(ModelConfig(hidden_dim=5, num_layers=3, init_mu_std=1.0, init_rho_std=1.0), in_dim=2)
    return model


def test_snr_is_abs_mu_over_sigma_of_the_weight_entries() -> None:
    model = small_network()
    positions = weight_positions(model)
    assert len(positions) == 2 * 5 + 5 * 5 + 5 * 1  # weight matrices only, no biases
    expected = model.mu.detach()[positions].abs() / F.softplus(model.rho.detach()[positions])
    torch.testing.assert_close(signal_to_noise(model), expected)


def test_pruning_removes_the_lowest_snr_weights_exactly() -> None:
    model = small_network()
    snr, positions = signal_to_noise(model), weight_positions(model)
    smaller = pruned(model, 0.5)
    removed = positions[snr.argsort()[:20]]
    kept = positions[snr.argsort()[20:]]
    assert (smaller.mu.detach()[removed] == 0).all()
    assert (F.softplus(smaller.rho.detach()[removed]) == 0).all()  # no noise left: sampled weights are exactly 0
    w = smaller.sample_weights(30, torch.Generator().manual_seed(1))
    assert (w[:, removed] == 0).all()
    torch.testing.assert_close(smaller.mu.detach()[kept], model.mu.detach()[kept])
    biases = torch.tensor([i for i in range(model.num_weights) if i not in set(positions.tolist())])
    torch.testing.assert_close(smaller.mu.detach()[biases], model.mu.detach()[biases])
    torch.testing.assert_close(pruned(model, 0.0).mu, model.mu)


def train_run(root: Path, *overrides: str, **sections: dict) -> Path:
    config = write_config(root / "c.yaml", **sections)
    result = CliRunner().invoke(app, ["train", str(config), *overrides, "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "out" / "tiny").iterdir()
    return run_dir


def test_prune_a_regression_run_its_unpruned_row_matches_metrics(tmp_path: Path) -> None:
    run_dir = train_run(tmp_path)
    result = CliRunner().invoke(app, ["prune", str(run_dir), "--fraction", "0.5,0.9"])
    assert result.exit_code == 0, result.output
    table = json.loads((run_dir / "prune.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r["fraction"] for r in table["rows"]] == [0.0, 0.5, 0.9]
    assert table["rows"][0]["nll"] == pytest.approx(metrics["val_nll"], rel=1e-6)
    assert table["rows"][0]["rmse"] == pytest.approx(metrics["val_rmse"], rel=1e-6)
    assert table["rows"][2]["weights_kept"] == round(0.1 * table["num_weights"])
    assert (run_dir / "snr.png").is_file() and (run_dir / "prune.png").is_file()


def test_pruned_classifier_checkpoint_is_evaluated_and_not_resumed(tmp_path: Path) -> None:
    model = {"likelihood": "categorical", "hidden_dim": 16, "init_mu_std": None, "init_rho_mean": -5.0,
             "bias_rho_init": -5.0}
    data = {"function": "two_moons", "num_points": 200, "noise_std": 0.1, "standardize": True}
    run_dir = train_run(tmp_path, model=model, data=data)
    result = CliRunner().invoke(app, ["prune", str(run_dir), "--fraction", "0.75", "--save"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = json.loads((run_dir / "prune.json").read_text())["rows"]
    assert rows[0]["accuracy"] == metrics["val_accuracy"] and rows[0]["ece"] == pytest.approx(metrics["val_ece"])
    pruned_file = run_dir / "checkpoint_pruned_75.pt"
    source = tmp_path / "rows.csv"
    source.write_text("x1,x2,class\n0.0,1.0,0\n1.0,-0.5,1\n-1.0,0.2,0\n")
    result = CliRunner().invoke(app, ["evaluate", str(pruned_file), "--input", str(source)])
    assert result.exit_code == 0 and "accuracy" in result.output, result.output
    result = CliRunner().invoke(app, ["train", "--resume", str(pruned_file)])
    assert result.exit_code == 2 and "pruned checkpoint" in result.output


@pytest.mark.parametrize("fraction", ["1.0", "-0.1", "half"])
def test_bad_fractions_exit_2(tmp_path: Path, fraction: str) -> None:
    result = CliRunner().invoke(app, ["prune", str(tmp_path), "--fraction", fraction])
    assert result.exit_code == 2 and "--fraction" in result.output
