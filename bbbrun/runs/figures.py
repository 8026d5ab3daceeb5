"""A run's figures drawn from its predictive: the train and validation bands, range plots, and for any
number of inputs each split's predicted-vs-observed, error-ranking, PIT and calibration figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bbbrun.bnn.likelihoods import RegressionSamples
from bbbrun.config import Config, Source
from bbbrun.data import Dataset
from bbbrun.evaluate.regression import PredictiveSummary, calibration_curve, pit
from bbbrun.runs.layout import RunDir


def band_arrays(summary: PredictiveSummary) -> dict[str, np.ndarray]:
    names = ("mean", "lower", "upper", "epistemic_lower", "epistemic_upper")
    return {n: getattr(summary, n).detach().cpu().numpy() for n in names}


SPLIT_TITLES = {"train": "Train", "val": "Validation", "test": "Test"}
FEATURE_FIGURES = ("predicted", "errors", "pit", "calibration")


def split_views(ds: Dataset) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(figure name, title, x, y, truth) for the train and validation rows."""
    return [("train", "Train", ds.x_train, ds.y_train, ds.f_train),
            ("val", "Validation", ds.x_val, ds.y_val, ds.f_val)]


def write_band_plots(paths: dict[str, Path], ds: Dataset, cfg: Config,
                     summaries: dict[str, PredictiveSummary]) -> None:
    """The band plots of each split at its own points; `paths` and `summaries` are keyed by figure name."""
    from bbbrun import plots

    for name, title, x, y, f in split_views(ds):
        fig = plots.plot_band(x.ravel(), band_arrays(summaries[name]), title, cfg.predict.interval,
                              points=(x.ravel(), y.ravel()), f_true=None if f is None else f.ravel())
        plots.save_figure(fig, paths[name])


def write_range_plots(paths: dict[str, Path], ds: Dataset, cfg: Config, grid: np.ndarray,
                      summary: PredictiveSummary, f_grid: np.ndarray | None) -> None:
    """The predictive on a grid (N, 1) beyond the data, the training range marked, each split's points on top."""
    from bbbrun import plots

    band = band_arrays(summary)
    # Generated data spans its configured range; data from files spans what the training rows hold.
    generated = cfg.data.source is Source.FUNCTION
    train_range = (cfg.data.x_min, cfg.data.x_max) if generated else (float(ds.x_train.min()), float(ds.x_train.max()))
    for name, title, x, y, _ in split_views(ds):
        fig = plots.plot_band(grid.ravel(), band, title, cfg.predict.interval, points=(x.ravel(), y.ravel()),
                              train_range=train_range, f_true=f_grid)
        plots.save_figure(fig, paths[name])


def write_split_figures(run_dir: RunDir, split: str, y: np.ndarray, samples: RegressionSamples,
                        summary: PredictiveSummary) -> list[Path]:
    """One split's FEATURE_FIGURES into the run directory, from its predictive and targets y (N, 1)."""
    u = pit(samples, torch.from_numpy(y.ravel()).to(samples.f.device)).cpu().numpy()
    paths = {kind: run_dir.split_figure(split, kind) for kind in FEATURE_FIGURES}
    write_feature_plots(paths, split, y, summary, u)
    return list(paths.values())


def write_feature_plots(paths: dict[str, Path], split: str, y: np.ndarray, summary: PredictiveSummary,
                        u: np.ndarray) -> None:
    """One split's figures for inputs of any width, to `paths` keyed by FEATURE_FIGURES.

    y holds the split's targets (N,) or (N, 1); u their PIT values (N,) under the
    sampled mixture, as `bbbrun.evaluate.regression.pit` gives them.
    """
    from bbbrun import plots

    title = SPLIT_TITLES.get(split, split)
    y = np.asarray(y, dtype=np.float64).ravel()
    u = np.asarray(u, dtype=np.float64).ravel()
    band = band_arrays(summary)
    std = summary.std.detach().cpu().double().numpy()
    curve = [{"nominal": n, "observed": o} for n, o in calibration_curve(torch.from_numpy(u))]
    plots.save_figure(plots.plot_predicted(y, band["mean"], band["lower"], band["upper"],
                                           f"{title}: predicted against observed"), paths["predicted"])
    plots.save_figure(plots.plot_errors(std, np.abs(y - band["mean"]), title), paths["errors"])
    plots.save_figure(plots.plot_pit(u, f"{title}: probability integral transform"), paths["pit"])
    plots.save_figure(plots.plot_calibration(curve, f"Calibration ({title.lower()})"), paths["calibration"])
