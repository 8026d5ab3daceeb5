"""configs/digits.yaml on its TEST rows, beside the same network with point weights and logistic regression.

Trains the Bayesian network (wall time includes data loading, training, the predictive and the figures), then
`model.type=deterministic` with the same data and settings, then scikit-learn's LogisticRegression on the same
standardised training rows; all three are scored with bbbrun's classification metrics. Needs bbbrun[sklearn].

    python benchmarks/bench_digits.py [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bbbrun.config import load_config
from bbbrun.evaluate.classification import ClassSummary, class_metrics
from bbbrun.runs.layout import new_run_dir
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "digits.yaml"
KEYS = ("accuracy", "nll", "brier", "ece")


def train(overrides: list[str], out: Path) -> tuple[dict[str, float], float]:
    started = time.perf_counter()
    session = start_session(load_config(CONFIG, overrides))
    metrics = run_training(session, new_run_dir(out, "digits")).metrics
    return {k: float(metrics[f"test_{k}"]) for k in KEYS}, time.perf_counter() - started


def logistic_regression(seed: int) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    session = start_session(load_config(CONFIG, [f"seed={seed}", "device=cpu"]))
    ds = session.dataset
    mean, std = ds.x_train.mean(0), ds.x_train.std(0)
    std[std == 0] = 1.0
    model = LogisticRegression(max_iter=5000).fit((ds.x_train - mean) / std, ds.y_train.ravel())
    assert ds.x_test is not None and ds.y_test is not None
    probs = torch.from_numpy(model.predict_proba((ds.x_test - mean) / std)).double()
    zero = torch.zeros(len(probs), dtype=torch.float64)
    found = class_metrics(ClassSummary(probs, zero, zero, zero), torch.from_numpy(ds.y_test.ravel()).long())
    return {k: float(found[k]) for k in KEYS}  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows = {"bayesian": train([f"seed={seed}"], Path(tmp)),
                    "deterministic": train([f"seed={seed}", "model.type=deterministic"], Path(tmp)),
                    "logistic regression": (logistic_regression(seed), float("nan"))}
            for name, (metrics, seconds) in rows.items():
                cells = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                wall = "" if seconds != seconds else f"  wall {seconds:.1f}s"  # nan: not a bbbrun run
                print(f"seed {seed}  {name:<20} {cells}{wall}", flush=True)


if __name__ == "__main__":
    main()
