"""`bbbrun report`: one self-contained HTML page for a run, a sweep or a benchmark."""

from __future__ import annotations

from pathlib import Path

from bbbrun.errors import ConfigError
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.report.html import page
from bbbrun.runs.layout import RunDir, SweepDir
from bbbrun.runs.outputs import check_kind, made_dir_holding


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
    own = SweepDir(target).report if SweepDir(target).plan.is_file() else RunDir(target).report
    if out is not None:
        check_report_path(out, own)
    html = render(target)
    path = out or own
    with output_errors(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, html)
    return path


def check_report_path(out: Path, own: Path) -> None:
    """--out may be any new or regular file of the user's, but inside a directory bbbrun made only that
    directory's own report.html: a report must never replace a checkpoint, a metrics file or a config."""
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name such as report.html")
    check_kind(out, "--out")
    made = made_dir_holding(out.parent)
    if made is not None and out.resolve() != own.resolve():
        raise ConfigError(f"--out {out} is inside {made}, a directory bbbrun made; write the report elsewhere "
                          "(or leave out --out for its own report.html)")


__all__ = ["render", "write_report"]
