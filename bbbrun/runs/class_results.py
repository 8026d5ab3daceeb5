"""What a finished classifier writes: metrics.json (each split's classification metrics) and its figures.

As for regression, test rows are scored here and only here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import Config
from bbbrun.data import Dataset
from bbbrun.evaluate.classification import ClassSummary, accuracy, class_metrics, summarize_classes
from bbbrun.evaluate.predictive import probabilities_at
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import Session

CLASS_FIGURES = ("reliability", "rejection", "confusion")
MAP_POINTS = 120  # per axis of the decision map's grid
MAP_MARGIN = 0.15  # the map extends this share of the data's range beyond it on every side
MAP_MAX_SAMPLES = 256  # the map's predictive uses at most this many weight samples (stated in its title)


def class_summaries(model: BayesianNetwork, ds: Dataset, cfg: Config) -> dict[str, ClassSummary]:
    return {split: summarize_classes(probabilities_at(model, x, cfg.predict, cfg.seed))
            for split, (x, _) in ds.splits().items()}


def codes(y: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, 1) float class codes as a flat long tensor."""
    return torch.from_numpy(y.ravel()).to(device).long()


def class_run_metrics(session: Session, summaries: dict[str, ClassSummary]) -> dict[str, Any]:
    cfg, ds, device = session.cfg, session.dataset, session.device
    splits = ds.splits()
    metrics: dict[str, Any] = {"status": "completed"}
    for split in ("val", "test"):
        if split in summaries:
            found = class_metrics(summaries[split], codes(splits[split][1], summaries[split].probs.device))
            metrics.update({f"{split}_{k}": v for k, v in found.items()})
    train = summaries["train"]
    metrics["train_accuracy"] = accuracy(train.probs, codes(ds.y_train, train.probs.device))
    metrics["classes"] = list(ds.classes)
    metrics.update(session.model.likelihood.final_values())
    metrics.update({
        "train_seconds": round(session.state.train_seconds, 3), "epochs_completed": session.state.epoch,
        "device": str(device), "num_samples": cfg.predict.num_samples, "num_weights": session.model.num_weights,
    })
    return metrics


def majority_warning(ds: Dataset, metrics: dict[str, Any]) -> list[str]:
    """A validation accuracy no better than always predicting the training rows' most common class."""
    counts = np.bincount(ds.y_train.ravel().astype(np.int64), minlength=len(ds.classes))
    majority = float(np.mean(ds.y_val.ravel() == counts.argmax()))
    if metrics["val_accuracy"] > majority:
        return []
    return [f"validation accuracy {metrics['val_accuracy']:.4f} is no better than always predicting the most "
            f"common class ({ds.classes[int(counts.argmax())]!r}, {majority:.4f}); likely causes: too few epochs, "
            "optim.lr too low, or a prior (model.prior_std) so tight that the KL term holds the weights at zero"]


def write_class_results(session: Session, run_dir: RunDir) -> dict[str, Any]:
    """metrics.json and every PNG of a finished classifier."""
    from bbbrun import plots

    cfg, ds = session.cfg, session.dataset
    summaries = class_summaries(session.model, ds, cfg)
    metrics = class_run_metrics(session, summaries)
    metrics["warnings"] = [*ds.warnings, *majority_warning(ds, metrics)]
    plots.save_figure(plots.plot_loss(session.state.history), run_dir.figure("loss"))
    for split in ("val", "test"):
        if f"{split}_accuracy" in metrics:
            write_split_class_figures(run_dir, split, metrics, ds.classes)
    if ds.input_dim == 2:
        write_decision_map(session.model, ds, cfg, run_dir)
    run_dir.write_metrics(metrics)  # last: "completed" only once every figure exists
    return metrics


SPLIT_TITLES = {"train": "Train", "val": "Validation", "test": "Test"}


def write_split_class_figures(run_dir: RunDir, split: str, metrics: dict[str, Any], classes: tuple[str, ...]) -> None:
    from bbbrun import class_plots, plots

    title = SPLIT_TITLES.get(split, split)
    figures = {
        "reliability": class_plots.plot_reliability(metrics[f"{split}_reliability"], f"Reliability ({title.lower()})",
                                                    metrics[f"{split}_ece"]),
        "rejection": class_plots.plot_rejection(metrics[f"{split}_rejection"], f"{title}: accuracy when rejecting"),
        "confusion": class_plots.plot_confusion(metrics[f"{split}_confusion"], classes, f"{title}: confusion"),
    }
    for kind, fig in figures.items():
        plots.save_figure(fig, run_dir.split_figure(split, kind))


def map_grid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two axes of a MAP_POINTS^2 grid over the points' range widened by MAP_MARGIN."""
    lo, hi = x.min(0), x.max(0)
    pad = MAP_MARGIN * np.maximum(hi - lo, 1e-6)
    return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], MAP_POINTS),
            np.linspace(lo[1] - pad[1], hi[1] + pad[1], MAP_POINTS))


@dataclass
class DecisionMap:
    """The predictive over a grid of the two inputs: axes (W,) and (H,), probs (H, W, C), mutual_information (H, W)."""

    x1: np.ndarray
    x2: np.ndarray
    probs: np.ndarray
    mutual_information: np.ndarray
    num_samples: int


def decision_map(model: BayesianNetwork, ds: Dataset, cfg: Config) -> DecisionMap:
    """The map over the training and validation points' range widened by MAP_MARGIN."""
    gx, gy = map_grid(np.concatenate([ds.x_train, ds.x_val]))
    xx, yy = np.meshgrid(gx, gy)  # (H, W)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    num_samples = min(cfg.predict.num_samples, MAP_MAX_SAMPLES)
    predict = dataclasses.replace(cfg.predict, num_samples=num_samples)
    summary = summarize_classes(probabilities_at(model, grid, predict, cfg.seed))
    probs = summary.probs.cpu().numpy().reshape(*xx.shape, -1)
    return DecisionMap(gx, gy, probs, summary.mutual_information.cpu().numpy().reshape(xx.shape), num_samples)


def write_decision_map(model: BayesianNetwork, ds: Dataset, cfg: Config, run_dir: RunDir) -> None:
    """decision.png: the predicted probability and mutual information over the inputs' plane, training rows on top."""
    from bbbrun import class_plots, plots

    found = decision_map(model, ds, cfg)
    fig = class_plots.plot_decision_map((found.x1, found.x2), found.probs, found.mutual_information,
                                        (ds.x_train, ds.y_train.ravel().astype(np.int64)), ds.classes,
                                        f"Decision map ({found.num_samples} weight samples; training points)")
    plots.save_figure(fig, run_dir.figure("decision"))
