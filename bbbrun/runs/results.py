"""What a finished run writes besides its checkpoint: metrics.json and the figures.

Test rows, when the data has them, are scored here and only here: they never
reach the training loop, its validation pass or the figures of the fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bbbrun.bnn.likelihoods import RegressionSamples
from bbbrun.data import ground_truth, plot_range
from bbbrun.evaluate.predictive import predictive_at
from bbbrun.evaluate.regression import PredictiveSummary, evaluate, rmse, summarize
from bbbrun.runs.health import fit_warnings
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import Session, config_warnings

GRID_POINTS = 1000


def write_results(session: Session, run_dir: RunDir) -> dict[str, Any]:
    """metrics.json and every PNG of a finished run."""
    if session.model.likelihood.task == "classification":
        from bbbrun.runs.class_results import write_class_results

        return write_class_results(session, run_dir)
    cfg, ds = session.cfg, session.dataset
    samples = {split: predictive_at(session.model, x, cfg.predict, cfg.seed) for split, (x, _) in ds.splits().items()}
    summaries = {name: summarize(s, cfg.predict.interval) for name, s in samples.items()}
    metrics = run_metrics(session, samples, summaries)
    metrics["warnings"] = [*ds.warnings, *config_warnings(cfg),
                           *fit_warnings(session, samples["val"], summaries, metrics)]
    write_figures(session, run_dir, summaries, metrics)
    if ds.input_dim > 1:
        write_split_figures(session, run_dir, samples, summaries)
    run_dir.write_metrics(metrics)  # last: "completed" only once every figure exists
    return metrics


def run_metrics(session: Session, samples: dict[str, RegressionSamples],
                summaries: dict[str, PredictiveSummary]) -> dict[str, Any]:
    """metrics.json's content: each held-out split's metrics, the training RMSE, the fitted likelihood, facts."""
    cfg, ds, device = session.cfg, session.dataset, session.device
    splits, truth = ds.splits(), {"val": ds.f_val}
    metrics: dict[str, Any] = {"status": "completed"}
    for split in ("val", "test"):
        if split in samples:
            f_true = truth.get(split)
            found = evaluate(samples[split], summaries[split], flat(splits[split][1], device),
                             None if f_true is None else flat(f_true, device))
            metrics.update({f"{split}_{k}": v for k, v in found.items()})
    metrics["train_rmse"] = rmse(summaries["train"].mean, flat(ds.y_train, device))
    metrics.update(session.model.likelihood.final_values())
    metrics.update({
        "train_seconds": round(session.state.train_seconds, 3), "epochs_completed": session.state.epoch,
        "device": str(device), "num_samples": cfg.predict.num_samples, "num_weights": session.model.num_weights,
    })
    return metrics


def write_figures(session: Session, run_dir: RunDir, summaries: dict[str, PredictiveSummary],
                  metrics: dict[str, Any]) -> None:
    """Bands over x for one input (over the source's own range when it has one); the loss and calibration."""
    from bbbrun import plots
    from bbbrun.runs.figures import write_band_plots, write_range_plots

    cfg, ds = session.cfg, session.dataset
    paths = {name: run_dir.figure(name) for name in ("train", "val")}
    x_range = plot_range(cfg.data) if ds.input_dim == 1 else None
    if x_range is not None:
        grid = np.linspace(*x_range, GRID_POINTS, dtype=np.float32).reshape(-1, 1)
        summary = summarize(predictive_at(session.model, grid, cfg.predict, cfg.seed), cfg.predict.interval)
        write_range_plots(paths, ds, cfg, grid, summary, ground_truth(cfg.data, grid))
    elif ds.input_dim == 1:
        write_band_plots(paths, ds, cfg, {n: summaries[n] for n in paths})
    plots.save_figure(plots.plot_loss(session.state.history), run_dir.figure("loss"))
    plots.save_figure(plots.plot_calibration(metrics["val_calibration"]), run_dir.figure("calibration"))


def write_split_figures(session: Session, run_dir: RunDir, samples: dict[str, RegressionSamples],
                        summaries: dict[str, PredictiveSummary]) -> None:
    """For more than one input: predicted vs observed, errors vs std, PIT, calibration of val and test rows."""
    from bbbrun.runs.figures import write_split_figures as write_split

    splits = session.dataset.splits()
    for split in ("val", "test"):
        if split in samples:
            write_split(run_dir, split, splits[split][1], samples[split], summaries[split])


def flat(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A (N, 1) array as a flat (N,) tensor on the device."""
    return torch.from_numpy(a.ravel()).to(device)
