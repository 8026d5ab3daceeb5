"""`bbbrun compare`: the config keys that differ, the metrics side by side, overlaid figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from conftest import write_config
from typer.testing import CliRunner

from bbbrun import plots
from bbbrun.cli import app
from bbbrun.runs.compare import compare


def test_compare_prints_only_the_keys_that_differ_and_the_metrics(two_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", *map(str, two_runs), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    config_table = result.stdout.split("metrics")[0]
    assert "model.hidden_dim" in config_table and "optim.lr" not in config_table and "seed" not in config_table
    for run in two_runs:
        rmse = json.loads((run / "metrics.json").read_text())["val_rmse"]
        assert f"{rmse:.4g}" in result.stdout
    for name in ("loss", "calibration", "bands"):
        image = plt.imread(tmp_path / "cmp" / f"compare_{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0, name


def test_the_comparison_tables_hold_each_runs_values(two_runs: list[Path]) -> None:
    comparison = compare(two_runs)
    assert comparison.config_rows == [["model.hidden_dim", "8", "16"]]
    rows = {row[0]: row[1:] for row in comparison.metric_rows}
    assert rows["status"] == ["completed", "completed"]
    weights = [json.loads((run / "metrics.json").read_text())["num_weights"] for run in two_runs]
    assert rows["num_weights"] == [str(w) for w in weights] and weights[0] != weights[1]


def test_overlaid_loss_curves_are_each_runs_history(two_runs: list[Path]) -> None:
    histories = [list(csv.DictReader(io.StringIO((run / "history.csv").read_text()))) for run in two_runs]
    rows = [[{k: float(v) for k, v in row.items()} for row in history] for history in histories]
    fig = plots.plot_losses(["a", "b"], rows)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a (train)", "a (val)", "b (train)", "b (val)"]
    for i, history in enumerate(rows):
        np.testing.assert_allclose(lines[2 * i].get_ydata(), [r["loss"] for r in history])
        np.testing.assert_allclose(lines[2 * i + 1].get_ydata(), [r["val_loss"] for r in history])
    plt.close(fig)


def test_a_sweep_directory_stands_for_its_runs(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 10})
    result = CliRunner().invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "serial",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (sweep,) = (tmp_path / "out" / "sweeps" / "tiny").iterdir()
    comparison = compare([sweep])
    assert comparison.labels == ["000_seed=0", "001_seed=1"]
    assert comparison.config_rows == [["seed", "0", "1"]]


def test_fewer_than_two_runs_is_a_one_line_error(two_runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", str(two_runs[0]), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 2 and "at least two runs" in result.stderr
    result = CliRunner().invoke(app, ["compare", str(two_runs[0]), str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "is not a directory" in result.stderr
    assert not (tmp_path / "cmp").exists()
