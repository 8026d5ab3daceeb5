"""Nothing is lost: interrupts save and resume exactly, kills leave a loadable checkpoint,
divergence keeps the last finite one, unsafe files are refused, run directories are never reused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import torch
from conftest import write_config
from refusal import read_until
from typer.testing import CliRunner

from bbbrun import cli, files
from bbbrun.cli import app
from bbbrun.config import load_config
from bbbrun.errors import OutputError
from bbbrun.fit import checkpoint as ckpt
from bbbrun.fit.loop import Callbacks, fit
from bbbrun.runs import layout
from bbbrun.runs.layout import RunDir, checkpoint_file, new_run_dir
from bbbrun.runs.runner import run_training, save_session
from bbbrun.runs.session import start_session

TESTS = Path(__file__).parent
LONG = {"epochs": 100_000, "log_every": 10, "checkpoint_every": 25}


def stop_after(num_epochs: int, signum: int = signal.SIGINT) -> Callbacks:
    """Callbacks whose should_stop fires once `num_epochs` epochs have run, like a Ctrl-C would."""
    calls = [0]

    def should_stop() -> int | None:
        calls[0] += 1
        return signum if calls[0] >= num_epochs else None

    return Callbacks(should_stop=should_stop)


@contextlib.contextmanager
def start_cli(args: list[str], script: list[str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """`bbbrun ARGS` in a child process, killed on the way out if a failed assertion left it running."""
    command = [sys.executable, *(script or ["-m", "bbbrun"]), *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def run_dir_of(stdout: str) -> Path:
    first = next(line for line in stdout.splitlines() if line.startswith("run directory:"))
    return Path(first.split()[2])


def weights_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def deterministic() -> Iterator[None]:
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


# ------------------------------------------------------------------ interrupts


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_says_where(tmp_path: Path, signum: int, code: int) -> None:
    config = write_config(tmp_path / "long.yaml", train=LONG)
    with start_cli(["train", str(config), "--out", str(tmp_path / "out")]) as process:
        stdout = read_until(process, "epoch")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    run_dir = run_dir_of(stdout)
    message = stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in stderr
    assert signal.Signals(signum).name in message and str(run_dir / "checkpoint.pt") in message
    assert f"--resume {run_dir}" in message
    payload = ckpt.load_checkpoint(checkpoint_file(run_dir))
    assert f"at epoch {payload['epoch']};" in message and payload["epoch"] >= 10
    assert (run_dir / "history.csv").exists()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"


def test_resume_is_bitwise_identical(tmp_path: Path, deterministic: None) -> None:
    """2N epochs straight == N epochs, interrupt, checkpoint, load, N more: weights, moments, history."""
    cfg = load_config(write_config(tmp_path / "c.yaml"), [
        "train.epochs=40", "train.batch_size=64", "train.log_every=7", "train.checkpoint_every=5",
        "model.likelihood=learned", "data.standardize=true", "optim.lr_final_factor=0.1",
    ])
    straight = start_session(cfg)
    fit(straight.trainee)

    first = start_session(cfg)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = run_training(first, RunDir(run_dir), stop_after(23))  # neither a log nor a checkpoint epoch
    assert result.status == "interrupted" and result.epoch == 23
    resumed = start_session(cfg, ckpt.load_checkpoint(checkpoint_file(run_dir)))
    assert resumed.state.epoch == 23
    fit(resumed.trainee)

    assert weights_equal(straight.model.state_dict(), resumed.model.state_dict())
    moments = [(straight.trainee.optimizer.state[p], resumed.trainee.optimizer.state[q])
               for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True)]
    assert all(torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) for a, b in moments)

    def strip(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

    assert strip(straight.state.history) == strip(resumed.state.history)


def test_cli_resume_continues_in_the_same_directory(
    tmp_path: Path, deterministic: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.yaml", train={"epochs": 30, "batch_size": 100})
    runner = CliRunner()
    straight = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "a")])
    assert straight.exit_code == 0, straight.output

    @contextlib.contextmanager
    def ctrl_c_at_epoch_12() -> Iterator[object]:
        yield stop_after(12).should_stop

    with monkeypatch.context() as patch:
        patch.setattr(cli, "stop_signals", ctrl_c_at_epoch_12)
        stopped = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "b")])
    assert stopped.exit_code == 130 and "at epoch 12;" in stopped.stderr
    (run_dir,) = (tmp_path / "b" / "tiny").iterdir()
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    assert list((tmp_path / "b" / "tiny").iterdir()) == [run_dir]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 30
    (straight_dir,) = (tmp_path / "a" / "tiny").iterdir()
    a = ckpt.load_checkpoint(checkpoint_file(straight_dir))["model"]
    b = ckpt.load_checkpoint(checkpoint_file(run_dir))["model"]
    assert weights_equal(a, b)


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    """Kill a run (each write paused half-way) at random moments, resume it, kill it again; each time the
    checkpoint left behind loads, and at least one kill landed in the middle of a write."""
    config = write_config(tmp_path / "long.yaml", train={**LONG, "checkpoint_every": 1})
    rng = random.Random(5)
    script = [str(TESTS / "slow_writes.py")]
    args = ["train", str(config), "--out", str(tmp_path / "out")]
    epochs, half_written = [], 0
    for _ in range(3):
        with start_cli(args, script) as process:
            stdout = read_until(process, "epoch")
            time.sleep(rng.uniform(0.0, 0.3))
            process.kill()
            process.communicate(timeout=60)
        run_dir = run_dir_of(stdout)
        half_written += any(p.name.endswith(".tmp") for p in run_dir.iterdir())
        payload = ckpt.load_checkpoint(checkpoint_file(run_dir))
        model = ckpt.restore_model(payload, ckpt.config_of(payload, run_dir), torch.device("cpu"), run_dir)
        assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
        epochs.append(payload["epoch"])
        args = ["train", "--resume", str(run_dir)]
    assert epochs == sorted(epochs) and epochs[0] >= 1
    assert half_written >= 1, "no kill landed during a write; the test proved nothing"


# ------------------------------------------------------------------ divergence


def test_divergence_keeps_the_last_finite_checkpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", optim={"lr": 1000.0},
                          train={"epochs": 30, "log_every": 1, "checkpoint_every": 1})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed"
    diverged = int(metrics["error"].split("epoch ")[1])
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in result.output
    for words in (f"at epoch {diverged}", "optim.lr", "model.init_rho_mean", "failed", "checkpoint"):
        assert words in message, words
    payload = ckpt.load_checkpoint(checkpoint_file(run_dir))
    assert payload["epoch"] == diverged - 1 == metrics["checkpoint_epoch"]
    assert all(bool(torch.isfinite(v).all()) for v in payload["model"].values())


def test_non_finite_weights_are_never_saved(tmp_path: Path, tiny_config: Path) -> None:
    session = start_session(load_config(tiny_config))
    assert save_session(session, RunDir(tmp_path))
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with torch.no_grad():
        next(session.model.parameters())[0] = float("nan")
    assert not save_session(session, RunDir(tmp_path))
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


# ---------------------------------------------------------------- safe loading


class CreatesFile:
    """Unpickling this runs open(path, "w"): code hidden in a checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    session = start_session(load_config(write_config(root / "c.yaml", train={"epochs": 5})))
    assert run_training(session, RunDir(root)).status == "completed"
    return root / "checkpoint.pt"


@pytest.mark.parametrize("container", ["torch-zip", "plain-pickle"])
def test_plot_and_predict_refuse_a_checkpoint_that_runs_code(trained: Path, tmp_path: Path, container: str) -> None:
    payload = torch.load(trained, weights_only=True)
    marker = tmp_path / "pwned"
    evil = {**payload, "config": CreatesFile(marker)}
    path = tmp_path / "evil.pt"
    if container == "torch-zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    with open(path, "rb") as handle:  # control: an unrestricted load would run it
        loaded = torch.load(handle, weights_only=False) if container == "torch-zip" else pickle.load(handle)
    loaded["config"].close()
    assert marker.exists()
    marker.unlink()
    for args in (["plot", str(path), "--out", str(tmp_path / "png")],
                 ["predict", str(path), "--x-min", "0", "--x-max", "1"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1 and str(path) in message
        assert ("could run code" if container == "torch-zip" else "not a checkpoint") in message
        assert not marker.exists(), "the checkpoint's code ran"
    assert not (tmp_path / "png").exists()


def test_saved_checkpoint_holds_only_plain_values(trained: Path) -> None:
    payload = torch.load(trained, weights_only=True)

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (bool, int, float, str, torch.Tensor))

    assert plain(payload)


# ---------------------------------------------------------------- nothing lost


def test_same_name_same_second_gets_a_new_directory(tmp_path: Path) -> None:
    now = datetime(2024, 1, 2, 3, 4, 5)
    made = [new_run_dir(tmp_path, "run", now).path for _ in range(3)]
    assert [p.name for p in made] == ["2024-01-02_03-04-05", "2024-01-02_03-04-05_1", "2024-01-02_03-04-05_2"]
    assert all(p.is_dir() for p in made)


def test_two_cli_runs_in_one_second_never_share_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FrozenClock:
            return cls(2024, 1, 2, 3, 4, 5)

    monkeypatch.setattr(layout, "datetime", FrozenClock)
    config = write_config(tmp_path / "c.yaml", train={"epochs": 3}, data={"num_points": 100})
    args = ["train", str(config), "--out", str(tmp_path / "out")]
    assert CliRunner().invoke(app, args).exit_code == 0
    (first,) = (tmp_path / "out" / "tiny").iterdir()
    stamps = {p: p.stat().st_mtime_ns for p in first.iterdir()}
    assert CliRunner().invoke(app, [*args, "seed=1"]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out" / "tiny").iterdir()) == [first.name, first.name + "_1"]
    assert {p: p.stat().st_mtime_ns for p in first.iterdir()} == stamps


def test_unwritable_out_gives_one_line(tmp_path: Path, tiny_config: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(blocker)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "could not write" in result.stderr
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_out_gives_one_line(tmp_path: Path, tiny_config: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(locked)])
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 2 and "Permission denied" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_disk_full_keeps_the_old_file_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    files.write_text_atomic(target, "old")

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OutputError, match="the disk is full"):
        files.write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "a temporary file was left behind"


def test_disk_full_during_training_is_one_line(
    tmp_path: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "the disk is full" in result.stderr



def test_ctrl_c_before_training_is_one_line_and_130(
    tmp_path: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pressed(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("bbbrun.runs.session.start_session", pressed)
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 130
    assert result.stderr.strip() == "error: interrupted; no file was left half-written"
