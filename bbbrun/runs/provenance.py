"""Where a run came from: run.json, written when it starts and completed when it ends.

A run directory's other files say what was learned; this one says what produced
it (command, config file and its hash, overrides, git state, library versions,
machine, device) and how it ended (`completed`, `failed`, `interrupted`, or
`running` while it runs, and forever for a process killed outright). A resumed
run keeps the records of its earlier sessions under "previous".
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from bbbrun.runs.layout import RunDir

STATUSES = ("running", "completed", "failed", "interrupted")
# Always recorded; extras only when installed (they change what a run can do, not its numbers).
CORE_PACKAGES = ("bbbrun", "torch", "numpy")
EXTRA_PACKAGES = ("matplotlib", "dask", "distributed", "submitit", "mlflow", "mlflow-skinny", "pandas")
GIT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Invocation:
    """What the user typed: plain data, so it travels to sweep workers with their job."""

    argv: tuple[str, ...] = ()
    cwd: str = ""
    config_file: str | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def current(cls, config_file: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Invocation:
        """This process's command line and working directory."""
        argv = (program_name(sys.argv[0]), *sys.argv[1:]) if sys.argv and sys.argv[0] else ()
        return cls(argv, os.getcwd(), None if config_file is None else str(config_file), tuple(overrides))


def program_name(argv0: str) -> str:
    """`bbbrun` for the installed command, `python -m bbbrun` for the module, else the script's name."""
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name == "bbbrun":
        return "python -m bbbrun"
    return path.name


def process_gone(record: dict[str, Any]) -> bool:
    """A run.json still saying `running` whose process, on this host, no longer exists (killed outright)."""
    pid, host = record.get("pid"), (record.get("machine") or {}).get("host")
    if record.get("status") != "running" or not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists but belongs to someone else
        return False
    return False


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def package_versions() -> dict[str, str]:
    """bbbrun, Python, torch, numpy, and each optional package that is installed (read without importing)."""
    versions = {name: installed_version(name) or "not installed" for name in CORE_PACKAGES}
    versions["python"] = platform.python_version()
    for name in EXTRA_PACKAGES:
        if (version := installed_version(name)) is not None:
            versions[name] = version
    return versions


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def git_state(directory: str) -> dict[str, Any] | None:
    """The commit checked out in `directory` and whether tracked files differ from it; None outside a checkout.

    Untracked files do not count as dirty: a run's own outputs/ would otherwise make every later run dirty.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: Any) -> dict[str, Any]:
    """Host, OS, CPU, the device used (and its GPU's name) and torch's thread count."""
    import torch

    gpu = torch.cuda.get_device_name(device) if getattr(device, "type", "") == "cuda" else None
    return {"host": socket.gethostname(), "os": platform.platform(), "cpu": cpu_model(), "gpu": gpu,
            "device": str(device), "torch_threads": torch.get_num_threads()}


def start_record(invocation: Invocation, device: Any) -> dict[str, Any]:
    """run.json as a run starts: status running, end unknown."""
    config_file = invocation.config_file
    return {
        "status": "running",
        "command": shlex.join(invocation.argv),
        "argv": list(invocation.argv),
        "cwd": invocation.cwd,
        "config_file": config_file,
        "config_sha256": None if config_file is None else file_sha256(Path(invocation.cwd or ".") / config_file),
        "overrides": list(invocation.overrides),
        "git": git_state(invocation.cwd or "."),
        "versions": package_versions(),
        "machine": machine(device),
        "pid": os.getpid(),
        "started_at": now_iso(),
        "ended_at": None,
        "wall_seconds": None,
    }


class Provenance:
    """The run.json of one session of a run: `start` writes it, `finish` completes it."""

    def __init__(self, run_dir: RunDir, invocation: Invocation, device: Any) -> None:
        self.run_dir = run_dir
        self.record = start_record(invocation, device)
        self.clock = time.monotonic()

    def start(self) -> None:
        earlier = self.run_dir.read_provenance()
        if earlier is not None:
            # A resume: the earlier sessions stay, newest last, so the run's whole story is kept.
            self.record["previous"] = [*earlier.pop("previous", []), earlier]
        self.run_dir.write_provenance(self.record)

    def finish(self, status: str, **details: Any) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self.record.update(status=status, ended_at=now_iso(),
                           wall_seconds=round(time.monotonic() - self.clock, 3), **details)
        self.run_dir.write_provenance(self.record)


def status_of_exception(err: BaseException) -> str:
    """A stop by its user (Ctrl-C, a signal) is an interrupt; anything else a failure."""
    from bbbrun.errors import Interrupted

    return "interrupted" if isinstance(err, (KeyboardInterrupt, Interrupted)) else "failed"
