"""What `plot` and `predict` do with a checkpoint alone: no config file, no training."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import torch

from bbbrun import checkpoint as ckpt
from bbbrun.config import Config
from bbbrun.data import Dataset, make_dataset, read_x_csv
from bbbrun.errors import ConfigError, DataError
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.model import BayesianRegressor
from bbbrun.predict import PredictiveSummary
from bbbrun.runner import band_arrays, predictive_at, resolve_device, write_band_plots

GRID_POINTS = 1000


def load_model(path: Path) -> tuple[Config, BayesianRegressor]:
    """Rebuild the trained model on the best available device from a checkpoint file or run directory."""
    path = ckpt.resolve_checkpoint_path(path)
    device = resolve_device("auto")
    payload = ckpt.load_checkpoint(path, map_location=device)
    cfg = ckpt.config_of(payload, path)
    model = ckpt.restore_model(payload, cfg, device, path)
    model.eval()
    return cfg, model


def with_samples(cfg: Config, samples: int | None) -> Config:
    if samples is None:
        return cfg
    return dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, num_samples=samples))


def plot_checkpoint(
    path: Path, samples: int | None, out: Path | None, x_min: float | None, x_max: float | None
) -> list[Path]:
    """Write train.png and val.png next to the checkpoint (or into `out`)."""
    check_range(x_min, x_max, required=False)
    cfg, model = load_model(path)
    cfg = with_samples(cfg, samples)
    out_dir = out or ckpt.resolve_checkpoint_path(path).parent
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    ds = make_dataset(cfg.data, cfg.seed)
    n = cfg.predict.num_samples
    if x_min is None or x_max is None:
        write_band_plots(out_dir, ds, cfg, predictive_at(model, ds.x_train, cfg, n),
                         predictive_at(model, ds.x_val, cfg, n))
    else:
        write_range_plots(out_dir, model, cfg, ds, (x_min, x_max))
    return [out_dir / "train.png", out_dir / "val.png"]


def write_range_plots(
    out_dir: Path, model: BayesianRegressor, cfg: Config, ds: Dataset, x_range: tuple[float, float]
) -> None:
    """The predictive on a grid over x_range, the training range marked, each split's points on top."""
    from bbbrun import plots
    from bbbrun.data import true_function

    grid = np.linspace(x_range[0], x_range[1], GRID_POINTS, dtype=np.float32).reshape(-1, 1)
    _, summary = predictive_at(model, grid, cfg, cfg.predict.num_samples)
    band = band_arrays(summary)
    f_grid = true_function(cfg.data.function, grid.ravel().astype(np.float64))
    train_range = (cfg.data.x_min, cfg.data.x_max)
    for name, title, x, y in (("train.png", "Train", ds.x_train, ds.y_train),
                              ("val.png", "Validation", ds.x_val, ds.y_val)):
        fig = plots.plot_band(grid.ravel(), band, title, cfg.predict.interval, points=(x.ravel(), y.ravel()),
                              train_range=train_range, f_true=f_grid)
        plots.save_figure(fig, out_dir / name)


def check_range(x_min: float | None, x_max: float | None, required: bool) -> None:
    if (x_min is None) != (x_max is None) or (required and x_min is None):
        raise ConfigError("give both --x-min and --x-max")
    if x_min is not None and x_max is not None and (
        not (math.isfinite(x_min) and math.isfinite(x_max)) or x_min >= x_max
    ):
        raise ConfigError(f"--x-min must be < --x-max and both finite, got {x_min} and {x_max}")


def predict_csv(
    path: Path, input_csv: Path | None, x_min: float | None, x_max: float | None,
    num_points: int, samples: int | None, level: float,
) -> str:
    """The predictive at new inputs as CSV text: x,mean,std,epistemic_std,lower,upper."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"--level must be in (0, 1), got {level}")
    if input_csv is not None and x_min is not None:
        raise ConfigError("give either --input or --x-min/--x-max, not both")
    x = read_x_csv(input_csv) if input_csv is not None else None
    if x is None:
        check_range(x_min, x_max, required=True)
        assert x_min is not None and x_max is not None  # checked just above
        x = np.linspace(x_min, x_max, num_points, dtype=np.float32).reshape(-1, 1)
    cfg, model = load_model(path)
    cfg = with_samples(cfg, samples)
    interval = ((1 - level) / 2, (1 + level) / 2)
    cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, interval=interval))
    _, summary = predictive_at(model, x, cfg, cfg.predict.num_samples)
    return format_csv(x.ravel(), summary)


def format_csv(x: np.ndarray, summary: PredictiveSummary) -> str:
    columns = {"x": torch.from_numpy(x), "mean": summary.mean, "std": summary.std,
               "epistemic_std": summary.epistemic_std, "lower": summary.lower, "upper": summary.upper}
    arrays = {k: v.detach().cpu().numpy() for k, v in columns.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(arrays))
    for i in range(len(x)):
        writer.writerow([f"{arrays[k][i]:.6g}" for k in arrays])
    return buffer.getvalue()


def write_csv(path: Path, text: str) -> None:
    if path.is_dir():
        raise DataError(f"--output {path} is a directory; give a file name")
    write_text_atomic(path, text)
