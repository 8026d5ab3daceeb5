"""A sweep's or benchmark's part of a report: the ranked runs, the mean over seeds, the benchmark
table beside published results, the comparison figure, and the best run's own figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bbbrun.errors import ConfigError
from bbbrun.report.html import Section, escape, figures, table
from bbbrun.report.run import figure_items
from bbbrun.runs.layout import SweepDir, read_json_object
from bbbrun.sweeps import benchmark, summary
from bbbrun.sweeps.grid import SweepPlan, plan_from_dict


def sweep_title(sweep: SweepDir, plan: SweepPlan) -> str:
    kind = "benchmark" if sweep.is_benchmark() else "sweep"
    return f"bbbrun {kind} {plan.name} ({sweep.path.name})"


def read_records(sweep: SweepDir) -> list[dict[str, Any]]:
    data = read_json_object(sweep.summary_json)
    if data is None or not isinstance(data.get("runs"), list):
        raise ConfigError(f"{sweep.path} has no readable {sweep.summary_json.name} yet; a report needs the sweep's "
                          "summary (it is written when the sweep ends, or stops)")
    return data["runs"]


def ranked_section(records: list[dict[str, Any]], plan: SweepPlan) -> Section:
    columns, rows, failed = summary.run_table(records, plan)
    classes = ["failed" if bad else "best" if i == 0 else "" for i, bad in enumerate(failed)]
    body = f"<p>{len(rows)} runs, ranked by {escape(plan.metric.name)} ({escape(plan.metric.goal.value)}).</p>"
    body += table(columns, rows, classes)
    if summary.has_seeds(plan):
        columns, rows, failed = summary.setting_table(records, plan)
        body += "<h3>Mean ± standard error across seeds (standard deviation / sqrt(seeds))</h3>"
        body += table(columns, rows, ["failed" if bad else "" for bad in failed])
    return Section("Runs, best first", body)


def benchmark_section(sweep: SweepDir) -> Section | None:
    result = read_json_object(sweep.benchmark_json)
    if result is None:
        return None
    columns, rows = benchmark.table_rows(result)
    notes = "".join(f"<li>{escape(line)}</li>" for line in benchmark.citations())
    return Section("Benchmark: test RMSE and log-likelihood, mean ± se over splits",
                   table(columns, rows) + f"<ul>{notes}</ul>")


def best_run_section(sweep: SweepDir, records: list[dict[str, Any]], plan: SweepPlan) -> Section | None:
    ranked = summary.rank(records, plan)
    if not ranked or ranked[0].get("status") != "completed":
        return None
    best = sweep.run(str(ranked[0]["run"]))
    return Section(f"Best run: {best.path.name}", figures(figure_items(best)))


def curves_section(sweep: SweepDir, records: list[dict[str, Any]], plan: SweepPlan) -> Section:
    """Every run's loss and calibration curves overlaid, best first (the colours of `bbbrun compare`)."""
    from bbbrun import plots

    runs = [sweep.run(str(r["run"])) for r in summary.rank(records, plan)]
    labels = [run.path.name for run in runs]
    loss = plots.plot_losses(labels, [run.read_history() for run in runs])
    calibration = plots.plot_calibrations(labels, [(run.read_metrics() or {}).get("val_calibration") or []
                                                           for run in runs])
    return Section("Every run's curves", figures([
        (plots.png_bytes(loss), "Loss against epoch, every run"),
        (plots.png_bytes(calibration), "Calibration on the validation rows, every run")]))


def sweep_sections(sweep: SweepDir) -> tuple[str, list[Section]]:
    """The page title and the sections of a sweep or benchmark directory."""
    plan = plan_from_dict(sweep.read_plan(), sweep.plan)
    records = read_records(sweep)
    sections = [section for section in (
        benchmark_section(sweep),
        ranked_section(records, plan),
        Section("Metric per setting", figures([(sweep.comparison, f"{plan.metric.name} per setting, every run")])),
        curves_section(sweep, records, plan),
        best_run_section(sweep, records, plan),
    ) if section is not None]
    return sweep_title(sweep, plan), sections


def is_sweep(path: Path) -> bool:
    return SweepDir(path).plan.is_file()
