"""Reading and writing files so that nothing is lost: checked inputs, atomic outputs."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from bbbrun.errors import BbbrunError, OutputError


def check_readable_file(path: Path, what: str, error: type[BbbrunError]) -> None:
    """Refuse a missing path or a directory where a file is expected, as `error`, naming `what` it should be."""
    if not path.exists():
        raise error(f"{what} file not found: {path}")
    if path.is_dir():
        raise error(f"{path} is a directory; expected a {what} file")
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise error(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if not stat.S_ISREG(mode):
        # A device (/dev/zero), FIFO or socket would never end, or block forever, when read.
        raise error(f"{path} is not a regular file (a device, FIFO or socket); expected a {what} file")


def read_bounded(path: Path, what: str, limit: int, error: type[BbbrunError]) -> bytes:
    """A checked regular file's bytes, refused when larger than `limit` (read no further than that)."""
    check_readable_file(path, what, error)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise error(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if len(data) > limit:
        raise error(f"{path} is larger than {limit // 2**20} MiB; a {what} file is a few kilobytes of text")
    return data


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
            # mkstemp makes the file 0600; a result should get the mode any new file of the user's gets.
            os.fchmod(fd, 0o666 & ~current_umask())
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))
