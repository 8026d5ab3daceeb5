"""End to end through the CLI, in-process: train a tiny run, then plot and predict from it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app

RUN_FILES = {"config.yaml", "checkpoint.pt", "history.csv", "metrics.json", "train.png", "val.png",
             "loss.png", "calibration.png"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("cli")
    config = write_config(root / "tiny.yaml")
    result = CliRunner().invoke(app, ["train", str(config), "train.epochs=40", "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "out" / "tiny").iterdir()
    return run_dir, result.stdout


def test_train_writes_every_file(trained: tuple[Path, str]) -> None:
    run_dir, _ = trained
    assert {p.name for p in run_dir.iterdir()} >= RUN_FILES
    assert run_dir.parent.name == "tiny"
    for png in ("train.png", "val.png", "loss.png", "calibration.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_log_lines_every_log_every_epochs(trained: tuple[Path, str]) -> None:
    run_dir, stdout = trained
    logged = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert [int(line.split()[1]) for line in logged] == [10, 20, 30, 40]
    assert all(k in logged[0] for k in ("loss", "val_loss", "nll", "kl"))
    assert str(run_dir) in stdout.splitlines()[-1]
    rows = list(csv.DictReader(io.StringIO((run_dir / "history.csv").read_text())))
    assert [int(r["epoch"]) for r in rows] == [10, 20, 30, 40]
    first = rows[0]
    assert float(first["loss"]) == pytest.approx(float(first["nll"]) + float(first["kl"]), rel=1e-5)


def test_metrics_and_resolved_config(trained: tuple[Path, str]) -> None:
    run_dir, _ = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val_rmse", "val_nll", "val_coverage_90", "train_seconds", "epochs_completed", "device",
                "val_rmse_true", "val_calibration_error"):
        assert key in metrics, key
    assert metrics["epochs_completed"] == 40 and metrics["device"] == "cpu"
    assert 0.0 <= metrics["val_coverage_90"] <= 1.0
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 40 and resolved["model"]["hidden_dim"] == 8


def test_resolved_config_runs_again_as_is(trained: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = trained
    result = CliRunner().invoke(app, ["train", str(run_dir / "config.yaml"), "train.epochs=5",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_checkpoint_is_self_describing(trained: tuple[Path, str]) -> None:
    run_dir, _ = trained
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert payload["format_version"] == 2 and payload["epoch"] == 40
    assert {"model", "optimizer", "history", "rng", "config"} <= set(payload)
    assert payload["config"]["name"] == "tiny"


def test_plot_regenerates_the_same_pictures(trained: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = trained
    runner = CliRunner()
    ckpt = str(run_dir / "checkpoint.pt")
    first = runner.invoke(app, ["plot", ckpt, "--samples", "30", "--out", str(tmp_path / "a")])
    second = runner.invoke(app, ["plot", str(run_dir), "--samples", "30", "--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    for name in ("train.png", "val.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_predict_grid_to_csv(trained: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = trained
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--x-min", "-4", "--x-max", "4",
                                      "--num-points", "9", "--samples", "40", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["x", "mean", "std", "epistemic_std", "aleatoric_std", "lower", "upper"]
    assert len(rows) == 9 and float(rows[0]["x"]) == -4.0
    for row in rows:
        assert float(row["lower"]) <= float(row["mean"]) <= float(row["upper"])
        assert float(row["std"]) >= float(row["epistemic_std"]) >= 0.0


def test_predict_from_input_csv_to_stdout(trained: tuple[Path, str], tmp_path: Path) -> None:
    run_dir, _ = trained
    source = tmp_path / "x.csv"
    source.write_text("x,other\n0.5,a\n-1,b\n")
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(source), "--samples", "20"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [float(r["x"]) for r in rows] == [0.5, -1.0]


def test_bad_config_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "bad.yaml", optim={"lr": -1})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "optim.lr must be > 0.0" in result.stderr
    assert not (tmp_path / "out").exists()


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "plot", "predict"):
        assert command in result.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_on_cuda_and_plot_on_cpu(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gpu.yaml", device="cuda")
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["device"].startswith("cuda")
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True, map_location="cpu")
    assert all(t.device.type == "cpu" for t in payload["model"].values())


def test_a_second_signal_stops_at_once() -> None:
    import os
    import signal

    from bbbrun.cli import stop_signals
    from bbbrun.errors import Interrupted

    with stop_signals() as should_stop:
        assert should_stop() is None
        os.kill(os.getpid(), signal.SIGINT)  # the first only raises the flag
        assert should_stop() == signal.SIGINT
        with pytest.raises(Interrupted) as err:
            os.kill(os.getpid(), signal.SIGTERM)
    assert err.value.exit_code == 128 + signal.SIGTERM
    assert "second SIGTERM" in str(err.value)
