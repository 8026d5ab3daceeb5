"""One training run, start to finish: the function both `train` and `sweep` call.

It owns the run directory's files (config.yaml, checkpoint.pt, history.csv,
metrics.json and the PNGs) and reports through callbacks; it never prints.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bbbrun import checkpoint as ckpt
from bbbrun.config import Config, dump_config
from bbbrun.data import Dataset, make_dataset
from bbbrun.errors import ConfigError
from bbbrun.files import write_text_atomic
from bbbrun.metrics import evaluate
from bbbrun.model import BayesianRegressor, standardizer_for
from bbbrun.predict import PredictiveSamples, PredictiveSummary, sample_predictive, summarize
from bbbrun.train import HISTORY_COLUMNS, Callbacks, TrainData, TrainState, fit, make_optimizer


@dataclass
class Session:
    """Everything live during a run: data on the device, model, optimiser, RNG, progress."""

    cfg: Config
    device: torch.device
    dataset: Dataset
    data: TrainData
    model: BayesianRegressor
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator
    state: TrainState = field(default_factory=TrainState)


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | interrupted | diverged
    epoch: int
    metrics: dict[str, Any]
    stop_signal: int | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} but CUDA is not available on this machine; use device=auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(name)


def start_session(cfg: Config, payload: dict[str, Any] | None = None) -> Session:
    """Build data, model and optimiser from the config (and a checkpoint when resuming)."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    dataset = make_dataset(cfg.data, cfg.seed)
    data = TrainData.from_dataset(dataset, device)
    std = standardizer_for(data.x_train, data.y_train, cfg.data.standardize)
    model = BayesianRegressor(cfg.model, std).to(device)
    optimizer = make_optimizer(model, cfg.optim)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    session = Session(cfg, device, dataset, data, model, optimizer, shuffle)
    if payload is not None:
        session.state = ckpt.restore_training(payload, model, optimizer, shuffle, device)
    return session


def save_session(session: Session, run_dir: Path) -> bool:
    """Checkpoint and history; refused (False) when a weight is no longer finite, keeping the last good one."""
    if not all(bool(torch.isfinite(p).all()) for p in session.model.parameters()):
        return False
    payload = ckpt.build_payload(session.model, session.optimizer, session.cfg, session.state, session.shuffle)
    ckpt.save_checkpoint(run_dir / "checkpoint.pt", payload)
    write_history(run_dir / "history.csv", session.state.history)
    return True


def run_training(session: Session, run_dir: Path, callbacks: Callbacks | None = None) -> RunResult:
    """Train to the configured epochs, saving as it goes, then write metrics and plots."""
    calls = callbacks or Callbacks()
    write_text_atomic(run_dir / "config.yaml", dump_config(session.cfg))
    user_checkpoint = calls.on_checkpoint
    # The epoch of the checkpoint on disk (a resumed run starts with one).
    saved: list[int | None] = [session.state.epoch if (run_dir / "checkpoint.pt").exists() else None]

    def on_checkpoint(state: TrainState) -> None:
        if save_session(session, run_dir):
            saved[0] = state.epoch
        user_checkpoint(state)

    calls = dataclasses.replace(calls, on_checkpoint=on_checkpoint)
    state = fit(session.model, session.optimizer, session.data, session.cfg, session.state, session.shuffle, calls)
    if state.status == "diverged":
        # The parameters are no longer finite: keep the last checkpoint as it is.
        metrics = {"status": "failed", "error": f"loss became NaN or infinite at epoch {state.diverged_epoch}",
                   "epochs_completed": state.epoch, "checkpoint_epoch": saved[0], "device": str(session.device)}
        write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
        write_history(run_dir / "history.csv", state.history)
        return RunResult(run_dir, "diverged", state.epoch, metrics)
    save_session(session, run_dir)
    if state.status == "interrupted":
        return RunResult(run_dir, "interrupted", state.epoch, {}, state.stop_signal)
    calls.on_stage(f"evaluating the predictive ({session.cfg.predict.num_samples} samples) and drawing plots")
    metrics = write_results(session, run_dir)
    return RunResult(run_dir, "completed", state.epoch, metrics)


def write_results(session: Session, run_dir: Path) -> dict[str, Any]:
    """metrics.json and every PNG of a finished run."""
    from bbbrun import plots

    cfg, ds = session.cfg, session.dataset
    train = predictive_at(session.model, ds.x_train, cfg, cfg.predict.num_samples)
    val = predictive_at(session.model, ds.x_val, cfg, cfg.predict.num_samples)
    metrics = run_metrics(session, val, train)
    write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    write_band_plots(run_dir, ds, cfg, train, val)
    plots.save_figure(plots.plot_loss(session.state.history), run_dir / "loss.png")
    plots.save_figure(plots.plot_calibration(metrics["val_calibration"]), run_dir / "calibration.png")
    return metrics


def predictive_at(
    model: BayesianRegressor, x: np.ndarray, cfg: Config, num_samples: int
) -> tuple[PredictiveSamples, PredictiveSummary]:
    """Samples and summary at x (N, 1); the seed is the config's, so the same inputs give the same draws."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(model.mu.device)
    samples = sample_predictive(model, xt, num_samples, cfg.seed, cfg.predict.chunk_elements)
    return samples, summarize(samples, cfg.predict.interval)


def run_metrics(
    session: Session, val: tuple[PredictiveSamples, PredictiveSummary],
    train: tuple[PredictiveSamples, PredictiveSummary],
) -> dict[str, Any]:
    ds, device = session.dataset, session.device
    y_val = torch.from_numpy(ds.y_val.ravel()).to(device)
    f_val = torch.from_numpy(ds.f_val.ravel()).to(device)
    y_train = torch.from_numpy(ds.y_train.ravel()).to(device)
    val_m = evaluate(*val, y_val, f_val)
    metrics: dict[str, Any] = {"status": "completed"}
    metrics.update({f"val_{k}": v for k, v in val_m.items()})
    metrics["train_rmse"] = float((train[1].mean - y_train).square().mean().sqrt())
    noise = session.model.noise_std()
    metrics.update({
        "noise_std": noise, "train_seconds": round(session.state.train_seconds, 3),
        "epochs_completed": session.state.epoch, "device": str(device),
        "num_samples": session.cfg.predict.num_samples, "num_weights": session.model.num_weights,
    })
    return metrics


def band_arrays(summary: PredictiveSummary) -> dict[str, np.ndarray]:
    names = ("mean", "lower", "upper", "epistemic_lower", "epistemic_upper")
    return {n: getattr(summary, n).detach().cpu().numpy() for n in names}


def write_band_plots(
    out_dir: Path, ds: Dataset, cfg: Config,
    train: tuple[PredictiveSamples, PredictiveSummary], val: tuple[PredictiveSamples, PredictiveSummary],
) -> None:
    from bbbrun import plots

    for name, title, x, y, f, pred in (
        ("train.png", "Train", ds.x_train, ds.y_train, ds.f_train, train),
        ("val.png", "Validation", ds.x_val, ds.y_val, ds.f_val, val),
    ):
        fig = plots.plot_band(x.ravel(), band_arrays(pred[1]), title, cfg.predict.interval,
                              points=(x.ravel(), y.ravel()), f_true=f.ravel())
        plots.save_figure(fig, out_dir / name)


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())
