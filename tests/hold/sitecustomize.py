"""Test-only: a process that opens one named file waits, asleep, until the test releases it.

The cluster tests put this folder on PYTHONPATH for the processes they start (the CLI, Dask workers,
and through sbatch's exported environment, Slurm tasks), so Python imports it at start-up. Nothing
changes unless BBBRUN_TEST_HOLD names the file to hold and BBBRUN_TEST_RELEASE the file whose
existence releases it. A held open polls every 0.2 s, so it uses no core, and the process can be
cancelled, timed out or killed like any busy run. Once released, opening reads the file as usual.
"""

from __future__ import annotations

import builtins
import io
import os
import time
from typing import Any

POLL_S = 0.2


def install(hold: str, release: str) -> None:
    """Make io.open (which builtins.open and Path.open call) wait on `release` before opening `hold`."""
    original = io.open

    def open_when_released(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == hold:
            while not os.path.exists(release):
                time.sleep(POLL_S)
        return original(file, *args, **kwargs)

    io.open = builtins.open = open_when_released


_hold, _release = os.environ.get("BBBRUN_TEST_HOLD"), os.environ.get("BBBRUN_TEST_RELEASE")
if _hold and _release:
    install(os.path.realpath(_hold), _release)
