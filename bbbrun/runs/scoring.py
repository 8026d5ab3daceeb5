"""`evaluate`: a trained run's metrics on a file with targets, read in chunks and combined exactly.

Every metric of evaluate.regression is a mean over points, except the root
mean squares (rmse, summed as squares) and calibration_error (the mean
absolute gap between observed and nominal coverage, recomputed from the
per-level counts). Each point's contribution depends on its own sampled
networks alone, so the result does not depend on the chunk size; the one
exception is crps, estimated from noise draws that depend on the rows
predicted alongside (its Monte Carlo error, not a bias).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bbbrun.data.inputs import read_input_chunks
from bbbrun.evaluate.regression import calibration_error, evaluate, summarize
from bbbrun.files import write_text_atomic
from bbbrun.runs.inference import TrainedModel, load_model, predictive_rows, with_samples
from bbbrun.runs.outputs import check_output_file


@dataclass
class MetricTotals:
    """Sums over points of a split's metrics, chunk by chunk."""

    num_points: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # mean * n, or mean square * n for a root mean square
    covered: dict[float, float] = field(default_factory=dict)  # calibration level -> points inside its interval

    def add(self, metrics: dict[str, object], num_points: int) -> None:
        """One chunk's metrics (means over its `num_points` points)."""
        self.num_points += num_points
        for key, value in metrics.items():
            if key == "calibration" and isinstance(value, list):
                for entry in value:
                    level = float(entry["nominal"])
                    self.covered[level] = self.covered.get(level, 0.0) + float(entry["observed"]) * num_points
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "calibration_error":
                term = float(value) ** 2 if is_root_mean_square(key) else float(value)
                self.sums[key] = self.sums.get(key, 0.0) + term * num_points

    def result(self) -> dict[str, object]:
        """The metrics of all points added so far, with `n` their number."""
        n = self.num_points
        out: dict[str, object] = {k: math.sqrt(v / n) if is_root_mean_square(k) else v / n
                                  for k, v in self.sums.items()}
        if self.covered:
            curve = [(level, round(count) / n) for level, count in sorted(self.covered.items())]
            out["calibration_error"] = calibration_error(curve)
            out["calibration"] = [{"nominal": level, "observed": observed} for level, observed in curve]
        out["n"] = n
        return out


def is_root_mean_square(key: str) -> bool:
    return key.startswith("rmse")


def evaluate_file(path: Path, input_csv: Path, samples: int | None = None) -> dict[str, object]:
    """The run's metrics on every row of `input_csv`, named as metrics.json's val_* keys without the prefix."""
    trained = load_model(path)
    if trained.model.likelihood.task == "classification":
        from bbbrun.runs.class_inference import evaluate_class_file

        return evaluate_class_file(trained, input_csv, samples)
    totals = MetricTotals()
    for chunk in read_input_chunks(input_csv, trained.inputs, with_target=True):
        assert chunk.y is not None
        totals.add(score_chunk(trained, chunk.x, torch.from_numpy(chunk.y), samples), len(chunk.y))
    return totals.result()


def score_chunk(trained: TrainedModel, x: np.ndarray, y: torch.Tensor, samples: int | None) -> dict[str, object]:
    """evaluate's metrics of some rows (means over them)."""
    cfg = with_samples(trained.cfg, samples)
    predictive = predictive_rows(trained.model, x, cfg)
    summary = summarize(predictive, cfg.predict.interval, exact=True)
    return evaluate(predictive, summary, y.to(predictive.f), None)


def write_metrics_json(path: Path, metrics: dict[str, object]) -> None:
    check_output_file(path, "--json")
    write_text_atomic(path, json.dumps(metrics, indent=2) + "\n")
