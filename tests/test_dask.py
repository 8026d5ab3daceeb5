"""`--executor dask` against a real `dask scheduler` and `dask worker` processes, on loopback only."""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clusters import Hold, bbbrun, csv_config, csv_rows, wait_for
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app

SWEEP_TIMEOUT_S = 180


@dataclass
class DaskCluster:
    address: str
    workers: dict[str, subprocess.Popen[bytes]]  # by worker name
    log: Path
    hold: Hold  # the workers wait on opening hold.data until it is released


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "dask scheduler exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """A real scheduler and two one-thread workers (no nanny, so a killed worker stays dead), stopped afterwards."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = tmp_path / "dask.log"
    hold = Hold.under(tmp_path)
    with log.open("w") as logs:
        processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], stdout=logs, stderr=logs, cwd=tmp_path)]
        try:
            wait_for_port(port, processes[0])
            workers = {name: subprocess.Popen(
                [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--name", name,
                 "--local-directory", str(tmp_path / name), "--no-dashboard"], stdout=logs, stderr=logs, cwd=tmp_path,
                env=hold.env()) for name in ("w0", "w1")}
            processes += workers.values()
            yield DaskCluster(address, workers, log, hold)
        finally:
            stop(processes)


def statuses(root: Path) -> dict[str, str]:
    with (root / "summary.csv").open() as handle:
        return {row["run"]: row["status"] for row in csv.DictReader(handle)}


def test_dask_executor_runs_on_real_workers(tmp_path: Path, dask_cluster: DaskCluster) -> None:
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "dask",
                                      "--scheduler", dask_cluster.address, "--out", str(out)])
    assert result.exit_code == 0, result.output + dask_cluster.log.read_text()[-3000:]
    (root,) = (out / "sweeps").glob("*/*")
    assert list(statuses(root).values()) == ["completed"] * 2
    assert all((run / "checkpoint.pt").is_file() for run in root.iterdir() if run.is_dir())


def worker_running(address: str, key_suffix: str) -> str | None:
    """The name of the worker that is running the task whose key ends with key_suffix, if one is."""
    from distributed import Client

    with Client(address, timeout="10s") as client:
        info = client.scheduler_info()["workers"]
        for worker, keys in client.processing().items():
            if any(str(key).endswith(key_suffix) for key in keys) and worker in info:
                return str(info[worker]["name"])
    return None


def test_a_worker_killed_mid_run_and_the_sweep_finishes(tmp_path: Path, dask_cluster: DaskCluster) -> None:
    """Run 000 is held on its data; its worker is killed; Dask reruns it on the other worker and every run finishes."""
    hold, table = dask_cluster.hold, tmp_path / "table.csv"
    table.write_text(csv_rows(seed=1))
    csv_config(tmp_path / "c.yaml", hold.data)
    # --no-batch: one task per run, so the killed worker is running run 000 alone (not a group of runs).
    sweep = bbbrun("sweep", "c.yaml", f"data.path={hold.data},{table}", "seed=0,1", "--executor", "dask",
                   "--scheduler", dask_cluster.address, "--no-batch", "--out", "out", cwd=tmp_path)
    try:
        wait_for("run 000 to start", lambda: next((tmp_path / "out" / "sweeps").glob("*/*/000_*"), None))
        name = wait_for("run 000's worker", lambda: worker_running(dask_cluster.address, "-000"))
        assert sweep.poll() is None
        dask_cluster.workers[name].send_signal(signal.SIGKILL)  # while it waits on the held data
        dask_cluster.workers[name].wait()
        hold.release()  # the rerun of 000 (and 001, if held on the other worker) now read the rows
        out, err = sweep.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        sweep.kill()
        sweep.wait()
    assert sweep.returncode == 0, out + err + dask_cluster.log.read_text()[-3000:]
    (root,) = (tmp_path / "out" / "sweeps").glob("*/*")
    assert list(statuses(root).values()) == ["completed"] * 4
    survivor = next(p for n, p in dask_cluster.workers.items() if n != name)
    assert survivor.poll() is None and "000_" in out


def test_an_unreachable_scheduler_is_one_line_before_anything_is_made(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    config = write_config(tmp_path / "c.yaml")
    result = CliRunner().invoke(app, ["sweep", str(config), "--executor", "dask",
                                      "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "could not reach the dask scheduler" in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()
