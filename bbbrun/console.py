"""The terminal: the only module that imports rich. Progress, log lines, tables, errors."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bbbrun.fit.logline import format_log_line


def stdout() -> Console:
    # Built per call so that test runners that swap sys.stdout are honoured.
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def one_line(message: str) -> str:
    """The message with newlines and other control characters (a path may hold any) shown as '?'."""
    return "".join(char if char.isprintable() else "?" for char in message)


# Whether an error line has been printed, so that a late Ctrl-C adds no second one (see bbbrun.entry).
reported = False


def error(message: str) -> None:
    """One line on stderr, no markup interpretation, no wrapping."""
    global reported
    reported = True
    print(f"error: {one_line(message)}", file=sys.stderr)


def warn(message: str) -> None:
    """A warning line on stderr: the run goes on, but its user should know."""
    print(f"warning: {one_line(message)}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


class TrainProgress:
    """A rich progress bar on a terminal; on anything else, only the plain log lines."""

    def __init__(self, total_epochs: int, start_epoch: int = 0, label: str = "training") -> None:
        self.console = stdout()
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.total, self.start, self.label = total_epochs, start_epoch, label

    def __enter__(self) -> TrainProgress:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("epoch {task.completed}/{task.total}"), TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=self.total, completed=self.start, loss="-")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def on_log(self, row: dict[str, Any]) -> None:
        line = format_log_line(row)
        if self.progress is not None:
            self.progress.console.print(line, markup=False)
        else:
            info(line)

    def on_stage(self, message: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=message)
        else:
            info(message)

    def on_progress(self, epoch: int, loss: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=epoch, loss=f"{loss:.4f}")


def literal(text: object) -> str:
    """User text as the terminal shows it literally: no rich markup ([red]), no control characters (escapes)."""
    return escape(one_line(str(text)))


def print_table(title: str, columns: list[str], rows: list[list[str]], highlight_first: bool = False) -> None:
    table = Table(title=literal(title))
    for column in columns:
        table.add_column(literal(column), no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*map(literal, row), style="bold green" if highlight_first and i == 0 else None)
    print_uncropped(table)


def print_uncropped(table: Table) -> None:
    """Off a terminal rich assumes 80 columns; a table piped to a file keeps its full width instead."""
    console = stdout()
    if not console.is_terminal:
        width = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console = Console(file=sys.stdout, highlight=False, width=max(80, width))
    console.print(table)


def print_metrics(metrics: dict[str, Any], keys: tuple[str, ...]) -> None:
    """One line of the named metrics that are numbers, in order."""
    parts = [f"{k} {metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float))]
    info(" | ".join(parts))


class SweepProgress:
    """One display for a whole sweep: runs done, running and failed, and each run's final line.

    Workers never draw on the terminal; only the parent calls this.
    """

    def __init__(self, total: int, workers: int) -> None:
        self.console = stdout()
        self.progress: Progress | None = None
        self.total, self.workers, self.done, self.failed = total, workers, 0, 0

    def __enter__(self) -> SweepProgress:
        if self.console.is_terminal and self.total:
            self.progress = Progress(
                TextColumn("[bold]sweep"), BarColumn(), TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                console=self.console, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("sweep", total=self.total, counts=self.counts())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.progress is not None:
            self.progress.stop()

    def counts(self) -> str:
        running = min(self.workers, self.total - self.done)
        return f"{self.done}/{self.total} done, {running} running, {self.failed} failed"

    def run_finished(self, line: str, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if self.progress is not None:
            self.progress.console.print(line, markup=False, style="red" if failed else None)
            self.progress.update(self.task, completed=self.done, counts=self.counts())
        else:
            info(line)


def print_ranked_table(title: str, columns: list[str], rows: list[list[str]], failed: list[bool]) -> None:
    """A sweep's ranking: the first row (the best) highlighted, failed rows in red, nothing cropped."""
    table = Table(title=literal(title))
    for column in columns:
        table.add_column(literal(column), no_wrap=True)
    for i, row in enumerate(rows):
        table.add_row(*map(literal, row), style="red" if failed[i] else "bold green" if i == 0 else None)
    print_uncropped(table)
