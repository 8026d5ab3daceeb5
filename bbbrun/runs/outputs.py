"""Files the user names for a result (`predict --output`, `evaluate --json`): checked before any work.

Such a path must be a new file, or an existing regular file the user owns,
in an existing directory. A symlink, device, FIFO, socket or directory is
refused (writing there would follow the link or never end), and so is the
file being read (the checkpoint, the input) and anything inside a directory
bbbrun made: a result never replaces a run's own files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from bbbrun.errors import DataError
from bbbrun.runs.marker import marked_ancestor


def check_output_file(path: Path, option: str, reading: Sequence[Path] = ()) -> None:
    """Refuse `path` as `option`'s output unless it is safe to (over)write; `reading` are this command's inputs."""
    check_kind(path, option)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"{option} {path}: the directory {parent} does not exist")
    for source in reading:
        if path.exists() and source.exists() and os.path.samefile(path, source):
            raise DataError(f"{option} {path} is the file being read; give another name")
    made = made_dir_holding(parent)
    if made is not None:
        raise DataError(f"{option} {path} is inside {made}, a directory bbbrun made; write results elsewhere")


def check_kind(path: Path, option: str) -> None:
    """A new path, or a regular file (not a link) of this user."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as err:
        raise DataError(f"{option} {path}: {err.strerror or err}") from None
    if stat.S_ISLNK(info.st_mode):
        raise DataError(f"{option} {path} is a symbolic link; give the path of a regular file")
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{option} {path} is a directory; give a file name")
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{option} {path} is not a regular file (a device, FIFO or socket); give a file name")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise DataError(f"{option} {path} belongs to another user; give a file of your own")


def check_output_dir(path: Path, option: str, own_run: Path | None = None) -> None:
    """A directory for figures: new, or an existing real directory; inside a bbbrun directory only the run's own
    (`own_run`; None allows none)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise DataError(f"{option} {path}: {err.strerror or err}") from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise DataError(f"{option} {path} is not a directory (a file, link or device); give a directory")
    made = made_dir_holding(path)
    if made is not None and (own_run is None or made != own_run.resolve()):
        raise DataError(f"{option} {path} is inside {made}, a directory bbbrun made"
                        f"{' for another run' if own_run is not None else ''}; write figures elsewhere")


def made_dir_holding(path: Path) -> Path | None:
    """The directory bbbrun made (its marker) that holds `path`, or will once `path` is created; else None."""
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    return marked_ancestor(existing.resolve())
