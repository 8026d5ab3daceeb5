"""Names that become directories: a config's `name`, a sweep's name, a sweep's per-run directory names.

Each must be one plain path component, so that whatever a config or an edited
sweep file says, a command writes only under its output root.
"""

from __future__ import annotations

from bbbrun.errors import ConfigError
from bbbrun.reprs import short_repr

MAX_NAME_CHARS = 120


def unsafe_reason(name: str) -> str | None:
    """Why `name` cannot be a single directory name, or None when it can."""
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"it is longer than {MAX_NAME_CHARS} characters"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if name.startswith("."):
        return "it starts with '.' (a hidden, current or parent directory)"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "it contains a control character"
    return None


def check_name(name: object, what: str) -> str:
    """`name` as given, or one ConfigError line saying why it cannot be a directory name."""
    reason = "it is not a string" if not isinstance(name, str) else unsafe_reason(name)
    if reason is not None:
        raise ConfigError(f"{what} must be a plain directory name (letters, digits, '-', '_', ...); "
                          f"{short_repr(name)} is refused: {reason}")
    return str(name)
