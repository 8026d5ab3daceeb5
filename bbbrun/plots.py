"""Figures: the only module that imports matplotlib. Each function returns a Figure."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bbbrun.files import write_atomic

EPISTEMIC_COLOR = "tab:orange"
TOTAL_COLOR = "tab:blue"
MAX_SHOWN_POINTS = 4000


def plot_band(
    x: np.ndarray,
    band: dict[str, np.ndarray],
    title: str,
    interval: tuple[float, float],
    points: tuple[np.ndarray, np.ndarray] | None = None,
    train_range: tuple[float, float] | None = None,
    f_true: np.ndarray | None = None,
) -> Figure:
    """Predictive mean with the total band (noise included) and the epistemic band, over sorted x.

    `band` holds arrays mean, lower, upper, epistemic_lower, epistemic_upper.
    """
    order = np.argsort(x)
    xs = x[order]
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    if points is not None:
        # Every k-th point at most MAX_SHOWN_POINTS: denser clouds only hide the bands.
        step = max(1, len(points[0]) // MAX_SHOWN_POINTS)
        shown = "data" if step == 1 else f"data (every {step}th point)"
        ax.scatter(points[0][::step], points[1][::step], s=2, color="0.55", alpha=0.6, label=shown,
                   rasterized=True)
    pct = f"{round(interval[0] * 100)}-{round(interval[1] * 100)}%"
    ax.fill_between(xs, band["lower"][order], band["upper"][order], color=TOTAL_COLOR, alpha=0.3,
                    label=f"{pct} predictive (with noise)")
    ax.fill_between(xs, band["epistemic_lower"][order], band["epistemic_upper"][order],
                    color=EPISTEMIC_COLOR, alpha=0.5, label=f"{pct} epistemic (weights only)")
    ax.plot(xs, band["mean"][order], color="black", lw=1.2, label="predictive mean")
    if f_true is not None:
        ax.plot(xs, f_true[order], color="tab:green", lw=1, ls="--", label="true function")
    if train_range is not None:
        ax.axvspan(*train_range, color="tab:green", alpha=0.06, label="training range")
        for edge in train_range:
            ax.axvline(edge, color="tab:green", lw=0.8, ls=":")
    ax.set(title=title, xlabel="x", ylabel="y")
    ax.legend(loc="best", fontsize="small")
    return fig


def plot_loss(history: Sequence[dict[str, float]]) -> Figure:
    """Training and validation loss per point, and the data and KL terms, against epoch."""
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    left.plot(epochs, [row["loss"] for row in history], marker="o", label="train loss")
    left.plot(epochs, [row["val_loss"] for row in history], marker="o", label="validation loss")
    left.set(title="Negative ELBO per point", xlabel="epoch", ylabel="nats per point")
    right.plot(epochs, [row["nll"] for row in history], marker="o", label="data term (NLL)")
    right.plot(epochs, [row["kl"] for row in history], marker="o", label="KL term")
    right.set(title="Loss terms per point", xlabel="epoch", ylabel="nats per point")
    for ax in (left, right):
        if all(v > 0 for row in history for v in (row["loss"], row["val_loss"], row["kl"])):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    return fig


def plot_calibration(curve: Sequence[dict[str, float]], title: str = "Calibration (validation)") -> Figure:
    nominal = [p["nominal"] for p in curve]
    observed = [p["observed"] for p in curve]
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", label="perfect calibration")
    ax.plot(nominal, observed, marker="o", label="observed")
    ax.set(title=title, xlabel="nominal coverage of central interval", ylabel="observed coverage",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """Render to memory, then write atomically, so a half-drawn PNG never appears."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()))


def plot_comparison(points: Sequence[dict[str, object]], keys: Sequence[str], metric: str, title: str) -> Figure:
    """A sweep's metric against each swept key: one point per run (per seed), a line through the means.

    Each point holds the key values as strings and its metric as "value"
    (None for a failed run, which is left out). Values sit at evenly spaced
    positions in the order they first appear, so null or log-spaced values read alike.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 4), layout="constrained", squeeze=False)
    done = [p for p in points if isinstance(p["value"], (int, float))]
    for ax, key in zip(axes[0], keys, strict=True):
        labels = list(dict.fromkeys(str(p[key]) for p in points))
        by_label: dict[str, list[float]] = {label: [] for label in labels}
        for p in done:
            by_label[str(p[key])].append(float(p["value"]))  # type: ignore[arg-type]
        for i, label in enumerate(labels):
            ax.scatter([i] * len(by_label[label]), by_label[label], s=18, alpha=0.6, color=TOTAL_COLOR,
                       label="runs" if i == 0 else None)
        means = [(i, float(np.mean(by_label[label]))) for i, label in enumerate(labels) if by_label[label]]
        if means:
            ax.plot([i for i, _ in means], [m for _, m in means], color="black", marker="o", lw=1.2, label="mean")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
        ax.set(xlabel=key, ylabel=metric)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig
