"""Writing results so that nothing is lost: atomic files and fresh run directories."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from bbbrun.errors import OutputError


@contextlib.contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn a failed write (disk full, permissions) into one line naming the path."""
    try:
        yield
    except OSError as err:
        reason = "the disk is full" if err.errno == errno.ENOSPC else (err.strerror or str(err))
        raise OutputError(f"could not write {path}: {reason}") from None


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file in the same directory, fsync, then rename over `path`.

    A reader (or a process killed mid-write) sees the old file or the new
    one, never half of one.
    """
    with output_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))


def new_run_dir(root: Path, name: str, now: datetime | None = None) -> Path:
    """Create root/name/<YYYY-MM-DD_HH-MM-SS>[_K]/, never reusing an existing directory."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    parent = root / name
    with output_errors(parent):
        parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(10_000):
            candidate = parent / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                candidate.mkdir()  # atomic: fails if another run took the name
                return candidate
            except FileExistsError:
                continue
    raise OutputError(f"could not find a free run directory under {parent}")
