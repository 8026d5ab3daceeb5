"""The `bbbrun` command line: each command parses, calls the library, prints.

Policy (what a resume may change, what a run's end means, how a sweep is
planned and resumed) lives in the library, so a notebook gets the same
behaviour. torch and matplotlib are imported inside the commands, so
`bbbrun --help` starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import typer

from bbbrun import console
from bbbrun.cli_errors import OneLineGroup
from bbbrun.errors import BbbrunError, ConfigError, Interrupted
from bbbrun.interrupts import guarded, signals_raise
from bbbrun.sweeps.grid import ExecutorKind

app = typer.Typer(
    cls=OneLineGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Train, inspect and compare Bayes-by-Backprop networks from YAML configs.",
)

SAMPLES_HELP = "Predictive samples (default: the run's predict.num_samples)."
BATCH_HELP = ("Most runs trained as one batched model; runs that differ only in seeds, data splits or scalar "
              "settings (learning rate, prior scales, ...) are grouped.")

PARTITION_HELP = "Slurm partition (default: the sweep file's slurm: section)."


def versions_line() -> str:
    """bbbrun's version and those of Python and the libraries its results depend on (read without importing them)."""
    from bbbrun.runs.provenance import package_versions

    return ", ".join(f"{name} {version}" for name, version in package_versions().items())


def show_version(value: bool) -> None:
    if value:
        console.info(versions_line())
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Print the versions of bbbrun, Python, torch, numpy and the optional "
                                 "extras installed, then exit."),
) -> None:
    """Train, inspect and compare Bayes-by-Backprop networks from YAML configs."""


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report a BbbrunError as one line on stderr and exit with its code; other errors keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BbbrunError as err:
            console.error(str(err))
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            # Ctrl-C outside the training loop (loading, plotting): every write is atomic, so say only that.
            console.error("interrupted; no file was left half-written")
            raise typer.Exit(128 + signal.SIGINT) from None

    return wrapper


class StopSignals:
    """SIGINT/SIGTERM as a flag the training loop polls once per epoch.

    A second signal means "quit now": it stops at once, without the final
    checkpoint (the last one written, always whole, is kept). Once training is
    over (`stop_at_once`), the first signal stops the predictive and plots at
    once: the checkpoint is complete and a resume redraws them.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.at_once = False

    def __call__(self) -> int | None:
        return self.received[0] if self.received else None

    def stop_at_once(self) -> None:
        """From now on a signal stops at once; one that came while the last epoch ran stops here."""
        self.at_once = True
        if self.received:
            signum = self.received[0]
            raise Interrupted(f"stopped by {signal.Signals(signum).name} before the results", signum)

    def handle(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        if self.at_once or len(self.received) > 1:
            name = ("a second " if len(self.received) > 1 else "") + signal.Signals(signum).name
            raise Interrupted(f"stopped at once by {name}; the last checkpoint written is kept", signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """StopSignals installed for SIGINT and SIGTERM for the block, the previous handlers put back after."""
    stops = StopSignals()
    previous = {s: signal.signal(s, guarded(stops.handle)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@app.command()
@user_errors
def train(
    config: Optional[Path] = typer.Argument(None, help="YAML config file.", show_default=False),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. train.epochs=100."),
    out: Path = typer.Option(Path("outputs"), "--out", help="Root directory for run directories."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Run directory or checkpoint to continue."),
) -> None:
    """Train a Bayesian network from CONFIG, writing outputs/<name>/<timestamp>/.

    With seeds=K, train K seeds (the config's seed and the next K-1) as one batched model, into
    outputs/seeds/<name>/<timestamp>/, and report each metric as mean ± standard error over seeds.
    """
    from bbbrun.fit.loop import Callbacks, planned_epochs
    from bbbrun.runs import runner
    from bbbrun.runs.provenance import Invocation
    from bbbrun.runs.session import open_run
    from bbbrun.sweeps.sweep import split_seeds

    count, overrides = split_seeds(overrides or [])
    if count is not None:
        if resume is not None:
            raise ConfigError("seeds=K with --resume: finish a group of seeds with bbbrun sweep --resume DIR")
        if config is None:
            raise ConfigError("give a config file: bbbrun train CONFIG seeds=K")
        _train_seeds(config, overrides, count, out)
        return

    session, run_dir = open_run(config, overrides or [], out, resume)
    console.info(f"run directory: {run_dir.path}  (device {session.device}, {session.model.num_weights} weights x 2)")
    epochs = planned_epochs(session.cfg.train, session.trainee.data.num_train)
    with stop_signals() as should_stop, console.TrainProgress(epochs, session.state.epoch) as bar:
        def on_stage(message: str) -> None:
            should_stop.stop_at_once()
            bar.on_stage(message)

        calls = Callbacks(on_log=bar.on_log, on_progress=bar.on_progress, should_stop=should_stop,
                          on_stage=on_stage)
        invocation = Invocation.current(None if resume else config, overrides or [])
        result = runner.run_training(session, run_dir, calls, invocation)
    runner.raise_for_status(result, session)
    console.print_metrics(result.metrics, result.headline)
    for message in result.metrics.get("warnings", []):
        console.warn(message)
    console.info(f"run directory: {run_dir.path}")


def _train_seeds(config: Path, overrides: list[str], count: int, out: Path) -> None:
    from bbbrun.config import load_config
    from bbbrun.sweeps import sweep as sweeps
    from bbbrun.sweeps.executors import ExecOptions, make_executor

    base = load_config(config, overrides).seed  # a bad config fails here, before any directory exists
    prepared = sweeps.prepare(sweeps.seeds_request(config, overrides, count, base))
    # A process per core: the seeds train as one batched group per process, and each run's predictive and
    # figures (most of the time for a config like default.yaml) then run in parallel too.
    _sweep_to_end(prepared, make_executor(ExecOptions(ExecutorKind.LOCAL)), out, "seeds")


@app.command()
@user_errors
def config(
    path: Path = typer.Argument(..., help="YAML config file.", show_default=False),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. train.epochs=100."),
) -> None:
    """Print the resolved config (every key, defaults filled in) without running anything."""
    from bbbrun.config import dump_config, load_config

    typer.echo(dump_config(load_config(path, overrides)), nl=False)


@app.command()
@user_errors
def plot(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory.", show_default=False),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help=SAMPLES_HELP),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for the PNGs (default: the checkpoint's)."),
    x_min: Optional[float] = typer.Option(None, "--x-min", help="Draw the predictive from here."),
    x_max: Optional[float] = typer.Option(None, "--x-max", help="... to here (beyond the data)."),
) -> None:
    """Redraw the train and validation band plots from a checkpoint alone; with --x-min/--x-max as
    train_x<min>_<max>.png and val_x<min>_<max>.png, beside the run's own."""
    from bbbrun.runs import inference

    x_range = inference.make_range(x_min, x_max, required=False)
    for path in inference.plot_checkpoint(checkpoint, samples, out, x_range):
        console.info(f"wrote {path}")


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory.", show_default=False),
    input: Optional[Path] = typer.Option(None, "--input", help="CSV file with the model's input columns."),
    x_min: Optional[float] = typer.Option(None, "--x-min", help="Grid start (instead of --input)."),
    x_max: Optional[float] = typer.Option(None, "--x-max", help="Grid end."),
    num_points: int = typer.Option(100, "--num-points", min=1, help="Grid size."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help=SAMPLES_HELP),
    level: float = typer.Option(0.9, "--level", help="Central interval level, in (0, 1)."),
    output: Optional[Path] = typer.Option(None, "--output", help="CSV file to write (default: standard output)."),
) -> None:
    """Predict at new inputs: the input columns, mean, std, epistemic_std, aleatoric_std, lower, upper
    (noise included); for a classifier class, p_<class> per class, entropy, expected_entropy,
    mutual_information. The input file is read in chunks, so it may be larger than memory."""
    from bbbrun.runs import inference

    x_range = None if x_min is None and x_max is None else inference.make_range(x_min, x_max, required=True)
    request = inference.PredictRequest(input_csv=input, x_range=x_range, num_points=num_points, samples=samples,
                                       level=level)
    if output is None:
        inference.stream_predictions(checkpoint, request, lambda text: typer.echo(text, nl=False))
    else:
        inference.predict_to_file(checkpoint, request, output)
        console.info(f"wrote {output}")


@app.command()
@user_errors
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory.", show_default=False),
    input: Path = typer.Option(..., "--input", help="CSV file with the model's input columns and its target.",
                               show_default=False),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics to this JSON file."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help=SAMPLES_HELP),
) -> None:
    """Score a run on a file with targets: rmse, nll, coverage, calibration, ... (metrics.json's val_* names);
    a classifier's: accuracy, nll, brier, ece, auroc (two classes), ..."""
    from bbbrun.runs import inference, scoring

    if json_out is not None:
        inference.check_output_file(json_out, "--json", (checkpoint, input))
    metrics = scoring.evaluate_file(checkpoint, input, samples)
    rows = [[key, f"{value:.4g}"] for key, value in metrics.items() if isinstance(value, (int, float))]
    console.print_table(f"metrics on {input}", ["metric", "value"], rows)
    if json_out is not None:
        scoring.write_metrics_json(json_out, metrics)
        console.info(f"wrote {json_out}")


@app.command()
@user_errors
def prune(
    checkpoint: Path = typer.Argument(..., help="A checkpoint file or a run directory.", show_default=False),
    fraction: str = typer.Option("0.5,0.75,0.95,0.98", "--fraction", help="Shares of the weights to remove."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help=SAMPLES_HELP),
    save: bool = typer.Option(False, "--save", help="Also write checkpoint_pruned_<percent>.pt per fraction."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for the results (default: the run's)."),
) -> None:
    """Remove the weights of lowest signal-to-noise ratio |mu|/sigma (Blundell et al. 2015, sec. 5.1) and
    score the validation rows at each fraction: a table, prune.json, prune.png and snr.png."""
    from bbbrun.runs import prune as pruning

    result = pruning.prune_run(checkpoint, pruning.parse_fractions(fraction), samples, save, out)
    columns, rows = pruning.table(result)
    console.print_table("validation metrics by fraction of weights removed", columns, rows)
    for path in result.files:
        console.info(f"wrote {path}")


@app.command()
@user_errors
def sweep(
    sources: Optional[list[str]] = typer.Argument(
        None, help="Config files (a grid axis) or one sweep file, then key=value or key=a,b / key='range(0,4)'.",
        show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded runs, one a line, and exit."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Runs at once (default: one per core)."),
    executor: ExecutorKind = typer.Option(ExecutorKind.LOCAL, "--executor", help="Where runs execute."),
    out: Path = typer.Option(Path("outputs"), "--out", help="Root directory; the sweep goes in OUT/sweeps/."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Sweep directory to finish (reruns what is missing)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler, tcp://HOST:PORT."),
    partition: Optional[str] = typer.Option(None, "--partition", help=PARTITION_HELP),
    time_min: Optional[int] = typer.Option(None, "--time", min=1, help="Slurm time limit per run, minutes."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=0, help="Slurm GPUs per run."),
    batch_members: int = typer.Option(64, "--batch-members", min=1, help=BATCH_HELP),
    no_batch: bool = typer.Option(False, "--no-batch", help="Train every run on its own (no batched groups)."),
) -> None:
    """Run a grid of trainings, then rank them: OUT/sweeps/<name>/<timestamp>/ with summary.csv and comparison.png."""
    from bbbrun.sweeps import sweep as sweeps
    from bbbrun.sweeps.executors import ExecOptions, make_executor

    request = sweeps.SweepRequest(tuple(sources or ()), resume, partition, time_min, gpus)
    prepared = sweeps.prepare(request)
    plan = prepared.plan
    if dry_run:
        for line in sweeps.dry_run_lines(plan):
            console.info(line)
        return
    runner = make_executor(ExecOptions(executor, workers, scheduler, plan.slurm, 1 if no_batch else batch_members))
    _sweep_to_end(prepared, runner, out, "sweep")


def _sweep_to_end(prepared: Any, runner: Any, out: Path, what: str) -> None:
    """Open (or resume) the sweep's directory, run it, show the ranked tables; failures become the exit status."""
    from bbbrun.sweeps import summary
    from bbbrun.sweeps import sweep as sweeps

    plan = prepared.plan
    root = sweeps.open_sweep(prepared, out, kind="seeds" if what == "seeds" else "sweeps")
    records = _run_plan(plan, root, runner, summary.table_metrics(plan), what)
    _render_sweep(summary, plan, records)
    sweeps.raise_for_failures(records, root, RESUME_WITH[what])
    console.info(f"{what} directory: {root.path}")


benchmark_app = typer.Typer(no_args_is_help=True, help="Standard benchmarks, with published results beside ours.")
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("uci")
@user_errors
def benchmark_uci(
    sources: Optional[list[str]] = typer.Argument(
        None, help="Benchmark folders (the UCI layout), then key=value overrides.", show_default=False),
    config: Path = typer.Option(Path("configs/uci.yaml"), "--config", help="The config every split trains with."),
    splits: Optional[int] = typer.Option(None, "--splits", min=1, help="Only the first N splits of each folder."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Runs at once (default: one per core)."),
    executor: ExecutorKind = typer.Option(ExecutorKind.LOCAL, "--executor", help="Where runs execute."),
    out: Path = typer.Option(Path("outputs"), "--out", help="Root directory; results go in OUT/benchmarks/."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Benchmark directory to finish."),
    batch_members: int = typer.Option(64, "--batch-members", min=1, help=BATCH_HELP),
    no_batch: bool = typer.Option(False, "--no-batch", help="Train every split on its own (no batched groups)."),
) -> None:
    """Train and score every split of each folder, with published results beside ours."""
    from bbbrun.sweeps import benchmark
    from bbbrun.sweeps import sweep as sweeps
    from bbbrun.sweeps.executors import ExecOptions, make_executor

    items = sources or []
    folders = tuple(Path(s) for s in items if "=" not in s)
    # A shell glob over a benchmark root (../shared/uci/*) also matches its README: plain files are skipped.
    files = [f for f in folders if f.is_file()]
    if files and len(files) < len(folders):
        console.warn(f"skipping {', '.join(map(str, files))}: not a benchmark folder")
        folders = tuple(f for f in folders if f not in files)
    prepared = benchmark.prepare(benchmark.BenchmarkRequest(
        folders, config, tuple(s for s in items if "=" in s), splits, resume))
    runner = make_executor(ExecOptions(executor, workers, batch_members=1 if no_batch else batch_members))
    root = sweeps.open_sweep(prepared, out, kind="benchmarks")
    records = _run_plan(prepared.plan, root, runner, ("test_ll", "test_rmse", "train_seconds"), "benchmark")
    result = benchmark.aggregate(prepared.plan, records)
    benchmark.write_benchmark(root, result)
    columns, rows = benchmark.table_rows(result)
    console.print_table("UCI benchmark: test RMSE and log-likelihood, mean ± se over splits", columns, rows)
    for line in benchmark.citations():
        console.info(line)
    sweeps.raise_for_failures(records, root, RESUME_WITH["benchmark"])
    console.info(f"benchmark directory: {root.path}")


# The command that finishes what a stopped sweep, benchmark or seeds run left (it writes that command's own outputs).
RESUME_WITH = {"sweep": "bbbrun sweep", "seeds": "bbbrun sweep", "benchmark": "bbbrun benchmark uci"}


def _run_plan(plan: Any, root: Any, runner: Any, metrics: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    """Run a plan's pending runs with one progress display; a line per finished run."""
    from bbbrun.sweeps import summary
    from bbbrun.sweeps import sweep as sweeps

    console.info(f"{what} directory: {root.path}  ({len(plan.runs)} runs, executor {runner.options.executor.value})")
    with signals_raise(), console.SweepProgress(len(sweeps.pending_jobs(plan, root, runner)), runner.workers()) as bar:
        return sweeps.run_sweep(plan, root, runner, lambda s, name: bar.run_finished(
            summary.final_line(s, name, metrics), s.get("status") != "completed"), RESUME_WITH[what])


def _render_sweep(summary: Any, plan: Any, records: list[dict[str, Any]]) -> None:
    goal = f"{plan.metric.name}, {plan.metric.goal.value}"
    columns, rows, failed = summary.run_table(records, plan)
    console.print_ranked_table(f"{plan.name}: runs ranked by {goal}", columns, rows, failed)
    if summary.has_seeds(plan):
        columns, rows, failed = summary.setting_table(records, plan)
        console.print_ranked_table("mean ± standard error across seeds", columns, rows, failed)

# ------------------------------------------------------------- knowing and comparing runs


@app.command("runs")
@user_errors
def runs_command(
    root: Path = typer.Argument(Path("outputs"), help="Output root to search for runs."),
    filters: Optional[list[str]] = typer.Option(
        None, "--filter", help="key=value on any config key, metric or field (repeatable), e.g. status=completed."),
    json_out: bool = typer.Option(False, "--json", help="Print every run's full record as JSON instead."),
) -> None:
    """List the runs under ROOT, newest first: name, start, status, epochs, key metrics, directory."""
    import json

    from bbbrun.runs import catalog

    records = catalog.list_runs(root, [catalog.Filter.parse(f) for f in filters or []])
    if json_out:
        typer.echo(json.dumps(records, indent=2))
        return
    columns, rows = catalog.table(records)
    console.print_table(f"{len(rows)} run{'s' if len(rows) != 1 else ''} under {root}", columns, rows)


@app.command()
@user_errors
def compare(
    targets: list[Path] = typer.Argument(..., help="Run directories and/or sweep directories.", show_default=False),
    out: Path = typer.Option(Path("comparison"), "--out", help="Directory for the comparison PNGs."),
) -> None:
    """Put runs side by side: the config keys that differ, the metrics, overlaid loss and calibration curves
    (compare_loss.png, compare_calibration.png) and for one input the band plots (compare_bands.png)."""
    from bbbrun.runs.compare import compare as compare_runs

    comparison = compare_runs(targets, out)
    if comparison.config_rows:
        console.print_table("config keys that differ", ["key", *comparison.labels], comparison.config_rows)
    else:
        console.info("the runs have the same config")
    console.print_table("metrics", ["metric", *comparison.labels], comparison.metric_rows)
    for path in comparison.figures:
        console.info(f"wrote {path}")


@app.command()
@user_errors
def report(
    target: Path = typer.Argument(..., help="A run, sweep or benchmark directory.", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default: TARGET/report.html)."),
) -> None:
    """Write one self-contained HTML page (images embedded, opens offline): config, provenance, metrics,
    plots, and for a sweep or benchmark its ranked table."""
    from bbbrun.report import write_report

    console.info(f"wrote {write_report(target, out)}")


def main() -> None:
    from bbbrun.entry import main as run

    run()

