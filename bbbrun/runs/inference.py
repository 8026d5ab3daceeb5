"""What `plot` and `predict` do with a trained run alone: no config file, no training."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import Config
from bbbrun.data import ground_truth, make_dataset
from bbbrun.data.inputs import read_inputs_csv
from bbbrun.errors import ConfigError, DataError
from bbbrun.evaluate.predictive import predictive_at
from bbbrun.evaluate.regression import PredictiveSummary, summarize
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.fit import checkpoint as ckpt
from bbbrun.runs.figures import write_band_plots, write_range_plots
from bbbrun.runs.layout import FIGURES, RunDir, checkpoint_file, run_dir_of_checkpoint
from bbbrun.runs.session import resolve_device

GRID_POINTS = 1000


@dataclass
class TrainedModel:
    """A model restored from a checkpoint, with what it needs to be used: config and its inputs' description."""

    cfg: Config
    model: BayesianNetwork
    inputs: ckpt.InputSpec
    checkpoint: Path

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.inputs.feature_names


@dataclass(frozen=True)
class XRange:
    """A closed interval of the (single) input, for grids beyond the data."""

    x_min: float
    x_max: float


@dataclass(frozen=True)
class PredictRequest:
    """Where to predict (a CSV of inputs, or a grid over a range) and how."""

    input_csv: Path | None = None
    x_range: XRange | None = None
    num_points: int = 100
    samples: int | None = None  # None: the run's predict.num_samples
    level: float = 0.9


def load_model(path: Path) -> TrainedModel:
    """Rebuild the trained model on the best available device from a checkpoint file or run directory."""
    file = checkpoint_file(path)
    device = resolve_device("auto")
    payload = ckpt.load_checkpoint(file, map_location=device)
    cfg = ckpt.config_of(payload, file)
    model = ckpt.restore_model(payload, cfg, device, file)
    model.eval()
    return TrainedModel(cfg, model, ckpt.inputs_of(payload, file), file)


def with_samples(cfg: Config, samples: int | None) -> Config:
    if samples is None:
        return cfg
    return dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, num_samples=samples))


def make_range(x_min: float | None, x_max: float | None, required: bool) -> XRange | None:
    """Both ends or neither (unless required); finite, in order."""
    if (x_min is None) != (x_max is None) or (required and x_min is None):
        raise ConfigError("give both --x-min and --x-max")
    if x_min is None or x_max is None:
        return None
    if not (math.isfinite(x_min) and math.isfinite(x_max)) or x_min >= x_max:
        raise ConfigError(f"--x-min must be < --x-max and both finite, got {x_min} and {x_max}")
    return XRange(x_min, x_max)


def grid(x_range: XRange, num_points: int) -> np.ndarray:
    return np.linspace(x_range.x_min, x_range.x_max, num_points, dtype=np.float32).reshape(-1, 1)


def plot_checkpoint(path: Path, samples: int | None, out: Path | None, x_range: XRange | None) -> list[Path]:
    """Write the train and validation band plots next to the checkpoint (or into `out`)."""
    trained = load_model(path)
    cfg, model = with_samples(trained.cfg, samples), trained.model
    if model.in_dim != 1:
        raise ConfigError(f"band plots need a model of one input; this one has {model.in_dim}")
    out_dir = out or run_dir_of_checkpoint(trained.checkpoint).path
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    target = RunDir(out_dir)
    paths = {name: target.figure(name) if x_range is None else target.range_figure(name, x_range.x_min,
                                                                                    x_range.x_max)
             for name in FIGURES[:2]}
    ds = make_dataset(cfg.data, cfg.seed)
    if x_range is None:
        summaries = {name: predict_summary(model, x, cfg) for name, x in (("train", ds.x_train), ("val", ds.x_val))}
        write_band_plots(paths, ds, cfg, summaries)
    else:
        x = grid(x_range, GRID_POINTS)
        write_range_plots(paths, ds, cfg, x, predict_summary(model, x, cfg), ground_truth(cfg.data, x))
    return list(paths.values())


def predict_summary(model: BayesianNetwork, x: np.ndarray, cfg: Config, exact: bool = False) -> PredictiveSummary:
    """The predictive's summary at x; `exact` intervals are the mixture's quantiles (see summarize)."""
    return summarize(predictive_at(model, x, cfg.predict, cfg.seed), cfg.predict.interval, exact=exact)


def predict_csv(path: Path, request: PredictRequest) -> str:
    """The predictive at new inputs as CSV text: the inputs, mean, std, epistemic_std, lower, upper."""
    if not 0.0 < request.level < 1.0:
        raise ConfigError(f"--level must be in (0, 1), got {request.level}")
    if request.input_csv is not None and request.x_range is not None:
        raise ConfigError("give either --input or --x-min/--x-max, not both")
    if request.input_csv is None and request.x_range is None:
        raise ConfigError("give --input FILE.csv or both --x-min and --x-max")
    trained = load_model(path)
    if request.input_csv is not None:
        x = read_inputs_csv(request.input_csv, trained.feature_names)
    elif trained.model.in_dim != 1:
        raise ConfigError(f"a grid needs a model of one input; this one has {trained.model.in_dim}: give --input")
    else:
        x = grid(request.x_range, request.num_points)  # type: ignore[arg-type]
    level = request.level
    cfg = with_samples(trained.cfg, request.samples)
    cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, interval=((1 - level) / 2,
                                                                                      (1 + level) / 2)))
    # Exact intervals: a point's row must not depend on which other points share the file. The band
    # plots keep the faster empirical quantiles; there a point's neighbours are fixed by the run.
    return format_csv(x, trained.feature_names, predict_summary(trained.model, x, cfg, exact=True))


def format_csv(x: np.ndarray, feature_names: tuple[str, ...], summary: PredictiveSummary) -> str:
    columns = {"mean": summary.mean, "std": summary.std, "epistemic_std": summary.epistemic_std,
               "lower": summary.lower, "upper": summary.upper}
    arrays = {k: v.detach().cpu().numpy() for k, v in columns.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*feature_names, *arrays])
    for i in range(len(x)):
        writer.writerow([*(f"{v:.6g}" for v in x[i]), *(f"{arrays[k][i]:.6g}" for k in arrays)])
    return buffer.getvalue()


def write_csv(path: Path, text: str) -> None:
    if path.is_dir():
        raise DataError(f"--output {path} is a directory; give a file name")
    write_text_atomic(path, text)
