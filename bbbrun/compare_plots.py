"""Figures of several runs at once (`bbbrun compare`): overlaid loss and calibration curves, tiled band plots.

Like plots.py, each function returns a Figure and nothing else here touches files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bbbrun import plots  # noqa: F401 - selects the Agg backend before pyplot draws anything


def run_colors(count: int) -> list[tuple[float, float, float, float]]:
    """Distinct colours for up to ten runs; a continuous map beyond that."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "viridis")
    return [cmap(i if count <= 10 else i / max(1, count - 1)) for i in range(count)]


def plot_losses(labels: Sequence[str], histories: Sequence[Sequence[dict[str, float]]]) -> Figure:
    """Training (solid) and validation (dashed) negative ELBO per point against epoch, one colour per run."""
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    positive = True
    for label, history, color in zip(labels, histories, run_colors(len(labels)), strict=True):
        rows = [r for r in history if "epoch" in r and "loss" in r]
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r["loss"] for r in rows], color=color, lw=1.4, label=f"{label} (train)")
        if all("val_loss" in r for r in rows):
            ax.plot(epochs, [r["val_loss"] for r in rows], color=color, lw=1.2, ls="--", label=f"{label} (val)")
            positive = positive and all(r["val_loss"] > 0 for r in rows)
        positive = positive and all(r["loss"] > 0 for r in rows)
    if positive and ax.lines:
        ax.set_yscale("log")
    ax.set(title="Negative ELBO per point (solid: train, dashed: validation)", xlabel="epoch",
           ylabel="nats per point")
    if ax.lines:
        ax.legend(fontsize="small", ncol=2 if len(labels) > 4 else 1)
    return fig


def plot_calibrations(labels: Sequence[str], curves: Sequence[Sequence[dict[str, float]]]) -> Figure:
    """Observed against nominal coverage of the central intervals on the validation rows, one line per run."""
    fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
    ax.plot([0, 1], [0, 1], color="0.5", ls="--", label="perfect calibration")
    for label, curve, color in zip(labels, curves, run_colors(len(labels)), strict=True):
        if curve:
            ax.plot([p["nominal"] for p in curve], [p["observed"] for p in curve], marker="o", ms=3, color=color,
                    label=label)
    ax.set(title="Calibration (validation)", xlabel="nominal coverage of central interval",
           ylabel="observed coverage", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small")
    return fig


def tile_images(images: Sequence[tuple[str, Path]], title: str, columns: int = 2) -> Figure:
    """Existing PNGs side by side, each under its label: the runs' own band plots, not redrawn."""
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.8 * rows), layout="constrained",
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, path) in zip(axes.ravel(), images, strict=False):
        ax.imshow(plt.imread(path))
        ax.set_title(label, fontsize="medium")
    fig.suptitle(title)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (for a page that embeds it), closed afterwards."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
