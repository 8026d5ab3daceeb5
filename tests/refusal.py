"""Helpers for the safety tests: a command refused as one line, and what a directory tree holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bbbrun.cli import app


def refused(args: list[str], expect: list[str] | None = None, code: int = 2) -> str:
    """Run `bbbrun ARGS` in-process; it must exit `code` with one line on stderr, no traceback. Returns the line."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
    return one_line(result.stderr, result.stdout, expect)


def refused_in_child(args: list[str], expect: list[str] | None = None, timeout: float = 60.0,
                     code: int = 2) -> str:
    """`bbbrun ARGS` in a child process with a time limit, for inputs that could hang or exhaust memory."""
    command = [sys.executable, "-m", "bbbrun", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    return one_line(result.stderr, result.stdout, expect)


def one_line(stderr: str, stdout: str, expect: list[str] | None) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert lines[0].startswith("error: "), lines[0]
    for word in expect or []:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def tree(root: Path) -> dict[str, int]:
    """Every path under root (not following links) with its modification time in ns."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = path.lstat().st_mtime_ns
    return found


def train_tiny(root: Path, **sections: dict[str, object]) -> Path:
    """Train the tiny config (with `sections` changed) under root/out and return its run directory."""
    from conftest import write_config

    config = write_config(root / "tiny.yaml", **sections)
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    (run,) = (root / "out" / "tiny").iterdir()
    return run


def read_until(process: subprocess.Popen[str], prefix: str) -> str:
    """Lines of a child's stdout up to the first one starting with `prefix` (it must still be running)."""
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"process ended before printing {prefix!r}: {seen}{process.communicate()[1]}")
