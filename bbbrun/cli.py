"""The `bbbrun` command line: each command parses, calls the library, renders, writes.

torch and matplotlib are imported inside the commands, so `bbbrun --help`
starts fast.
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
from bbbrun.errors import BbbrunError, CheckpointError, ConfigError, Interrupted, SweepFailed, TrainingDiverged
from bbbrun.sweep_grid import ExecutorKind

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Train, inspect and compare Bayes-by-Backprop networks from YAML configs.",
)


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


@contextlib.contextmanager
def stop_signals() -> Iterator[Callable[[], int | None]]:
    """Turn SIGINT/SIGTERM into a flag the training loop polls once per epoch.

    A second signal means "quit now": it stops at once, without the final
    checkpoint (the last one written, always whole, is kept).
    """
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        if len(received) > 1:
            name = signal.Signals(signum).name
            raise Interrupted(f"stopped at once by a second {name}; the last checkpoint written is kept", signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
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
    """Train a Bayesian network from CONFIG, writing outputs/<name>/<timestamp>/."""
    from bbbrun import runner
    from bbbrun.config import load_config
    from bbbrun.files import new_run_dir

    if resume is not None:
        session, run_dir = _resume_session(resume, ([str(config)] if config else []) + (overrides or []))
    else:
        if config is None:
            raise ConfigError("give a config file (bbbrun train CONFIG [key=value ...]) or --resume RUN_DIR")
        cfg = load_config(config, overrides)
        runner.resolve_device(cfg.device)  # fail before a run directory exists
        session = runner.start_session(cfg)
        run_dir = new_run_dir(out, cfg.name)
    _train_in(session, run_dir)


def _resume_session(target: Path, overrides: list[str]) -> tuple[Any, Path]:
    from bbbrun import checkpoint as ckpt
    from bbbrun import runner
    from bbbrun.config import config_from_dict, config_to_dict, parse_override, set_dotted

    path = ckpt.resolve_checkpoint_path(target)
    payload = ckpt.load_checkpoint(path)
    raw = config_to_dict(ckpt.config_of(payload, path))
    for item in overrides:
        key, value = parse_override(item)
        if not (key.startswith("train.") or key == "device"):
            raise ConfigError(f"on --resume only train.* and device may change, not {key!r}")
        set_dotted(raw, key, value)
    cfg = config_from_dict(raw)
    if payload["epoch"] >= cfg.train.epochs and payload["status"] == "completed":
        raise ConfigError(f"{path} already completed {payload['epoch']} epochs; raise train.epochs to go on")
    try:
        return runner.start_session(cfg, payload), path.parent
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None


def _train_in(session: Any, run_dir: Path) -> None:
    from bbbrun import runner
    from bbbrun.train import Callbacks

    cfg = session.cfg
    console.info(f"run directory: {run_dir}  (device {session.device}, {session.model.num_weights} weights x 2)")
    with stop_signals() as should_stop, console.TrainProgress(cfg.train.epochs, session.state.epoch) as bar:
        calls = Callbacks(on_log=bar.on_log, on_progress=bar.on_progress, should_stop=should_stop,
                          on_stage=bar.on_stage)
        result = runner.run_training(session, run_dir, calls)
    if result.status == "interrupted":
        signum = result.stop_signal or signal.SIGINT
        raise Interrupted(
            f"stopped by {signal.Signals(signum).name} at epoch {result.epoch}; checkpoint saved to "
            f"{run_dir / 'checkpoint.pt'}; continue with: bbbrun train --resume {run_dir}", signum,
        )
    if result.status == "diverged":
        epoch = result.metrics.get("checkpoint_epoch")
        kept = (f"the last finite checkpoint (epoch {epoch}) is kept at {run_dir / 'checkpoint.pt'}"
                if epoch is not None else f"no checkpoint was written before that; see {run_dir}")
        raise TrainingDiverged(
            f"{result.metrics['error']}; likely causes: optim.lr too high ({cfg.optim.lr}) or "
            f"model.init_rho_mean too large ({cfg.model.init_rho_mean}); {kept}; the run is marked failed"
        )
    console.print_metrics(result.metrics)
    console.info(f"run directory: {run_dir}")


@app.command()
@user_errors
def plot(
    checkpoint: Path = typer.Argument(..., help="checkpoint.pt or a run directory.", show_default=False),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Predictive samples [config's]."),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for the PNGs [the checkpoint's]."),
    x_min: Optional[float] = typer.Option(None, "--x-min", help="Draw the predictive from here."),
    x_max: Optional[float] = typer.Option(None, "--x-max", help="... to here (beyond the data)."),
) -> None:
    """Redraw train.png and val.png from a checkpoint alone."""
    from bbbrun import inference

    written = inference.plot_checkpoint(checkpoint, samples, out, x_min, x_max)
    for path in written:
        console.info(f"wrote {path}")


@app.command()
@user_errors
def predict(
    checkpoint: Path = typer.Argument(..., help="checkpoint.pt or a run directory.", show_default=False),
    input: Optional[Path] = typer.Option(None, "--input", help="CSV file with a column x."),
    x_min: Optional[float] = typer.Option(None, "--x-min", help="Grid start (instead of --input)."),
    x_max: Optional[float] = typer.Option(None, "--x-max", help="Grid end."),
    num_points: int = typer.Option(100, "--num-points", min=1, help="Grid size."),
    samples: Optional[int] = typer.Option(None, "--samples", min=1, help="Predictive samples [config's]."),
    level: float = typer.Option(0.9, "--level", help="Central interval level, in (0, 1)."),
    output: Optional[Path] = typer.Option(None, "--output", help="CSV to write [stdout]."),
) -> None:
    """Predict at new inputs: x,mean,std,epistemic_std,lower,upper (noise included)."""
    from bbbrun import inference

    text = inference.predict_csv(checkpoint, input, x_min, x_max, num_points, samples, level)
    if output is None:
        typer.echo(text, nl=False)
    else:
        inference.write_csv(output, text)
        console.info(f"wrote {output}")


@app.command()
@user_errors
def sweep(
    sources: Optional[list[str]] = typer.Argument(
        None, help="Config files (a grid axis) or one sweep file, then key=value or key=a,b / key='range(0,4)'.",
        show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the expanded runs, one a line, and exit."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Parallel runs [one per core]."),
    executor: ExecutorKind = typer.Option(ExecutorKind.LOCAL, "--executor", help="Where runs execute."),
    out: Path = typer.Option(Path("outputs"), "--out", help="Root directory; the sweep goes in OUT/sweeps/."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Sweep directory to finish (reruns what is missing)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler, tcp://HOST:PORT."),
    partition: Optional[str] = typer.Option(None, "--partition", help="Slurm partition [sweep file's slurm:]."),
    time_min: Optional[int] = typer.Option(None, "--time", min=1, help="Slurm time limit per run, minutes."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=0, help="Slurm GPUs per run."),
) -> None:
    """Run a grid of trainings, then rank them: OUT/sweeps/<name>/<timestamp>/ with summary.csv and comparison.png."""
    from bbbrun import sweep as sweeps
    from bbbrun import sweep_summary as summary

    options = sweeps.ExecOptions(executor, workers, scheduler)
    if resume is not None:
        if sources:
            raise ConfigError("--resume takes the sweep directory alone; its sweep.yaml fixes every run")
        root, plan = resume, sweeps.load_root(resume)
    else:
        plan, root = sweeps.plan_from_args(sources or []), None
    plan = sweeps.with_slurm_flags(plan, partition, time_min, gpus)
    if dry_run:
        for line in sweeps.dry_run_lines(plan):
            console.info(line)
        return
    sweeps.check_executor(options)
    root = root or sweeps.create_root(plan, out)
    console.info(f"sweep directory: {root}  ({len(plan.runs)} runs, executor {executor.value})")
    try:
        with console.SweepProgress(len(sweeps.pending_jobs(plan, root, options)), sweeps.worker_count(options)) as bar:
            records = sweeps.run_sweep(
                plan, root, options, lambda s, name: bar.run_finished(
                    summary.final_line(s, name, plan.metric.name), s.get("status") != "completed"))
    except KeyboardInterrupt:
        raise Interrupted(f"sweep stopped; what finished is in {root / 'summary.csv'}; "
                          f"continue with: bbbrun sweep --resume {root}", signal.SIGINT) from None
    _render_sweep(summary, plan, records)
    failed = sweeps.failures_message(records, root)
    if failed:
        raise SweepFailed(failed)
    console.info(f"sweep directory: {root}")


def _render_sweep(summary: Any, plan: Any, records: list[dict[str, Any]]) -> None:
    goal = f"{plan.metric.name}, {plan.metric.goal.value}"
    columns, rows, failed = summary.run_table(records, plan)
    console.print_ranked_table(f"{plan.name}: runs ranked by {goal}", columns, rows, failed)
    if summary.has_seeds(plan):
        columns, rows, failed = summary.setting_table(records, plan)
        console.print_ranked_table("mean ± std across seeds", columns, rows, failed)


def main() -> None:
    app()
