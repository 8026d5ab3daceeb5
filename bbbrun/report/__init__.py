"""`bbbrun report`: one self-contained HTML page for a run, a sweep or a benchmark."""

from __future__ import annotations

from pathlib import Path

from bbbrun.errors import ConfigError
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.report.html import page
from bbbrun.runs.layout import RunDir, SweepDir


def render(target: Path) -> str:
    """The page for `target`: a sweep or benchmark directory (it has a sweep.yaml), else a run directory."""
    from bbbrun.report.run import run_sections, run_subtitle, run_title
    from bbbrun.report.sweep import is_sweep, sweep_sections

    if not target.is_dir():
        raise ConfigError(f"{target} is not a directory; give a run, sweep or benchmark directory")
    if is_sweep(target):
        title, sections = sweep_sections(SweepDir(target))
        return page(title, f"{target}", sections)
    run_dir = RunDir(target)
    if not (run_dir.metrics.is_file() or run_dir.provenance.is_file() or run_dir.config.is_file()):
        raise ConfigError(f"{target} is not a run, sweep or benchmark directory (no metrics.json, run.json, "
                          "config.yaml or sweep.yaml)")
    return page(run_title(run_dir), run_subtitle(run_dir), run_sections(run_dir))


def write_report(target: Path, out: Path | None = None) -> Path:
    """Write the report (by default TARGET/report.html) atomically; returns its path."""
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as report.html")
    html = render(target)
    path = out or (SweepDir(target).report if SweepDir(target).plan.is_file() else RunDir(target).report)
    with output_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, html)
    return path


__all__ = ["render", "write_report"]
