"""What `plot` and `predict` do with a trained run alone: no config file, no training."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bbbrun.bnn.likelihoods import RegressionSamples
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import Config
from bbbrun.config.budget import check_samples
from bbbrun.data import ground_truth, make_dataset
from bbbrun.data.base import InputSpec
from bbbrun.data.inputs import CHUNK_ROWS, read_input_chunks
from bbbrun.errors import ConfigError
from bbbrun.evaluate.predictive import predictive_at
from bbbrun.evaluate.regression import PredictiveSummary, summarize
from bbbrun.files import output_errors, write_atomic
from bbbrun.fit import checkpoint as ckpt
from bbbrun.runs.figures import write_band_plots, write_range_plots, write_split_figures
from bbbrun.runs.layout import FIGURES, RunDir, checkpoint_file, run_dir_of_checkpoint
from bbbrun.runs.outputs import check_output_dir, check_output_file
from bbbrun.runs.session import resolve_device

GRID_POINTS = 1000
MAX_GRID_POINTS = 10**8
OUTPUT_COLUMNS = ("mean", "std", "epistemic_std", "aleatoric_std", "lower", "upper")


@dataclass
class TrainedModel:
    """A model restored from a checkpoint, with what it needs to be used: config and its inputs' description."""

    cfg: Config
    model: BayesianNetwork
    inputs: InputSpec
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


def load_model(path: str | Path) -> TrainedModel:
    """Rebuild the trained model on the best available device from a checkpoint file or run directory."""
    file = checkpoint_file(Path(path))
    device = resolve_device("auto")
    payload = ckpt.load_checkpoint(file, map_location=device)
    cfg = ckpt.config_of(payload, file)
    model = ckpt.restore_model(payload, cfg, device, file)
    model.eval()
    return TrainedModel(cfg, model, ckpt.inputs_of(payload, file), file)


def with_samples(cfg: Config, samples: int | None) -> Config:
    if samples is None:
        return cfg
    check_samples(cfg, samples)
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


def grid(x_range: XRange, num_points: int, rows: slice | None = None) -> np.ndarray:
    """Rows `rows` (default: all) of np.linspace(x_min, x_max, num_points) as float32 (n, 1), built alone."""
    start, stop, _ = (rows or slice(0, num_points)).indices(num_points)
    if num_points == 1:
        return np.full((stop - start, 1), x_range.x_min, dtype=np.float32)
    step = (x_range.x_max - x_range.x_min) / (num_points - 1)
    x = np.arange(start, stop, dtype=np.float64) * step + x_range.x_min
    if stop == num_points and stop > start:
        x[-1] = x_range.x_max  # as linspace: the end point exactly
    return x.astype(np.float32).reshape(-1, 1)


def plot_checkpoint(path: Path, samples: int | None, out: Path | None, x_range: XRange | None) -> list[Path]:
    """Write the train and validation band plots next to the checkpoint (or into `out`)."""
    trained = load_model(path)
    if trained.model.likelihood.task == "classification":
        from bbbrun.runs.class_inference import plot_class_checkpoint

        return plot_class_checkpoint(trained, samples, out, x_range is not None)
    cfg, model = with_samples(trained.cfg, samples), trained.model
    if model.in_dim != 1 and x_range is not None:
        raise ConfigError(f"--x-min/--x-max draw bands over one input; this model has {model.in_dim} "
                          "(its inputs as encoded); without them plot redraws its val_* and test_* figures")
    own = run_dir_of_checkpoint(trained.checkpoint).path
    if out is not None:
        check_output_dir(out, "--out", own)
    out_dir = out or own
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    target = RunDir(out_dir)
    if model.in_dim != 1:
        return write_feature_figures(model, cfg, target)
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


def write_feature_figures(model: BayesianNetwork, cfg: Config, target: RunDir) -> list[Path]:
    """A model of several inputs has no band over x: its validation and test rows' figures instead
    (predicted against observed, errors against std, PIT, calibration), as training drew them."""
    ds, written = make_dataset(cfg.data, cfg.seed), list[Path]()
    for split, (x, y) in ds.splits().items():
        if split == "train" or len(y) == 0:
            continue
        samples = predictive_at(model, x, cfg.predict, cfg.seed)
        written += write_split_figures(target, split, y, samples, summarize(samples, cfg.predict.interval))
    return written


def predict_summary(model: BayesianNetwork, x: np.ndarray, cfg: Config, exact: bool = False) -> PredictiveSummary:
    """The predictive's summary at x; `exact` intervals are the mixture's quantiles (see summarize)."""
    return summarize(predictive_at(model, x, cfg.predict, cfg.seed), cfg.predict.interval, exact=exact)


def predictive_rows(model: BayesianNetwork, x: np.ndarray, cfg: Config) -> RegressionSamples:
    """The predictive at x (N, d) in float64. The weight draws depend on the seed alone and each row's
    sampled means and scales on that row alone (see sample_predictive); the noise draws (samples.y) depend
    on N, so what must not depend on the chunking of a file reads f and the scale only."""
    return predictive_at(model, x, cfg.predict, cfg.seed).points(slice(None), torch.float64)


def predict_config(trained: TrainedModel, request: PredictRequest) -> Config:
    """The run's config with the request's sample count and central interval."""
    cfg = with_samples(trained.cfg, request.samples)
    interval = ((1 - request.level) / 2, (1 + request.level) / 2)
    return dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, interval=interval))


def check_request(request: PredictRequest) -> None:
    if not 0.0 < request.level < 1.0:
        raise ConfigError(f"--level must be in (0, 1), got {request.level}")
    if request.input_csv is not None and request.x_range is not None:
        raise ConfigError("give either --input or --x-min/--x-max, not both")
    if request.input_csv is None and request.x_range is None:
        raise ConfigError("give --input FILE.csv or both --x-min and --x-max")
    if not 1 <= request.num_points <= MAX_GRID_POINTS:
        raise ConfigError(f"--num-points must be between 1 and {MAX_GRID_POINTS:,} (about "
                          f"{MAX_GRID_POINTS * 80 / 2**30:.0f} GiB of CSV), got {request.num_points:,}")


def write_predictions(trained: TrainedModel, request: PredictRequest, write: Callable[[str], object]) -> None:
    """The predictive at new inputs as CSV text, handed to `write` a chunk of rows at a time: the input
    columns, then mean, std, epistemic_std, aleatoric_std, lower, upper (noise included)."""
    check_request(request)
    if trained.model.likelihood.task == "classification":
        from bbbrun.runs.class_inference import write_class_predictions

        write_class_predictions(trained, request, write)
        return
    cfg = predict_config(trained, request)
    header = [*trained.feature_names, *OUTPUT_COLUMNS]
    # Exact intervals: a point's row must not depend on which other points share the file or its chunk.
    # The band plots keep the faster empirical quantiles; there a point's neighbours are fixed by the run.
    for i, (fields, x) in enumerate(input_blocks(trained, request)):
        summary = summarize(predictive_rows(trained.model, x, cfg), cfg.predict.interval, exact=True)
        write(format_rows(header if i == 0 else None, fields, summary))


def input_blocks(trained: TrainedModel, request: PredictRequest) -> Iterator[tuple[list[list[str]], np.ndarray]]:
    """(input fields as text, encoded inputs) per chunk of the input file, or the grid in one block."""
    if request.input_csv is not None:
        for chunk in read_input_chunks(request.input_csv, trained.inputs):
            yield chunk.fields, chunk.x
        return
    if trained.model.in_dim != 1:
        raise ConfigError(f"a grid needs a model of one input; this one has {trained.model.in_dim}: give --input")
    for start in range(0, request.num_points, CHUNK_ROWS):  # in chunks: a grid may be larger than memory
        x = grid(request.x_range, request.num_points, slice(start, start + CHUNK_ROWS))  # type: ignore[arg-type]
        yield [[f"{v:.6g}"] for v in x[:, 0]], x


def stream_predictions(path: Path, request: PredictRequest, write: Callable[[str], object]) -> None:
    """write_predictions for the run at `path`, the request checked before the model is loaded."""
    check_request(request)
    write_predictions(load_model(path), request, write)


def predict_csv(path: Path, request: PredictRequest) -> str:
    """The predictions' CSV text in one string, for inputs that fit in memory."""
    parts: list[str] = []
    stream_predictions(path, request, parts.append)
    return "".join(parts)


def predict_to_file(path: Path, request: PredictRequest, output: Path) -> None:
    """write_predictions into `output` through a temporary file: a failure part-way leaves no file."""
    check_output_file(output, "--output", (checkpoint_file(path), *filter(None, [request.input_csv])))
    check_request(request)
    trained = load_model(path)
    write_atomic(output, lambda handle: write_predictions(trained, request, lambda t: handle.write(t.encode())))


def format_rows(header: list[str] | None, fields: list[list[str]], summary: PredictiveSummary) -> str:
    columns = [summary.mean, summary.std, summary.epistemic_std, summary.aleatoric_std, summary.lower, summary.upper]
    arrays = [v.detach().cpu().numpy() for v in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    for i, row in enumerate(fields):
        writer.writerow([*row, *(f"{a[i]:.6g}" for a in arrays)])
    return buffer.getvalue()


