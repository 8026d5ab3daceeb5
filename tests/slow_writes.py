"""`python tests/slow_writes.py train ...`: bbbrun with every fsync slowed down.

Each atomic write then spends most of its time with a half-finished
temporary file on disk, so a SIGKILL at a random moment usually lands in
the middle of one: the case the atomic rename must survive.
"""

from __future__ import annotations

import os
import sys
import time

from bbbrun.cli import app

_fsync = os.fsync


def slow_fsync(fd: int) -> None:
    time.sleep(0.03)
    _fsync(fd)


if __name__ == "__main__":
    os.fsync = slow_fsync
    sys.exit(app(sys.argv[1:]))
