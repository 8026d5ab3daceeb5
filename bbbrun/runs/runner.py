"""One training run, start to finish: the function both `train` and `sweep` call.

It writes the run directory's files through `layout.RunDir` and reports
through callbacks; it never prints. What a run's end means for the caller
(an interrupt, a divergence) becomes an error in `raise_for_status`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bbbrun.config import dump_config
from bbbrun.errors import BbbrunError, Interrupted, TrainingDiverged
from bbbrun.fit import checkpoint as ckpt
from bbbrun.fit.loop import Callbacks, TrainState, fit, history_columns
from bbbrun.runs.layout import RunDir
from bbbrun.runs.provenance import Invocation, Provenance, status_of_exception
from bbbrun.runs.results import write_results
from bbbrun.runs.session import Session
from bbbrun.tracking import Tracker, close_tracker, open_tracker, with_tracking


@dataclass
class RunResult:
    run_dir: RunDir
    status: str  # completed | interrupted | diverged
    epoch: int
    metrics: dict[str, Any]
    stop_signal: int | None = None
    headline: tuple[str, ...] = ()  # the metrics worth a line on the terminal


def save_session(session: Session, run_dir: RunDir) -> bool:
    """Checkpoint and history; refused (False) when a weight is no longer finite, keeping the last good one."""
    if not all(bool(torch.isfinite(p).all()) for p in session.model.parameters()):
        return False
    ckpt.save_checkpoint(run_dir.checkpoint, ckpt.build_payload(session.trainee, session.dataset.inputs))
    write_history(session, run_dir)
    return True


def write_history(session: Session, run_dir: RunDir) -> None:
    run_dir.write_history(session.state.history, history_columns(session.model.likelihood))


# How each way a run ends reads in run.json.
PROVENANCE_STATUS = {"completed": "completed", "interrupted": "interrupted", "diverged": "failed"}


def run_training(session: Session, run_dir: RunDir, callbacks: Callbacks | None = None,
                 invocation: Invocation | None = None, tracking_parent: str | None = None) -> RunResult:
    """Train to the configured epochs, saving as it goes, then write metrics and plots.

    run.json records where the run came from (`invocation`, by default this
    process's command line) as it starts, and how it ended once it has. With
    `tracking` set in the config, the run is also logged there (as a child of
    `tracking_parent`, a sweep's parent run, when given).
    """
    record = RunRecord(session, run_dir, invocation, tracking_parent)
    try:
        calls = record.callbacks(callbacks or Callbacks())
        saver = begin_run(session, run_dir)
        state = fit(session.trainee, dataclasses.replace(calls, on_checkpoint=saver.wrap(calls.on_checkpoint)))
        result = finish_run(session, run_dir, state, saver, calls)
    except BaseException as err:
        record.fail(err)
        raise
    return record.done(result)


class RunRecord:
    """A run's run.json and its tracker (when the config asks for one), opened as the run starts."""

    def __init__(self, session: Session, run_dir: RunDir, invocation: Invocation | None = None,
                 tracking_parent: str | None = None) -> None:
        self.session, self.run_dir = session, run_dir
        self.provenance = Provenance(run_dir, invocation or Invocation.current(), session.device)
        self.provenance.start()
        self.tracker: Tracker | None = None
        try:
            self.tracker = open_tracker(session.cfg, f"{run_dir.path.parent.name}/{run_dir.path.name}",
                                        tracking_parent)
        except BaseException as err:
            self.fail(err)
            raise

    def callbacks(self, calls: Callbacks) -> Callbacks:
        return with_tracking(calls, self.tracker)

    def fail(self, err: BaseException) -> None:
        """The run ended by an exception: say so in run.json and close the tracker."""
        status = status_of_exception(err)
        epoch = self.session.state.epoch
        self.provenance.finish(status, error=f"{type(err).__name__}: {err}", epochs_completed=epoch)
        with contextlib.suppress(BbbrunError):  # the run's own error is the one to report
            close_tracker(self.tracker, status, None, epoch, self.run_dir.path)

    def done(self, result: RunResult) -> RunResult:
        status = PROVENANCE_STATUS[result.status]
        failed = {"error": result.metrics["error"]} if "error" in result.metrics else {}
        self.provenance.finish(status, epochs_completed=result.epoch, **failed)
        close_tracker(self.tracker, status, result.metrics, result.epoch, self.run_dir.path)
        return result


@dataclass
class Saver:
    """Checkpoints a run as it trains, remembering the epoch of the one on disk."""

    session: Session
    run_dir: RunDir
    saved_epoch: int | None

    def wrap(self, user: Callable[[TrainState], None]) -> Callable[[TrainState], None]:
        def on_checkpoint(state: TrainState) -> None:
            if save_session(self.session, self.run_dir):
                self.saved_epoch = state.epoch
            user(state)

        return on_checkpoint


def begin_run(session: Session, run_dir: RunDir) -> Saver:
    """The run directory's config and splits, before training; a saver for its checkpoints."""
    run_dir.write_config(dump_config(session.cfg))
    if session.dataset.rows:
        run_dir.write_splits(session.dataset.rows)
    # A resumed run starts with the checkpoint it resumes from.
    return Saver(session, run_dir, session.state.epoch if run_dir.checkpoint.exists() else None)


def finish_run(session: Session, run_dir: RunDir, state: TrainState, saver: Saver, calls: Callbacks) -> RunResult:
    """After training ends, however it ended: the last checkpoint, then metrics and plots or the failure."""
    if state.status == "diverged":
        # The parameters are no longer finite: keep the last checkpoint as it is.
        metrics = run_dir.write_failure(
            f"loss became NaN or infinite at epoch {state.diverged_epoch}", epochs_completed=state.epoch,
            checkpoint_epoch=saver.saved_epoch, device=str(session.device))
        write_history(session, run_dir)
        return RunResult(run_dir, "diverged", state.epoch, metrics)
    save_session(session, run_dir)
    if state.status == "interrupted":
        # Stopped by its user, not failed: the checkpoint is whole and a resume goes on from it.
        metrics = {"status": "interrupted", "epochs_completed": state.epoch, "device": str(session.device)}
        run_dir.write_metrics(metrics)
        return RunResult(run_dir, "interrupted", state.epoch, metrics, state.stop_signal)
    # Until the results are whole the run reads as stopped while writing them, so a process
    # terminated in this stage (a sweep's worker) leaves a run that a resume finishes.
    results_pending = {"status": "interrupted", "stage": "results", "epochs_completed": state.epoch,
                       "device": str(session.device)}
    run_dir.write_metrics(results_pending)
    try:
        calls.on_stage(f"evaluating the predictive ({session.cfg.predict.num_samples} samples) and drawing plots")
        metrics = write_results(session, run_dir)
    except (KeyboardInterrupt, Exception) as stop:
        # A signal raised inside a library (matplotlib, numpy's lazy imports) may surface as another
        # exception: any failure after a stop request is the stop.
        signum = stop.signum if isinstance(stop, Interrupted) else calls.should_stop()
        if signum is None and not isinstance(stop, KeyboardInterrupt):
            raise
        # Training is done and checkpointed; only the results are missing, and a resume writes them.
        signum = signum or signal.SIGINT
        return RunResult(run_dir, "interrupted", state.epoch, results_pending, signum)
    own = session.model.likelihood.headline_metrics
    # Held-out test rows, when the data has them, are what a user reports: show them beside validation.
    held_out = tuple(f"test_{m[4:]}" for m in own if m.startswith("val_") and f"test_{m[4:]}" in metrics)
    headline = (*own, *held_out, "train_seconds")
    return RunResult(run_dir, "completed", state.epoch, metrics, headline=headline)


def raise_for_status(result: RunResult, session: Session) -> None:
    """An interrupted or diverged run as the error its caller reports; a completed run passes."""
    run_dir, cfg = result.run_dir, session.cfg
    if result.status == "interrupted":
        signum = result.stop_signal or signal.SIGINT
        if result.metrics.get("stage") == "results":
            raise Interrupted(
                f"stopped by {signal.Signals(signum).name} while writing the results; training is complete "
                f"(epoch {result.epoch}) and checkpointed; finish with: bbbrun train --resume {run_dir.path}", signum)
        raise Interrupted(
            f"stopped by {signal.Signals(signum).name} at epoch {result.epoch}; checkpoint saved to "
            f"{run_dir.checkpoint}; continue with: bbbrun train --resume {run_dir.path}", signum,
        )
    if result.status == "diverged":
        epoch = result.metrics.get("checkpoint_epoch")
        kept = (f"the last finite checkpoint (epoch {epoch}) is kept at {run_dir.checkpoint}"
                if epoch is not None else f"no checkpoint was written before that; see {run_dir.path}")
        raise TrainingDiverged(
            f"{result.metrics['error']}; likely causes: optim.lr too high ({cfg.optim.lr}) or "
            f"model.init_rho_mean too large ({cfg.model.init_rho_mean}); {kept}; the run is marked failed"
        )
