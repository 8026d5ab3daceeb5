"""What a Slurm controller says about a sweep: its partitions, whether it would take the job array's
options, and the state of each task of the array.

submitit learns a job's state from `sacct`, which needs Slurm's accounting database; many clusters (and
any single-node Slurm without slurmdbd) have none, and then a job that ended without a result (cancelled,
past its time limit, its node lost) looks pending for ever. `squeue --states=all` answers from the
controller itself, which keeps a finished job for MinJobAge (300 s by default), far longer than a poll.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bbbrun.errors import ConfigError
from bbbrun.sweeps.grid import SlurmOptions

# A task in one of these may still produce a result; any other state is final.
ACTIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "STOPPED",
})

# Why a task that ended without a result ended, as a user reads it in the summary.
ENDINGS = {
    "TIMEOUT": "stopped at its time limit",
    "CANCELLED": "cancelled (scancel, or an administrator)",
    "NODE_FAIL": "its node failed",
    "OUT_OF_MEMORY": "ran out of memory (raise slurm.mem_gb)",
    "PREEMPTED": "preempted",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "missed its deadline",
}


def slurm(*args: str) -> subprocess.CompletedProcess[str]:
    """A Slurm command's output; a missing or hung command reads as a failed one."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(args, 1, "", str(err))


def check_partition(name: str | None, time_min: int) -> None:
    """Refuse a partition the controller does not know, or a --time over its limit (the job would pend for ever)."""
    limits, default = partition_limits()
    chosen = name or default
    if chosen is None:
        return  # no default partition: sbatch --test-only says what is wrong
    if chosen not in limits:
        known = ", ".join(sorted(limits))
        raise ConfigError(f"--partition {chosen}: no such Slurm partition; this cluster has {known}")
    limit = minutes(limits[chosen])
    if limit is not None and time_min > limit:
        raise ConfigError(f"--time {time_min} is over partition {chosen}'s limit of {limits[chosen]} "
                          f"({limit} min); ask for at most {limit}")


def partition_limits() -> tuple[dict[str, str], str | None]:
    """Each partition's time limit as sinfo writes it, and the default partition."""
    answer = slurm("sinfo", "--noheader", "--format=%P %l")
    if answer.returncode != 0:
        reason = (answer.stderr.strip().splitlines() or ["no answer"])[-1]
        raise ConfigError(f"could not ask the Slurm controller for its partitions (sinfo: {reason})")
    rows = [line.split() for line in answer.stdout.splitlines() if len(line.split()) == 2]
    default = next((part.rstrip("*") for part, _ in rows if part.endswith("*")), None)
    return {part.rstrip("*"): limit for part, limit in rows}, default


def minutes(limit: str) -> int | None:
    """Whole minutes in a Slurm time ("infinite", "30:00", "4:00:00", "1-12:00:00"); None when unlimited."""
    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", limit):
        return None
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    hours, mins = (parts[0], parts[1]) if len(parts) == 3 else (0, parts[0])  # h:m:s, else m:s or m
    return int(days or 0) * 1440 + hours * 60 + mins


def check_submission(options: SlurmOptions) -> None:
    """Ask sbatch whether it would take a task with these options; `--test-only` submits nothing."""
    args = ["sbatch", "--test-only", "--nodes=1", f"--time={options.time_min}",
            f"--cpus-per-task={options.cpus_per_task}", "--wrap=true"]
    if options.partition:
        args.append(f"--partition={options.partition}")
    if options.gpus_per_node:
        args.append(f"--gpus-per-node={options.gpus_per_node}")
    if options.mem_gb:
        args.append(f"--mem={int(options.mem_gb * 1024)}M")
    answer = slurm(*args)
    if answer.returncode != 0:
        raise ConfigError(f"Slurm would refuse these runs: {last_error_line(answer.stderr)}")


def task_states(array_id: str) -> dict[str, str] | None:
    """{"<array>_<task>": "RUNNING", ...} for every task still known; None when squeue could not answer."""
    answer = slurm("squeue", "--noheader", "--array", "--states=all", f"--jobs={array_id}", "--format=%i|%T")
    if answer.returncode != 0:
        # The controller forgets a job MinJobAge after it ends: then no task of it is known.
        return {} if "Invalid job id" in answer.stderr else None
    rows = (line.split("|", 1) for line in answer.stdout.split() if "|" in line)
    return {task: state for task, state in rows}


def ending(task: str, state: str | None, time_min: int, log: Path) -> str:
    """One line saying how a task ended without a result, and where to look when Slurm does not say why."""
    if state == "TIMEOUT":
        return f"slurm job {task} TIMEOUT: {ENDINGS[state]} of {time_min} min; rerun with a larger --time"
    if state in ENDINGS:
        return f"slurm job {task} {state}: {ENDINGS[state]}"
    what = f"ended {state}" if state else "left the queue"
    return f"slurm job {task} {what} without a result; see {log}"


def last_error_line(text: str) -> str:
    """The line of a traceback or of sbatch's output that names the error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^([\w.]+(Error|Exception)\b|sbatch: error:)", line)]
    return (named or lines or ["(no message)"])[-1]
