"""Classification figures: reliability, rejection, confusion and the 2-D decision map. Each returns a Figure.

Like `plots`, only figures live here (matplotlib is imported by these two modules alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from bbbrun.plots import MAX_SHOWN_POINTS, TOTAL_COLOR, plt

CLASS_COLORS = plt.get_cmap("tab10")


def plot_reliability(bins: Sequence[dict[str, float | None]], title: str, ece: float) -> Figure:
    """Accuracy per confidence bin (bars) and the bin's mean confidence (red dashes) beside the diagonal, and below
    it how many points each bin holds; a calibrated model's bars reach its dashes."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), height_ratios=(3, 1), sharex=True,
                                      layout="constrained")
    lower = np.array([b["lower"] for b in bins], dtype=np.float64)
    width = np.array([b["upper"] for b in bins], dtype=np.float64) - lower
    counts = np.array([b["count"] for b in bins], dtype=np.float64)
    accuracy = np.array([b["accuracy"] or 0.0 for b in bins])
    confidence = np.array([b["confidence"] or 0.0 for b in bins])
    filled = counts > 0
    top.bar(lower[filled], accuracy[filled], width[filled], align="edge", color=TOTAL_COLOR, alpha=0.7,
            edgecolor="black", lw=0.5, label="accuracy in bin")
    top.scatter(lower[filled] + width[filled] / 2, confidence[filled], marker="_", s=300, color="tab:red",
                linewidths=2, zorder=3, label="mean confidence in bin")
    top.plot([0, 1], [0, 1], color="0.4", ls="--", lw=1, label="perfect calibration")
    top.set(title=f"{title} (ECE {ece:.4f})", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(lower, counts, width, align="edge", color="0.5", edgecolor="black", lw=0.5)
    bottom.set(xlabel="confidence (largest averaged probability)", ylabel="points")
    return fig


def plot_rejection(curves: dict[str, Sequence[dict[str, float]]], title: str) -> Figure:
    """Accuracy of the points kept against the fraction rejected, most uncertain first, per uncertainty."""
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    for name, curve in curves.items():
        ax.plot([p["rejected"] for p in curve], [p["accuracy"] for p in curve], marker="o", ms=3,
                label=f"by {name.replace('_', ' ')}")
    ax.set(title=title, xlabel="fraction of points rejected (most uncertain first)",
           ylabel="accuracy of the points kept")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_confusion(matrix: Sequence[Sequence[float]], classes: Sequence[str], title: str) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, each row shaded by its share."""
    counts = np.asarray(matrix, dtype=np.float64)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size), layout="constrained")
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if len(classes) <= 20:
        for i, j in np.ndindex(counts.shape):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize="small",
                    color="white" if share[i, j] > 0.5 else "black")
    ticks = range(len(classes))
    ax.set_xticks(ticks, list(classes), rotation=45 if len(classes) > 6 else 0)
    ax.set_yticks(ticks, list(classes))
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    return fig


def plot_decision_map(axes_values: tuple[np.ndarray, np.ndarray], probs: np.ndarray, mutual_information: np.ndarray,
                      points: tuple[np.ndarray, np.ndarray], classes: Sequence[str], title: str) -> Figure:
    """Over a grid of two inputs: the predicted probability (of the second class for two, else of the predicted
    class, coloured by class) and the mutual information, with the points drawn on both.

    probs is (H, W, C) on the grid axes_values = (x1 of W, x2 of H); points = ((N, 2) inputs, (N,) class codes).
    """
    gx, gy = axes_values
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    if probs.shape[-1] == 2:
        image = left.pcolormesh(gx, gy, probs[..., 1], cmap="RdBu_r", vmin=0, vmax=1, shading="auto")
        fig.colorbar(image, ax=left, label=f"p(class {classes[1]})")
    else:
        colours = CLASS_COLORS(np.arange(probs.shape[-1]) % 10)
        rgb = colours[probs.argmax(-1)][..., :3] * probs.max(-1, keepdims=True) + (1 - probs.max(-1, keepdims=True))
        left.imshow(rgb, origin="lower", extent=(gx[0], gx[-1], gy[0], gy[-1]), aspect="auto")
    left.set(title="predicted probability" + ("" if probs.shape[-1] == 2 else " (colour: class, depth: confidence)"))
    image = right.pcolormesh(gx, gy, mutual_information, cmap="viridis", shading="auto")
    fig.colorbar(image, ax=right, label="mutual information (nats)")
    right.set(title="epistemic uncertainty: mutual information")
    x, labels = points
    step = max(1, len(labels) // MAX_SHOWN_POINTS)
    cmap = ListedColormap(CLASS_COLORS(np.arange(len(classes)) % 10))
    for ax in (left, right):
        ax.scatter(x[::step, 0], x[::step, 1], c=labels[::step], cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5,
                   s=8, edgecolors="white", linewidths=0.3)
        ax.set(xlabel="x1", ylabel="x2", xlim=(gx[0], gx[-1]), ylim=(gy[0], gy[-1]))
    fig.suptitle(title)
    return fig
