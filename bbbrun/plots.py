"""Figures: the only module that imports matplotlib. Each function returns a Figure."""

from __future__ import annotations

import io
import math
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


MAX_INTERVAL_BARS = 300  # interval bars beyond this many hide each other; every k-th point is drawn


def every_kth(num_points: int, most: int) -> tuple[int, str]:
    """The step that shows at most `most` of num_points, and a legend note for it."""
    step = max(1, -(-num_points // most))
    return step, "" if step == 1 else f" (1 in {step} shown)"


def padded_limits(*arrays: np.ndarray) -> tuple[float, float]:
    """The finite range of the arrays, widened 5% (or by 1 when empty or a single value)."""
    values = np.concatenate([a.ravel() for a in arrays])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(lo))
    return lo - pad, hi + pad


def plot_predicted(y: np.ndarray, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray, title: str) -> Figure:
    """Predicted mean against the observed target with each point's interval, and the diagonal y = x."""
    step, note = every_kth(len(y), MAX_INTERVAL_BARS)
    fig, ax = plt.subplots(figsize=(5.5, 5.5), layout="constrained")
    limits = padded_limits(y, mean, lower, upper)
    ax.plot(limits, limits, color="0.5", ls="--", lw=1, label="predicted = observed")
    ax.vlines(y[::step], lower[::step], upper[::step], color=TOTAL_COLOR, alpha=0.35, lw=1,
              label=f"predictive interval{note}")
    ax.scatter(y, mean, s=6, color="black", alpha=0.7, label="predictive mean", rasterized=True)
    ax.set(title=title, xlabel="observed y", ylabel="predicted y", xlim=limits, ylim=limits)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def average_ranks(a: np.ndarray) -> np.ndarray:
    """0-based ranks of a, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2)[inverse.ravel()]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: the Pearson correlation of the average ranks; nan when either is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum()) / norm if norm > 0 else float("nan")


def binned_means(std: np.ndarray, error: np.ndarray, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean std and mean error of num_bins equal-count bins of the points sorted by std."""
    groups = np.array_split(np.argsort(std, kind="stable"), num_bins)
    return np.array([std[g].mean() for g in groups]), np.array([error[g].mean() for g in groups])


def plot_errors(std: np.ndarray, error: np.ndarray, title: str) -> Figure:
    """|error| against predicted std: the points, the mean per bin of std, and what a Gaussian would give.

    The title's Spearman correlation says how well the uncertainty ranks the errors.
    """
    step, note = every_kth(len(std), MAX_SHOWN_POINTS)
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    ax.scatter(std[::step], error[::step], s=4, color="0.55", alpha=0.6, label=f"points{note}", rasterized=True)
    limits = padded_limits(std)
    lo = max(0.0, limits[0])
    ax.plot([lo, limits[1]], [lo * np.sqrt(2 / np.pi), limits[1] * np.sqrt(2 / np.pi)], color="0.3", ls="--",
            lw=1, label="E|error| of a Gaussian with that std")
    bin_std, bin_error = binned_means(std, error, max(1, min(20, len(std) // 25)))
    ax.plot(bin_std, bin_error, color=TOTAL_COLOR, marker="o", lw=1.5, label="mean |error| per bin of std")
    rho = rank_correlation(std, error)
    shown = "undefined (constant std or error)" if np.isnan(rho) else f"{rho:.3f}"
    ax.set(title=f"{title}: Spearman rank correlation {shown}", xlabel="predicted std (total)",
           ylabel="|observed - predicted mean|")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_pit(u: np.ndarray, title: str) -> Figure:
    """Histogram of the probability integral transform; a calibrated predictive gives the uniform line."""
    finite = u[np.isfinite(u)]
    num_bins = int(np.clip(len(finite) // 50, 5, 20))
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.hist(finite, bins=num_bins, range=(0.0, 1.0), density=len(finite) > 0, color=TOTAL_COLOR, alpha=0.6,
            label="targets")
    ax.axhline(1.0, color="0.3", ls="--", lw=1, label="uniform (calibrated)")
    ax.set(title=title, xlabel="PIT: predictive CDF at the target", ylabel="density", xlim=(0, 1))
    ax.legend(loc="upper center", fontsize="small")
    return fig


SNR_FLOOR = -6.0  # log10 SNR below this (weights whose mean the prior has pulled to ~0) is drawn at the floor


def plot_snr(snr: np.ndarray, fractions: Sequence[float]) -> Figure:
    """Histogram of log10 signal-to-noise ratios |mu| / sigma, with the cut each pruning fraction makes."""
    logs = np.log10(np.maximum(snr, np.finfo(np.float64).tiny))
    floored = int((logs < SNR_FLOOR).sum())
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    label = f"weights ({floored} below 1e{SNR_FLOOR:g} drawn at the left edge)" if floored else "weights"
    ax.hist(np.maximum(logs, SNR_FLOOR), bins=80, color=TOTAL_COLOR, alpha=0.7, label=label)
    top = ax.get_ylim()[1]
    for i, fraction in enumerate(fractions):
        cut = max(float(np.quantile(logs, fraction)), SNR_FLOOR)
        ax.axvline(cut, color="tab:red", ls="--", lw=1)
        ax.text(cut, top * (0.95 - 0.07 * i), f" {fraction:.0%}", color="tab:red", fontsize="small", va="top")
    ax.set(title="Signal-to-noise ratio of the weights (dashed: pruning cut-offs)",
           xlabel="log10 |mu| / sigma", ylabel="weights")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_pruning(rows: Sequence[dict[str, float]], metrics: Sequence[str]) -> Figure:
    """Each validation metric against the fraction of weights removed."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.8), layout="constrained", squeeze=False)
    fractions = [r["fraction"] for r in rows]
    for ax, metric in zip(axes[0], metrics, strict=True):
        ax.plot(fractions, [r[metric] for r in rows], marker="o", color=TOTAL_COLOR)
        ax.set(xlabel="fraction of weights removed (lowest SNR first)", ylabel=f"validation {metric}")
    fig.suptitle("Pruning by signal-to-noise ratio")
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """Render to memory, then write atomically, so a half-drawn PNG never appears."""
    content = png_bytes(fig)
    write_atomic(path, lambda handle: handle.write(content))


def plain_text(text: object, limit: int = 80) -> str:
    """User text (names, swept values) as matplotlib draws it literally: `$` would start mathtext, whose
    parser fails on most strings, and control characters would draw as boxes; long text is cut."""
    shown = "".join(char if char.isprintable() else "?" for char in str(text))
    shown = shown if len(shown) <= limit else shown[: limit - 3] + "..."
    return shown.replace("$", r"\$")


def plot_comparison(points: Sequence[dict[str, object]], keys: Sequence[str], metric: str, title: str) -> Figure:
    """A sweep's metric against each swept key: one point per run (per seed), a line through the means.

    Each point holds the key values as strings and its metric as "value"
    (None for a failed run, which is left out). Values sit at evenly spaced
    positions in the order they first appear, so null or log-spaced values read alike.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 4), layout="constrained", squeeze=False)
    done = [p for p in points if isinstance(p["value"], (int, float))]
    for ax, key in zip(axes[0], keys, strict=True):
        labels = list(dict.fromkeys(str(p[key]) for p in points))  # values as given; drawn as plain_text
        by_label: dict[str, list[float]] = {label: [] for label in labels}
        for p in done:
            by_label[str(p[key])].append(float(p["value"]))  # type: ignore[arg-type]
        for i, label in enumerate(labels):
            ax.scatter([i] * len(by_label[label]), by_label[label], s=18, alpha=0.6, color=TOTAL_COLOR,
                       label="runs" if i == 0 else None)
        means = [(i, float(np.mean(by_label[label]))) for i, label in enumerate(labels) if by_label[label]]
        if means:
            ax.plot([i for i, _ in means], [m for _, m in means], color="black", marker="o", lw=1.2, label="mean")
        ax.set_xticks(range(len(labels)), [plain_text(label, 30) for label in labels],
                      rotation=30 if len(labels) > 4 else 0)
        ax.set(xlabel=plain_text(key), ylabel=plain_text(metric))
        ax.legend(fontsize="small")
    fig.suptitle(plain_text(title, 120))
    return fig


# ------------------------------------------------------------- several runs at once (bbbrun compare, report)


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
