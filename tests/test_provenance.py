"""run.json: where a run came from, written as it starts and completed by how it ended."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.config import load_config
from bbbrun.fit.loop import Callbacks
from bbbrun.runs import marker
from bbbrun.runs.layout import RunDir
from bbbrun.runs.provenance import Invocation
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session


def train_cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> tuple[int, Path | None]:
    """`bbbrun train ARGS` in-process, with sys.argv as the shell would set it."""
    monkeypatch.setattr(sys, "argv", ["/usr/bin/bbbrun", "train", *args])
    result = CliRunner().invoke(app, ["train", *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("run directory: ")]
    return result.exit_code, Path(lines[-1].split(": ", 1)[1].split("  ")[0]) if lines else None


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_run_json_records_command_config_hash_git_versions_and_machine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q")
    config = write_config(tmp_path / "tiny.yaml")
    git(tmp_path, "add", "tiny.yaml")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "config")
    monkeypatch.chdir(tmp_path)
    code, run_dir = train_cli(monkeypatch, ["tiny.yaml", "train.epochs=20", "--out", "out"])
    assert code == 0 and run_dir is not None
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["epochs_completed"] == 20
    assert record["command"] == "bbbrun train tiny.yaml train.epochs=20 --out out"
    assert record["config_file"] == "tiny.yaml" and record["overrides"] == ["train.epochs=20"]
    assert record["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    # The run's own outputs (untracked) do not make the checkout dirty.
    assert record["git"] == {"commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
    versions = record["versions"]
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["numpy"] == numpy.__version__ and versions["python"] == platform.python_version()
    machine = record["machine"]
    assert machine["device"] == "cpu" and machine["torch_threads"] == torch.get_num_threads()
    assert machine["gpu"] is None and machine["host"] and machine["os"]
    assert record["started_at"] <= record["ended_at"] and record["wall_seconds"] > 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_changed_tracked_file_marks_the_checkout_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q")
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 10})
    git(tmp_path, "add", "tiny.yaml")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "config")
    config.write_text(config.read_text() + "# edited\n")
    monkeypatch.chdir(tmp_path)
    code, run_dir = train_cli(monkeypatch, ["tiny.yaml", "--out", "out"])
    assert code == 0 and run_dir is not None
    assert json.loads((run_dir / "run.json").read_text())["git"]["dirty"] is True


def test_outside_a_git_checkout_git_is_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "tiny.yaml", train={"epochs": 10})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, run_dir = train_cli(monkeypatch, ["tiny.yaml", "--out", "out"])
    assert code == 0 and run_dir is not None
    assert json.loads((run_dir / "run.json").read_text())["git"] is None


def test_run_json_says_running_while_the_run_runs(tiny_config: Path, tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    seen: list[str] = []
    calls = Callbacks(on_log=lambda _row: seen.append(json.loads(run_dir.provenance.read_text())["status"]))
    run_training(start_session(load_config(tiny_config)), run_dir, calls, Invocation(("bbbrun", "train"), "."))
    assert seen and set(seen) == {"running"}
    record = json.loads(run_dir.provenance.read_text())
    assert record["status"] == "completed" and record["ended_at"] is not None


def test_an_interrupted_run_and_its_resume_are_both_recorded(tiny_config: Path, tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    marker.mark(run_dir.path, marker.RUN)  # as new_run_dir marks the directories bbbrun makes
    polls: list[int] = []

    def stop_at_5() -> int | None:
        polls.append(1)
        return 2 if len(polls) >= 5 else None

    run_training(start_session(load_config(tiny_config)), run_dir, Callbacks(should_stop=stop_at_5))
    first = json.loads(run_dir.provenance.read_text())
    assert first["status"] == "interrupted" and first["epochs_completed"] == 5
    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir.path)])
    assert result.exit_code == 0, result.output
    record = json.loads(run_dir.provenance.read_text())
    assert record["status"] == "completed" and record["config_file"] is None
    assert [p["status"] for p in record["previous"]] == ["interrupted"]
    assert record["previous"][0]["started_at"] == first["started_at"]


def test_an_error_during_the_run_is_recorded_as_failed_and_raised(tiny_config: Path, tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()

    def explode(_row: dict[str, float]) -> None:
        raise RuntimeError("the callback broke")

    with pytest.raises(RuntimeError, match="the callback broke"):
        run_training(start_session(load_config(tiny_config)), run_dir, Callbacks(on_log=explode))
    record = json.loads(run_dir.provenance.read_text())
    assert record["status"] == "failed" and "the callback broke" in record["error"]


def test_a_diverged_run_is_failed_in_run_json(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", optim={"lr": 1000.0},
                          train={"epochs": 30, "log_every": 1, "checkpoint_every": 1})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "NaN or infinite" in record["error"]


def test_sweep_runs_record_the_sweep_command_and_their_own_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "tiny.yaml", train={"epochs": 10})
    args = ["sweep", str(config), "model.hidden_dim=4,8", "--executor", "serial", "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", ["bbbrun", *args])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "out").rglob("run.json")}
    assert sorted(r["overrides"][0] for r in records.values()) == ["model.hidden_dim=4", "model.hidden_dim=8"]
    assert all(r["status"] == "completed" and r["argv"][:2] == ["bbbrun", "sweep"] for r in records.values())


def test_version_names_python_and_the_libraries() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    for name in ("bbbrun 0.1.0", f"python {platform.python_version()}", f"numpy {numpy.__version__}", "torch "):
        assert name in result.stdout, name
