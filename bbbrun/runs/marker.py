"""The marker file that says "bbbrun made this directory": what --resume accepts and user outputs avoid.

A run or sweep directory holds a small `.bbbrun` JSON file naming its kind.
`--resume` writes only into a directory that has one, so a mistyped path
(a home directory, a data folder) is refused rather than filled with results;
and a user-named output file (`predict --output`) may not land inside one,
so it cannot replace a run's own files.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bbbrun.files import write_text_atomic

MARKER = ".bbbrun"
RUN = "run"
SWEEP = "sweep"
MAX_MARKER_BYTES = 4096


def mark(path: Path, kind: str) -> None:
    """Record that bbbrun made `path` as a `kind` directory."""
    write_text_atomic(path / MARKER, json.dumps({"made_by": "bbbrun", "kind": kind}) + "\n")


def marker_kind(path: Path) -> str | None:
    """The kind recorded in path's marker, or None when path is not a directory bbbrun made."""
    marker = path / MARKER
    try:
        info = os.lstat(marker)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MARKER_BYTES:
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("made_by") != "bbbrun" or data.get("kind") not in (RUN, SWEEP):
        return None
    return str(data["kind"])


def marked_ancestor(path: Path) -> Path | None:
    """The nearest directory at or above `path` that bbbrun made, if any."""
    for folder in (path, *path.parents):
        if marker_kind(folder) is not None:
            return folder
    return None
