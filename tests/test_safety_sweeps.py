"""Sweeps survive their workers and their users: a killed worker fails its own run; a stopped sweep leaves
no process behind and writes the summary of what finished."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_config

LONG = {"train": {"epochs": 4000, "log_every": 100, "checkpoint_every": 100}, "predict": {"num_samples": 10}}


def workers_of(parent: int) -> list[int]:
    """The spawned pool workers of `parent` (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"multiprocessing-fork" in command:
            found.append(int(entry.name))
    return found


def wait_for_training(out: Path, process: subprocess.Popen[str], timeout: float = 90) -> None:
    """Until some run's run.log shows a training epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if any("epoch" in log.read_text() for log in out.rglob("run.log")):
            return
        time.sleep(0.2)
    raise AssertionError("no run started training")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sweep(config: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bbbrun", "sweep", str(config), "seed=0,1,2", "--workers", "2",
               "--out", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary_rows(out: Path) -> list[dict[str, str]]:
    (summary,) = out.rglob("summary.csv")
    with summary.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_a_killed_worker_fails_only_its_own_run(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", train={"epochs": 600, "log_every": 100, "checkpoint_every": 100},
                          predict={"num_samples": 10})
    out = tmp_path / "out"
    with sweep(config, out, "--no-batch") as process:  # one run per worker job (a group fails together)
        wait_for_training(out, process)
        workers = workers_of(process.pid)
        assert workers, "no pool worker found"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    statuses = sorted(row["status"] for row in summary_rows(out))
    assert statuses == ["completed", "completed", "failed"], statuses
    (failed,) = [row for row in summary_rows(out) if row["status"] == "failed"]
    assert "killed" in failed["error"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_to_the_sweep_stops_its_workers_and_writes_the_summary(tmp_path: Path,
                                                                         signum: signal.Signals) -> None:
    config = write_config(tmp_path / "c.yaml", **LONG)
    out = tmp_path / "out"
    with sweep(config, out) as process:
        wait_for_training(out, process)
        workers = workers_of(process.pid)
        process.send_signal(signum)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=120)
    assert time.monotonic() - started < 60
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "--resume" in stderr
    time.sleep(1.0)
    assert not [pid for pid in workers if alive(pid)], "a worker outlived the sweep"
    assert {row["status"] for row in summary_rows(out)} <= {"interrupted", "failed", "completed"}


class Terminated(BaseException):
    """A worker process ended by the pool (os._exit in its SIGTERM handler), as an exception a test can catch."""


def test_a_run_terminated_while_drawing_its_figures_is_not_completed_and_resume_finishes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bbbrun.cli import app
    from bbbrun.runs import results

    config = write_config(tmp_path / "c.yaml")

    def terminated(*_args: object, **_kwargs: object) -> None:
        raise Terminated

    monkeypatch.setattr(results, "write_figures", terminated)
    with pytest.raises(Terminated):
        CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    (run,) = {p.parent for p in (tmp_path / "out").rglob("checkpoint.pt")}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["stage"] == "results", metrics
    monkeypatch.undo()
    resumed = CliRunner().invoke(app, ["train", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert all((run / f"{name}.png").is_file() for name in ("val", "loss", "calibration"))


def test_ctrl_c_while_a_serial_sweep_writes_results_stops_the_sweep(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bbbrun.cli import app
    from bbbrun.runs import results

    def ctrl_c(*_args: object, **_kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)  # the handler raises here

    monkeypatch.setattr(results, "write_figures", ctrl_c)
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "out"
    outcome = CliRunner().invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "serial", "--no-batch",
                                       "--out", str(out)])
    assert outcome.exit_code == 130, outcome.output
    rows = summary_rows(out)
    assert [row["status"] for row in rows] == ["interrupted", "interrupted"], rows
    assert "while writing its results" in rows[0]["error"], rows
    assert "did not run" in rows[1]["error"], rows
    assert not list(out.rglob("001_*/checkpoint.pt")), "the sweep trained a run after Ctrl-C"
    # --resume finishes the first run's results and trains the second.
    monkeypatch.undo()
    resumed = CliRunner().invoke(app, ["sweep", "--resume", str(next(out.rglob("summary.csv")).parent),
                                       "--executor", "serial"])
    assert resumed.exit_code == 0, resumed.output
    assert [row["status"] for row in summary_rows(out)] == ["completed", "completed"]


def test_a_local_worker_ignores_ctrl_c_from_its_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import queue

    import torch

    from bbbrun.sweeps.executors import local

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    gpus: queue.Queue[int | None] = queue.Queue()
    gpus.put(None)
    try:
        local.init_worker(threads, gpus, None, None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        torch.set_num_threads(threads)
        monkeypatch.setattr(local, "_stop_event", None)
        monkeypatch.setattr(local, "_running", None)
