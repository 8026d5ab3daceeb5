"""`bbbrun prune`: a trained run's validation metrics as its lowest-SNR weights are removed, and pruned checkpoints.

Each fraction is scored on the run's own validation rows (rebuilt from its
config) with the same seeded predictive, so the rows differ only in the
weights removed. Works for regression and classification alike: the
columns are the likelihood's table metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bbbrun.bnn.likelihoods import task_of
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.pruning import pruned, signal_to_noise
from bbbrun.config import Config, ModelType
from bbbrun.data import Dataset, make_dataset
from bbbrun.errors import ConfigError
from bbbrun.evaluate.classification import class_metrics, summarize_classes
from bbbrun.evaluate.predictive import predictive_at, probabilities_at
from bbbrun.evaluate.regression import evaluate, summarize
from bbbrun.files import output_errors, write_text_atomic
from bbbrun.fit import checkpoint as ckpt
from bbbrun.runs.inference import TrainedModel, load_model, with_samples
from bbbrun.runs.layout import RunDir, run_dir_of_checkpoint

DEFAULT_FRACTIONS = (0.5, 0.75, 0.95, 0.98)


@dataclass
class PruneResult:
    rows: list[dict[str, float]]  # one per fraction (0 first): fraction, weights_kept, then the metrics
    metrics: tuple[str, ...]  # the metric columns
    files: list[Path]


def parse_fractions(text: str) -> tuple[float, ...]:
    """"0.5,0.75" -> (0.5, 0.75); each in [0, 1)."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--fraction must be numbers separated by commas, e.g. 0.5,0.95; got {text!r}") from None
    bad = [v for v in values if not 0.0 <= v < 1.0]
    if not values or bad:
        raise ConfigError(f"--fraction values must be in [0, 1) (the share of weights removed); got {text!r}")
    return tuple(sorted(set(values)))


def score_validation(model: BayesianNetwork, ds: Dataset, cfg: Config) -> dict[str, Any]:
    """The model's metrics on the validation rows (metrics.json's val_* without the prefix)."""
    y = torch.from_numpy(ds.y_val.ravel()).to(model.mu.device)
    if model.likelihood.task == "classification":
        return class_metrics(summarize_classes(probabilities_at(model, ds.x_val, cfg.predict, cfg.seed)), y.long())
    samples = predictive_at(model, ds.x_val, cfg.predict, cfg.seed)
    return evaluate(samples, summarize(samples, cfg.predict.interval, exact=True), y.to(samples.f), None)


def fraction_name(fraction: float) -> str:
    return f"{fraction * 100:g}"


def save_pruned(trained: TrainedModel, model: BayesianNetwork, fraction: float, run_dir: RunDir) -> Path:
    """The original checkpoint with the pruned weights, marked status "pruned" (predict and evaluate read it)."""
    payload = ckpt.load_checkpoint(trained.checkpoint)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {**payload, "model": state, "status": "pruned", "pruned_fraction": fraction}
    path = run_dir.pruned_checkpoint(fraction_name(fraction))
    ckpt.save_checkpoint(path, payload)
    return path


def prune_run(path: Path, fractions: tuple[float, ...], samples: int | None = None, save: bool = False,
              out: Path | None = None) -> PruneResult:
    """Score each fraction on the validation rows; write prune.json, prune.png, snr.png (and pruned checkpoints)."""
    from bbbrun import plots

    trained = load_model(path)
    if trained.cfg.model.type is not ModelType.BAYESIAN:
        raise ConfigError("pruning by signal-to-noise ratio needs a Bayesian model (model.type=bayesian)")
    cfg = with_samples(trained.cfg, samples)
    ds = make_dataset(cfg.data, cfg.seed, task_of(cfg.model))
    run_dir = RunDir(out) if out is not None else run_dir_of_checkpoint(trained.checkpoint)
    with output_errors(run_dir.path):
        run_dir.path.mkdir(parents=True, exist_ok=True)
    names = tuple(m.removeprefix("val_") for m in trained.model.likelihood.table_metrics)
    num_weights = len(signal_to_noise(trained.model))
    rows, files = [], []
    for fraction in (0.0, *[f for f in fractions if f > 0.0]):
        model = pruned(trained.model, fraction)
        found = score_validation(model, ds, cfg)
        rows.append({"fraction": fraction, "weights_kept": num_weights - round(fraction * num_weights),
                     **{n: float(found[n]) for n in names}})
        if save and fraction > 0.0:
            files.append(save_pruned(trained, model, fraction, run_dir))
    write_text_atomic(run_dir.prune_json, json.dumps({"num_weights": num_weights, "rows": rows}, indent=2) + "\n")
    snr = signal_to_noise(trained.model).cpu().double().numpy()
    plots.save_figure(plots.plot_snr(snr, [r["fraction"] for r in rows[1:]]), run_dir.figure("snr"))
    plots.save_figure(plots.plot_pruning(rows, names), run_dir.figure("prune"))
    return PruneResult(rows, names, [run_dir.prune_json, run_dir.figure("snr"), run_dir.figure("prune"), *files])


def table(result: PruneResult) -> tuple[list[str], list[list[str]]]:
    columns = ["removed", "weights kept", *(f"val {m}" for m in result.metrics)]
    rows = [[f"{r['fraction']:.0%}" if r["fraction"] * 100 == round(r["fraction"] * 100) else f"{r['fraction']:.1%}",
             str(int(r["weights_kept"])), *(f"{r[m]:.4f}" for m in result.metrics)] for r in result.rows]
    return columns, rows

