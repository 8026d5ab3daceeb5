"""Helpers for the tests that run sweeps on real cluster processes (Slurm, Dask).

A run that must stay busy until the test decides reads its data from a held CSV: the processes the test
starts import hold/sitecustomize.py, which makes opening that file wait, asleep and without using a core,
until the test releases it or the job is killed. That makes "cancelled while running", "past its time
limit" and "worker killed mid-run" deterministic with a tiny config. (A named pipe did this once; bbbrun
now refuses a FIFO as data, as it should.)
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import yaml
from conftest import TINY

T = TypeVar("T")

HOOK_DIR = Path(__file__).parent / "hold"


def csv_rows(num_points: int = 300, seed: int = 0) -> str:
    """A small regression table: a noisy cubic in column y of x."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, num_points)
    y = 0.2 * x**3 + rng.normal(0, 1, num_points)
    return "x,y\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(x, y, strict=True))


def csv_config(path: Path, data_path: Path) -> Path:
    """A tiny config whose data is the CSV at data_path."""
    raw = copy.deepcopy(TINY)
    raw["data"] = {"source": "csv", "path": str(data_path), "target": "y"}
    path.write_text(yaml.safe_dump(raw))
    return path


@dataclass(frozen=True)
class Hold:
    """A regular CSV whose readers wait until `release` is called, in processes started with `env()`."""

    data: Path
    released: Path

    @classmethod
    def under(cls, folder: Path) -> Hold:
        hold = cls(folder / "held.csv", folder / "held.released")
        hold.data.write_text(csv_rows())
        return hold

    def env(self) -> dict[str, str]:
        """This process's environment plus the hook; sbatch passes it on to Slurm tasks."""
        path = os.pathsep.join(filter(None, [str(HOOK_DIR), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "PYTHONPATH": path, "BBBRUN_TEST_HOLD": str(self.data),
                "BBBRUN_TEST_RELEASE": str(self.released)}

    def release(self) -> None:
        """From now on every open of the data goes through, waiting ones within a poll."""
        self.released.touch()


def bbbrun(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in its own process, as a user starts it."""
    return subprocess.Popen([sys.executable, "-m", "bbbrun", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.5) -> T:
    """Poll until probe returns something, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
