"""`--executor slurm` against a real Slurm controller (marked `slurm`; `.ci/slurm-up` starts one as root).

Without a controller these tests skip and say why. CI runs `.ci/slurm-up` first, so there they run.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from clusters import Hold, bbbrun, csv_config, wait_for
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.sweeps.executors.slurm import task_summary
from bbbrun.sweeps.executors.slurm_queue import last_error_line, minutes, partition_limits

# A run held on its data outlives a 1-minute limit: Slurm checks limits every 30 s, then kills.
TIME_LIMIT_MIN = 1
SWEEP_TIMEOUT_S = 240


def controller_problem() -> str | None:
    """Why no Slurm job can run here, or None when a controller answers and a node takes jobs."""
    if shutil.which("scontrol") is None or shutil.which("sbatch") is None:
        return "no Slurm commands (scontrol, sbatch) on PATH"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"no Slurm controller answers ({(ping.stdout + ping.stderr).strip()[:120]})"
    nodes = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30, check=False)
    if not re.search(r"^(idle|mix|alloc)", nodes.stdout, re.MULTILINE):
        return f"no Slurm node takes jobs (sinfo states: {' '.join(nodes.stdout.split()) or 'none'})"
    return None


@pytest.fixture(scope="module")
def partition() -> str:
    """The controller's default partition, or a skip that says why there is none."""
    pytest.importorskip("submitit")
    problem = controller_problem()
    if problem is not None:
        why = os.environ.get("BBBRUN_SLURM_UNAVAILABLE")  # .ci/run passes on slurm-up's reason
        pytest.skip(f"{problem}{f'; slurm-up: {why}' if why else ''}; as root, `bash .ci/slurm-up` starts one")
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0])


def squeue(array_id: str) -> dict[str, str]:
    answer = subprocess.run(["squeue", "-h", "-r", "--states=all", f"--jobs={array_id}", "--format=%i|%T"],
                            capture_output=True, text=True, check=False)
    return dict(line.split("|") for line in answer.stdout.split())


def submitted_arrays(root: Path) -> list[str]:
    """The job arrays submitit submitted for a sweep, oldest first."""
    scripts = sorted((root / "slurm").glob("*_submission.sh"), key=lambda p: p.stat().st_mtime)
    return [p.name.split("_")[0] for p in scripts]


def rows(root: Path) -> dict[str, dict[str, str]]:
    with (root / "summary.csv").open() as handle:
        return {row["run"]: row for row in csv.DictReader(handle)}


@pytest.mark.slurm
def test_what_slurm_refuses_is_one_line_before_anything_is_made(partition: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = CliRunner().invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "slurm",
                                      "--partition", "no-such-partition", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().count("\n") == 0 and "no such Slurm partition" in result.stderr
    assert partition in result.stderr  # names the partitions there are
    assert not (tmp_path / "out").exists()
    # What sbatch itself would refuse (here: a GPU where the node has none) is refused the same way.
    result = CliRunner().invoke(app, ["sweep", str(config), "--executor", "slurm", "--gpus", "99",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: Slurm would refuse these runs: sbatch: error: ")
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "out").exists()


@pytest.mark.slurm
def test_a_time_over_the_partitions_limit_is_refused(partition: str, tmp_path: Path) -> None:
    """sbatch would take it, and the job would pend for ever; bbbrun says so before anything is made."""
    limits, _ = partition_limits()
    limited = next(((name, minutes(limit)) for name, limit in limits.items() if minutes(limit)), None)
    if limited is None:
        pytest.skip("no partition of this cluster has a time limit (.ci/slurm-up's has one: short)")
    name, limit = limited
    write_config(tmp_path / "c.yaml")
    sweep = bbbrun("sweep", "c.yaml", "--executor", "slurm", "--partition", name, "--time", str(limit + 1),
                   "--out", "out", cwd=tmp_path)
    try:  # in its own process: were it submitted, it would wait for ever
        _, err = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
        sweep.wait()
    assert sweep.returncode == 2, err
    assert f"--time {limit + 1} is over partition {name}'s limit" in err
    assert err.strip().count("\n") == 0 and not (tmp_path / "out").exists()


@pytest.mark.slurm
def test_job_array_with_a_cancelled_and_a_timed_out_run_then_resume(partition: str, tmp_path: Path) -> None:
    """Two runs are held on their data: one is scancel'd, one hits --time; two finish. --resume reruns the two."""
    hold = Hold.under(tmp_path)
    csv_config(tmp_path / "blocked.yaml", hold.data)
    write_config(tmp_path / "fast.yaml")
    # --no-batch: one task per run (a batched group would be one task for its runs).
    sweep = bbbrun("sweep", "blocked.yaml", "fast.yaml", "seed=0,1", "--executor", "slurm", "--partition", partition,
                   "--time", str(TIME_LIMIT_MIN), "--no-batch", "--out", "out", cwd=tmp_path, env=hold.env())
    try:
        root = wait_for("the sweep directory", lambda: next((tmp_path / "out" / "sweeps").glob("*/*"), None))
        array = wait_for("the job array", lambda: (submitted_arrays(root) or [None])[0])
        # One array, four tasks, each with the partition and time limit asked for.
        assert sorted(squeue(array)) == [f"{array}_{i}" for i in range(4)]
        job = subprocess.run(["scontrol", "show", "job", f"{array}_0"], capture_output=True, text=True).stdout
        assert f"Partition={partition} " in job and "TimeLimit=00:01:00" in job and f"ArrayJobId={array} " in job
        wait_for("run 000 to start", lambda: squeue(array).get(f"{array}_0") == "RUNNING" or None)
        subprocess.run(["scancel", f"{array}_0"], check=True)
        out, err = sweep.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        sweep.kill()
        sweep.wait()
    assert sweep.returncode == 1, out + err
    assert "2 of 4 runs failed" in err
    summary = rows(root)
    assert {name: r["status"] for name, r in summary.items()} == {
        "000_config=blocked,seed=0": "failed", "001_config=blocked,seed=1": "failed",
        "002_config=fast,seed=0": "completed", "003_config=fast,seed=1": "completed"}
    cancelled, timed_out = (summary[f"00{i}_config=blocked,seed={i}"]["error"] for i in range(2))
    assert f"slurm job {array}_0 CANCELLED" in cancelled
    assert f"slurm job {array}_1 TIMEOUT" in timed_out and "time limit of 1 min" in timed_out

    hold.release()
    finished = {p: (p / "checkpoint.pt").stat().st_mtime_ns for p in root.iterdir() if "fast" in p.name}
    resume = bbbrun("sweep", "--resume", str(root), "--executor", "slurm", cwd=tmp_path, env=hold.env())
    out, err = resume.communicate(timeout=SWEEP_TIMEOUT_S)
    assert resume.returncode == 0, out + err
    done = sorted(line.split(":")[0].split()[-1] for line in out.splitlines() if line.startswith("done"))
    assert done == ["000_config=blocked,seed=0", "001_config=blocked,seed=1"]
    again = submitted_arrays(root)[-1]
    assert again != array and "#SBATCH --array=0-1" in (root / "slurm" / f"{again}_submission.sh").read_text()
    assert {p: (p / "checkpoint.pt").stat().st_mtime_ns for p in finished} == finished
    assert [r["status"] for r in rows(root).values()] == ["completed"] * 4


@pytest.mark.slurm
def test_ctrl_c_cancels_the_array_and_marks_the_runs_interrupted(partition: str, tmp_path: Path) -> None:
    hold = Hold.under(tmp_path)  # never released: the tasks stay running until the array is cancelled
    csv_config(tmp_path / "blocked.yaml", hold.data)
    sweep = bbbrun("sweep", "blocked.yaml", "seed=0,1", "--executor", "slurm", "--partition", partition,
                   "--no-batch", "--out", "out", cwd=tmp_path, env=hold.env())
    try:
        root = wait_for("the sweep directory", lambda: next((tmp_path / "out" / "sweeps").glob("*/*"), None))
        array = wait_for("the job array", lambda: (submitted_arrays(root) or [None])[0])
        wait_for("a task to start", lambda: "RUNNING" in squeue(array).values() or None)
        sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
        sweep.wait()
    assert sweep.returncode == 130, out + err
    assert f"bbbrun sweep --resume {root.relative_to(tmp_path)}" in err
    wait_for("every task cancelled", lambda: set(squeue(array).values()) == {"CANCELLED"} or None, timeout=30)
    assert {r["status"] for r in rows(root).values()} == {"interrupted"}


# ------------------------------------------------------------- without a controller


class FakeJob:
    """What the watcher reads of a submitit job: its id, its result file, its error log."""

    def __init__(self, folder: Path, job_id: str) -> None:
        self.job_id = job_id
        self.paths = SimpleNamespace(result_pickle=folder / f"{job_id}_0_result.pkl",
                                     stderr=folder / f"{job_id}_0_log.err")

    def result(self) -> dict[str, object]:
        return {"index": 0, "status": "completed"}


def test_a_task_that_ends_without_a_result_is_failed_on_the_second_look(tmp_path: Path) -> None:
    job, ended_once = FakeJob(tmp_path, "7_0"), set[str]()
    assert task_summary(job, 0, {"7_0": "RUNNING"}, ended_once, 5) is None
    assert task_summary(job, 0, None, ended_once, 5) is None  # squeue did not answer: no verdict
    assert task_summary(job, 0, {}, ended_once, 5) is None  # gone from the queue: its result may be on its way
    summary = task_summary(job, 0, {}, ended_once, 5)
    assert summary is not None and summary["status"] == "failed"
    assert summary["error"] == f"slurm job 7_0 left the queue without a result; see {job.paths.stderr}"
    late = FakeJob(tmp_path, "7_1")
    assert task_summary(late, 0, {"7_1": "COMPLETED"}, ended_once, 5) is None
    late.paths.result_pickle.write_bytes(b"")  # the result arrived between two looks
    assert task_summary(late, 0, {"7_1": "COMPLETED"}, ended_once, 5) == {"index": 0, "status": "completed"}


def test_a_job_error_is_one_line() -> None:
    trace = ("Job (task=0) failed during processing with trace:\n----\nTraceback (most recent call last):\n"
             '  File "x.py", line 1, in f\nOSError: [Errno 28] No space left on device\n----\n'
             "You can check full logs at paths:\n  - /tmp/1_0_0_log.err\n")
    assert last_error_line(trace) == "OSError: [Errno 28] No space left on device"
    assert last_error_line("sbatch: error: invalid partition\nsbatch: error: Batch job submission failed: x") == (
        "sbatch: error: Batch job submission failed: x")


def test_slurm_times_read_as_minutes() -> None:
    assert [minutes(t) for t in ("30:00", "4:00:00", "1-12:00:00", "45")] == [30, 240, 36 * 60, 45]
    assert minutes("infinite") is None and minutes("UNLIMITED") is None
