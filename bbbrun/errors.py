"""The errors a user can act on. Anything else escaping the CLI is a bug."""

from __future__ import annotations


class BbbrunError(Exception):
    """A problem with the user's input or environment, stated in one line."""

    exit_code = 2


class ConfigError(BbbrunError):
    """A config file, key or override that cannot be used."""


class DataError(BbbrunError):
    """Input data (a CSV, a data section) that cannot be used."""


class CheckpointError(BbbrunError):
    """A checkpoint that is missing, unsafe, corrupted or of another format."""


class OutputError(BbbrunError):
    """A result that could not be written (disk full, permissions)."""


class TrainingDiverged(BbbrunError):
    """The loss became NaN or infinite; the last finite checkpoint is kept."""

    exit_code = 1


class SweepFailed(BbbrunError):
    """Some runs of a sweep failed; the others finished and are summarised."""

    exit_code = 1


class Interrupted(BbbrunError):
    """Training was stopped by a signal after saving a checkpoint."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
