"""A trained classifier used alone: `predict` (class, probabilities, uncertainties per row), `evaluate` on a
labelled file, and `plot` (its figures redrawn from the checkpoint). `inference` and `scoring` hand a
classifier to these functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import torch

from bbbrun.bnn.likelihoods import task_of
from bbbrun.data import make_dataset
from bbbrun.data.inputs import read_input_chunks
from bbbrun.errors import ConfigError
from bbbrun.evaluate.classification import ClassSummary, class_metrics, summarize_classes
from bbbrun.evaluate.predictive import probabilities_at
from bbbrun.files import output_errors
from bbbrun.runs.class_results import class_summaries, codes, write_decision_map, write_split_class_figures
from bbbrun.runs.inference import PredictRequest, TrainedModel, input_blocks, with_samples
from bbbrun.runs.layout import RunDir, run_dir_of_checkpoint

UNCERTAINTY_COLUMNS = ("entropy", "expected_entropy", "mutual_information")


def output_columns(classes: tuple[str, ...]) -> list[str]:
    """The predicted class, each class's averaged probability, then total, aleatoric and epistemic uncertainty."""
    return ["class", *(f"p_{name}" for name in classes), *UNCERTAINTY_COLUMNS]


def format_class_rows(header: list[str] | None, fields: list[list[str]], summary: ClassSummary,
                      classes: tuple[str, ...]) -> str:
    probs = summary.probs.cpu().numpy()
    predicted = summary.predicted.cpu().numpy()
    extra = [getattr(summary, name).cpu().numpy() for name in UNCERTAINTY_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    for i, row in enumerate(fields):
        writer.writerow([*row, classes[predicted[i]], *(f"{p:.6g}" for p in probs[i]), *(f"{a[i]:.6g}" for a in extra)])
    return buffer.getvalue()


def write_class_predictions(trained: TrainedModel, request: PredictRequest, write: Callable[[str], object]) -> None:
    """The classifier's predictive at new inputs as CSV text, a chunk of rows at a time (see output_columns).

    Each row depends on its own input alone: the weight draws come from the run's seed.
    """
    cfg = with_samples(trained.cfg, request.samples)
    classes = trained.inputs.classes
    header = [*trained.feature_names, *output_columns(classes)]
    for i, (fields, x) in enumerate(input_blocks(trained, request)):
        summary = summarize_classes(probabilities_at(trained.model, x, cfg.predict, cfg.seed))
        write(format_class_rows(header if i == 0 else None, fields, summary, classes))


def evaluate_class_file(trained: TrainedModel, input_csv: Path, samples: int | None) -> dict[str, object]:
    """A classifier's metrics on every labelled row of `input_csv` (metrics.json's val_* names without the prefix).

    The per-point summaries of all chunks are kept (C + 3 numbers a point) and scored together, so the
    result does not depend on the chunk size.
    """
    cfg = with_samples(trained.cfg, samples)
    parts, labels = [], []
    for chunk in read_input_chunks(input_csv, trained.inputs, with_target=True):
        assert chunk.y is not None
        parts.append(summarize_classes(probabilities_at(trained.model, chunk.x, cfg.predict, cfg.seed)))
        labels.append(torch.from_numpy(chunk.y))
    summary = ClassSummary.concat(parts)
    y = torch.cat(labels).to(summary.probs.device).long()
    return {**class_metrics(summary, y), "n": len(y)}


def plot_class_checkpoint(trained: TrainedModel, samples: int | None, out: Path | None, ranged: bool) -> list[Path]:
    """Redraw a classifier's figures (per held-out split, and the decision map for two inputs) into `out`."""
    if ranged:
        raise ConfigError("--x-min/--x-max draw regression bands; a classifier's plots cover its data")
    cfg = with_samples(trained.cfg, samples)
    out_dir = out or run_dir_of_checkpoint(trained.checkpoint).path
    with output_errors(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
    target = RunDir(out_dir)
    ds = make_dataset(cfg.data, cfg.seed, task_of(cfg.model))
    summaries = class_summaries(trained.model, ds, cfg)
    written = []
    for split, (_, y) in ds.splits().items():
        if split == "train":
            continue
        found = class_metrics(summaries[split], codes(y, summaries[split].probs.device))
        write_split_class_figures(target, split, {f"{split}_{k}": v for k, v in found.items()}, trained.inputs.classes)
        written += [target.split_figure(split, kind) for kind in ("reliability", "rejection", "confusion")]
    if ds.input_dim == 2:
        write_decision_map(trained.model, ds, cfg, target)
        written.append(target.figure("decision"))
    return written

