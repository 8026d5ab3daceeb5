"""One line, not a traceback: option errors, interrupts at any stage, sweep options checked before any directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import write_config
from refusal import read_until, refused, tree
from typer.testing import CliRunner

from bbbrun.cli import app

TESTS = Path(__file__).parent

USAGE = [
    ("unknown-command", ["trian"], ["No such command", "Did you mean", "--help"]),
    ("unknown-option", ["train", "--bogus"], ["No such option", "train --help"]),
    ("missing-argument", ["predict"], ["Missing argument", "predict --help"]),
    ("bad-int", ["predict", "x.pt", "--samples", "many"], ["--samples"]),
    ("below-minimum", ["predict", "x.pt", "--samples", "0"], ["--samples"]),
    ("bad-float", ["predict", "x.pt", "--level", "high"], ["--level"]),
    ("bad-choice", ["sweep", "--executor", "cloud"], ["--executor", "cloud"]),
    ("option-without-value", ["train", "--out"], ["--out"]),
    ("benchmark-bad-option", ["benchmark", "uci", "--splits", "-1"], ["--splits"]),
]


@pytest.mark.parametrize(("args", "expect"), [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_option_errors_are_one_line_not_a_box(args: list[str], expect: list[str]) -> None:
    line = refused(args, expect)
    assert "╭" not in line and "│" not in line


def start(args: list[str], script: str | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, str(TESTS / script) if script else "-m", *([] if script else ["bbbrun"]), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("delay", [0.15, 0.5])
def test_ctrl_c_during_start_up_is_one_line(tiny_config: Path, tmp_path: Path, delay: float) -> None:
    with start(["train", str(tiny_config), "--out", str(tmp_path / "out")]) as process:
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    if process.returncode == -signal.SIGINT and not stderr:
        pytest.skip("the signal came before the interpreter could handle any (a loaded machine)")
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
                         ids=["one-ctrl-c", "two-ctrl-c", "sigterm"])
def test_an_interrupt_during_the_results_is_resumable(tiny_config: Path, tmp_path: Path,
                                                      signals: list[signal.Signals]) -> None:
    """Stopped while the predictive and plots are drawn: marked interrupted (not failed), exit 128+N at once,
    and `train --resume` finishes the results without training further."""
    with start(["train", str(tiny_config), "--out", str(tmp_path / "out")], "slow_results.py") as process:
        stdout = read_until(process, "evaluating the predictive")
        started = time.monotonic()
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.2)
        _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - started < 30, "the results stage did not stop at once"
    assert process.returncode == 128 + signals[0], stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "--resume" in stderr
    run = Path(next(line for line in stdout.splitlines() if line.startswith("run directory:")).split()[2])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_completed"] == 30
    result = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    finished = json.loads((run / "metrics.json").read_text())
    assert finished["status"] == "completed" and finished["epochs_completed"] == 30
    assert (run / "train.png").exists()
    again = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert again.exit_code == 2 and "already completed" in again.stderr


SWEEP_OPTIONS = [
    ("slurm-without-sbatch", ["--executor", "slurm"], ["sbatch"]),
    ("dask-malformed", ["--executor", "dask", "--scheduler", "not an address"], ["not a Dask scheduler address"]),
    ("dask-bad-port", ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:99999"], ["not a Dask"]),
    ("dask-unreachable", ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], ["could not reach"]),
    ("scheduler-without-dask", ["--scheduler", "tcp://127.0.0.1:8786"], ["--executor dask"]),
]


@pytest.mark.parametrize(("flags", "expect"), [c[1:] for c in SWEEP_OPTIONS], ids=[c[0] for c in SWEEP_OPTIONS])
def test_executors_are_checked_before_a_sweep_directory_exists(tiny_config: Path, tmp_path: Path,
                                                               flags: list[str], expect: list[str]) -> None:
    if flags[:2] == ["--executor", "slurm"] and __import__("shutil").which("sbatch"):
        pytest.skip("this machine has sbatch")
    if "dask" in flags and __import__("importlib").util.find_spec("distributed") is None:
        pytest.skip("needs the dask extra")
    refused(["sweep", str(tiny_config), "seed=0,1", "--out", str(tmp_path / "out"), *flags], expect)
    assert not (tmp_path / "out").exists()


SWEEP_FILES = [
    ("misspelt-metric", {"metric": {"name": "val_nlll"}}, ["val_nlll", "did you mean 'val_nll'", "valid:"]),
    ("unknown-metric", {"metric": {"name": "accuracy"}}, ["accuracy", "valid:"]),
    ("slurm-unknown-option", {"slurm": {"partiton": "gpu"}}, ["slurm", "partiton", "did you mean"]),
    ("slurm-bad-type", {"slurm": {"time_min": "an hour"}}, ["slurm.time_min", "integer"]),
    ("slurm-bad-cluster", {"slurm": {"cluster": "aws"}}, ["slurm.cluster"]),
]


@pytest.mark.parametrize(("extra", "expect"), [c[1:] for c in SWEEP_FILES], ids=[c[0] for c in SWEEP_FILES])
def test_sweep_file_sections_are_checked(tiny_config: Path, tmp_path: Path, extra: dict[str, object],
                                         expect: list[str]) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"config": tiny_config.name, "parameters": {"seed": [0, 1]}, **extra}))
    before = tree(tmp_path)
    refused(["sweep", str(sweep), "--out", str(tmp_path / "out")], expect)
    assert tree(tmp_path) == before


def test_names_with_mathtext_and_markup_render_literally(tmp_path: Path) -> None:
    """Swept values that matplotlib would parse as (broken) mathtext or rich as markup are drawn as text."""
    tiny = {"train": {"epochs": 2, "log_every": 2, "checkpoint_every": 2}, "predict": {"num_samples": 5}}
    first = write_config(tmp_path / "c$\\frac{.yaml", **tiny)
    second = write_config(tmp_path / "[bold]x[red.yaml", **tiny)
    result = CliRunner().invoke(app, ["sweep", str(first), str(second), "--out", str(tmp_path / "out"),
                                      "--executor", "serial"])
    assert result.exit_code == 0, result.output
    (sweep,) = (tmp_path / "out" / "sweeps" / "tiny").iterdir()
    assert (sweep / "comparison.png").stat().st_size > 0
    assert "[bold]x[red" in result.output
