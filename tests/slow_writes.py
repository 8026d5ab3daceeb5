"""`python tests/slow_writes.py train ...`: bbbrun with every atomic write paused half-way.

Each write hands its file half the bytes, waits, then the rest, so a SIGKILL
at a random moment usually lands while a file is half-written: the case the
temporary-file-and-rename scheme must survive. (Were files written in
place, the killed run would leave a truncated checkpoint.)
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bbbrun import files
from bbbrun.cli import app
from bbbrun.fit import checkpoint

PAUSE_S = 0.03
_write_atomic = files.write_atomic


def halting_write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    data = buffer.getvalue()

    def in_two_halves(handle: IO[bytes]) -> None:
        handle.write(data[: len(data) // 2])
        handle.flush()
        time.sleep(PAUSE_S)
        handle.write(data[len(data) // 2 :])

    _write_atomic(path, in_two_halves)


if __name__ == "__main__":
    files.write_atomic = halting_write_atomic  # write_text_atomic looks it up here
    checkpoint.write_atomic = halting_write_atomic  # imported by name
    sys.exit(app(sys.argv[1:]))
