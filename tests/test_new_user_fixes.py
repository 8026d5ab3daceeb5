"""Fixes from trying bbbrun as a new user would: each test failed before its fix."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.config import load_config
from bbbrun.fit.loop import learning_rate
from bbbrun.runs.layout import RunDir
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session


def train(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output


def only_run(root: Path) -> Path:
    (run_dir,) = (root / "tiny").iterdir()
    return run_dir


def only_run_named(root: Path, stdout: str) -> Path:
    """The run directory a `bbbrun train` printed last."""
    return Path(stdout.strip().splitlines()[-1].removeprefix("run directory: ").strip())


def test_history_names_its_one_sample_validation_nll_apart_from_the_mixture(tiny_config: Path, tmp_path: Path) -> None:
    train([str(tiny_config), "--out", str(tmp_path)])
    run_dir = only_run(tmp_path)
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_nll_1sample" in header and "val_nll" not in header
    assert "val_nll" in json.loads((run_dir / "metrics.json").read_text())


def test_plot_over_a_range_keeps_the_runs_own_figures(tiny_config: Path, tmp_path: Path) -> None:
    train([str(tiny_config), "--out", str(tmp_path)])
    run_dir = only_run(tmp_path)
    before = {name: (run_dir / name).read_bytes() for name in ("train.png", "val.png")}
    result = CliRunner().invoke(app, ["plot", str(run_dir), "--x-min", "-5", "--x-max", "5", "--samples", "20"])
    assert result.exit_code == 0, result.output
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert (run_dir / "train_x-5_5.png").stat().st_size > 0 and (run_dir / "val_x-5_5.png").stat().st_size > 0


def test_a_run_stopped_by_its_user_is_interrupted_not_failed(tiny_config: Path, tmp_path: Path) -> None:
    from bbbrun.fit.loop import Callbacks

    session = start_session(load_config(tiny_config))
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    epochs: list[int] = []

    def stop_at_5() -> int | None:
        epochs.append(1)
        return 2 if len(epochs) >= 5 else None

    result = run_training(session, run_dir, Callbacks(should_stop=stop_at_5))
    assert result.status == "interrupted"
    assert json.loads(run_dir.metrics.read_text())["status"] == "interrupted"


def test_resume_with_more_epochs_follows_the_longer_schedule(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", optim={"lr": 0.02, "lr_final_factor": 0.01},
                          train={"epochs": 20, "log_every": 5, "checkpoint_every": 5})
    train([str(config), "--out", str(tmp_path / "out")])
    run_dir = (tmp_path / "out" / "tiny").iterdir().__next__()
    train(["--resume", str(run_dir), "train.epochs=40"])
    rows = [row.split(",") for row in (run_dir / "history.csv").read_text().splitlines()]
    lr = {int(r[0]): float(r[rows[0].index("lr")]) for r in rows[1:]}
    cfg = load_config(run_dir / "config.yaml").optim
    # Before the resume: the 20-epoch schedule; after it: the 40-epoch one at the same epochs, no restart.
    assert lr[20] == pytest.approx(learning_rate(cfg, 20, 20))
    for epoch in (25, 30, 35, 40):
        assert lr[epoch] == pytest.approx(learning_rate(cfg, epoch, 40))
    assert lr[40] == pytest.approx(0.02 * 0.01)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_output_files_honour_the_umask(tiny_config: Path, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        train([str(tiny_config), "--out", str(tmp_path)])
    finally:
        os.umask(old)
    run_dir = only_run(tmp_path)
    for name in ("config.yaml", "checkpoint.pt", "metrics.json", "history.csv", "train.png"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o640, name


def test_version_and_resolved_config(tiny_config: Path) -> None:
    version = CliRunner().invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("bbbrun ") and "torch" in version.stdout
    shown = CliRunner().invoke(app, ["config", str(tiny_config), "train.epochs=7"])
    assert shown.exit_code == 0, shown.output
    resolved = yaml.safe_load(shown.stdout)
    assert resolved["train"]["epochs"] == 7 and resolved["optim"]["betas"] == [0.9, 0.999]  # a default filled in
    bad = CliRunner().invoke(app, ["config", str(tiny_config), "train.epoch=7"])
    assert bad.exit_code == 2 and "did you mean 'train.epochs'" in bad.stderr


def test_resume_with_a_config_file_says_what_to_do(tiny_config: Path, tmp_path: Path) -> None:
    train([str(tiny_config), "--out", str(tmp_path)])
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--resume", str(only_run(tmp_path))])
    assert result.exit_code == 2
    assert "--resume takes no config file" in result.stderr and "train.epochs=" in result.stderr


def test_the_fixed_noise_scale_is_warned_about(tiny_config: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(tmp_path)])
    assert result.exit_code == 0 and "warning: model.likelihood=fixed" in result.stderr
    learned = CliRunner().invoke(app, ["train", str(tiny_config), "model.likelihood=learned", "--out", str(tmp_path)])
    assert learned.exit_code == 0 and "model.likelihood=fixed" not in learned.stderr
    metrics = json.loads((only_run_named(tmp_path, learned.stdout) / "metrics.json").read_text())
    assert not any("likelihood=fixed" in w for w in metrics["warnings"])


def test_slurm_without_slurm_is_one_line(tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["sweep", str(tiny_config), "seed=0,1", "--executor", "slurm",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no sbatch on PATH" in result.stderr and not (tmp_path / "out").exists()


def test_help_texts_read_cleanly_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for command in ([], ["train"], ["config"], ["plot"], ["predict"], ["evaluate"], ["sweep"], ["benchmark"],
                    ["benchmark", "uci"]):
        text = CliRunner().invoke(app, [*command, "--help"]).stdout
        assert "Usage" in text
        for line in text.splitlines():
            assert len(line) <= 80, line
            # Bracketed text is eaten as markup and leaves "samples ." behind.
            assert not re.search(r"\w \.(\s|$)", line), line


def test_a_sweep_runs_log_holds_its_training_log(tiny_config: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sweep", str(tiny_config), "seed=0,1", "--executor", "serial",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    logs = sorted((tmp_path / "sweeps").rglob("run.log"))
    assert len(logs) == 2
    for log in logs:
        lines = log.read_text().splitlines()
        assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["10", "20", "30"]


def test_min_steps_gives_small_data_as_many_steps(tmp_path: Path) -> None:
    from bbbrun.config import TrainConfig
    from bbbrun.fit.loop import planned_epochs

    cfg = TrainConfig(epochs=200, batch_size=500, min_steps=6400)
    assert planned_epochs(cfg, 16000) == 200  # 32 batches an epoch: the epochs already give 6400 steps
    assert planned_epochs(cfg, 1600) == 1600  # 4 batches an epoch
    assert planned_epochs(cfg, 400) == 6400  # full batch
    assert planned_epochs(TrainConfig(epochs=7), 400) == 7
    config = write_config(tmp_path / "c.yaml", train={"epochs": 2, "min_steps": 12, "batch_size": 120,
                                                      "log_every": 2, "checkpoint_every": 2})
    train([str(config), "--out", str(tmp_path / "out")])
    history = (only_run(tmp_path / "out") / "history.csv").read_text().splitlines()
    assert history[-1].startswith("6,")  # 240 training rows in batches of 120: 12 steps are 6 epochs


def test_resume_counts_the_step_budget(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", train={"epochs": 1, "min_steps": 4, "batch_size": 120,
                                                      "log_every": 1, "checkpoint_every": 1})
    train([str(config), "--out", str(tmp_path / "out")])
    run_dir = only_run(tmp_path / "out")
    done = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "train.epochs=2"])
    assert done.exit_code == 2 and "train.min_steps" in done.stderr  # 2 epochs are still within the 4 steps
    train(["--resume", str(run_dir), "train.min_steps=6"])
    assert (run_dir / "history.csv").read_text().splitlines()[-1].startswith("3,")
