"""The tracker interface: what a run tells an experiment-tracking service besides its run directory.

A tracker is opened when a run starts and closed when it ends; in between it
is handed the parameters, each log point's numbers and, at the end, the final
metrics and the run directory's files. A sweep opens one parent run whose id
its runs carry, so the service can show them as children.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrackedRun:
    """Where a run is logged: the service's URI, the experiment, the run's name, its sweep's parent run."""

    uri: str
    experiment: str
    name: str
    parent_id: str | None = None


class Tracker(ABC):
    """One run, as logged to a tracking service."""

    @abstractmethod
    def log_params(self, params: dict[str, Any]) -> None:
        """The config, flattened to dotted keys."""

    @abstractmethod
    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """One log point's numbers (step: the epoch)."""

    @abstractmethod
    def finish(self, status: str, files: list[Path]) -> None:
        """Upload `files`, then close the run with bbbrun's status (completed, failed, interrupted)."""


class SweepTracker(ABC):
    """A sweep's parent run: opened before its runs start, closed when they have all ended."""

    @property
    @abstractmethod
    def parent_id(self) -> str:
        """The id the sweep's runs name as their parent."""

    @abstractmethod
    def finish(self, status: str, files: list[Path]) -> None:
        """Upload the sweep's summary files, then close the parent run."""
