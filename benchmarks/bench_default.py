"""Measure configs/default.yaml against the targets of the calibrated default.

Trains the config once per seed exactly as `bbbrun train` does (same session,
fit loop and metrics.json figures, written to a temporary directory), then
prints each target with the measured values and pass or fail.

    python benchmarks/bench_default.py [--config configs/default.yaml] [--seeds 0,1,2,3,4]

The seed also draws the data's noise, so each seed is a fresh data set from
the same generator. A data set's own floor on val_nll is the NLL of the true
function with the true noise (the "oracle"); it is 1.824 on average but moves
by about +-0.01 between 4000-point validation sets, so val_nll is checked as
written on the config's own data and, on every seed, as its excess over that
seed's oracle (at most 1.835 - 1.824 = 0.011).
Exit status: 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bbbrun.config import Config, load_config
from bbbrun.runs import runner
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import start_session

NLL_TARGET = 1.835
NLL_FLOOR = 1.824  # entropy of N(0, 1.5^2)
COVERAGE_RANGE = (0.885, 0.915)
CALIBRATION_MAX = 0.02
RMSE_TRUE_MAX = 0.15
SECONDS_MAX = 10.0


def oracle_nll(cfg: Config, y: np.ndarray, f: np.ndarray) -> float:
    """Mean -log N(y; f, noise_std^2): the best any predictive can do on these points."""
    s = cfg.data.noise_std
    return float(np.mean(0.5 * ((y - f) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)))


def run_seed(config: Path, seed: int) -> dict[str, Any]:
    cfg = load_config(config, [f"seed={seed}", "device=cpu"])
    session = start_session(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        result = runner.run_training(session, RunDir(Path(tmp)))
    if result.status != "completed":
        raise SystemExit(f"seed {seed}: training {result.status}")
    metrics = dict(result.metrics)
    metrics["oracle_nll"] = oracle_nll(cfg, session.dataset.y_val.ravel(), session.dataset.f_val.ravel())
    metrics["seed"] = seed
    return metrics


def checks(rows: list[dict[str, Any]], config_seed: int) -> list[tuple[str, str, bool]]:
    """(target, measured, passed) for every target."""
    def fmt(key: str, digits: int) -> str:
        return ", ".join(f"{r[key]:.{digits}f}" for r in rows)

    own = [r for r in rows if r["seed"] == config_seed]
    excess = [r["val_nll"] - r["oracle_nll"] for r in rows]
    result = []
    if own:
        result.append((f"val_nll <= {NLL_TARGET} (config's own data, seed {config_seed})",
                       f"{own[0]['val_nll']:.4f}", own[0]["val_nll"] <= NLL_TARGET))
    result += [
        (f"val_nll - oracle <= {NLL_TARGET - NLL_FLOOR:.3f} (every seed)",
         ", ".join(f"{e:.4f}" for e in excess), max(excess) <= NLL_TARGET - NLL_FLOOR),
        (f"{COVERAGE_RANGE[0]} <= val_coverage_90 <= {COVERAGE_RANGE[1]}", fmt("val_coverage_90", 3),
         all(COVERAGE_RANGE[0] <= r["val_coverage_90"] <= COVERAGE_RANGE[1] for r in rows)),
        (f"val_calibration_error <= {CALIBRATION_MAX}", fmt("val_calibration_error", 4),
         all(r["val_calibration_error"] <= CALIBRATION_MAX for r in rows)),
        (f"val_rmse_true <= {RMSE_TRUE_MAX}", fmt("val_rmse_true", 3),
         all(r["val_rmse_true"] <= RMSE_TRUE_MAX for r in rows)),
        (f"train_seconds <= {SECONDS_MAX}", fmt("train_seconds", 1),
         all(r["train_seconds"] <= SECONDS_MAX for r in rows)),
    ]
    return result


def describe_machine() -> str:
    load = "n/a" if not hasattr(os, "getloadavg") else " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads, python {platform.python_version()}, load average {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    config_seed = load_config(args.config).seed
    print(f"{args.config}, seeds {seeds}, device cpu; machine: {describe_machine()}")
    rows = []
    for seed in seeds:
        r = run_seed(args.config, seed)
        rows.append(r)
        print(f"seed {seed}: val_nll {r['val_nll']:.4f} (oracle {r['oracle_nll']:.4f}), "
              f"coverage_90 {r['val_coverage_90']:.3f}, calibration_error {r['val_calibration_error']:.4f}, "
              f"rmse_true {r['val_rmse_true']:.3f}, noise_std {r['noise_std']:.3f}, "
              f"train {r['train_seconds']:.1f} s", flush=True)
    print(f"load average after: {describe_machine().rsplit('load average ', 1)[1]}")
    print()
    results = checks(rows, config_seed)
    width = max(len(t) for t, _, _ in results)
    for target, measured, passed in results:
        print(f"{'PASS' if passed else 'FAIL'}  {target:<{width}}  {measured}")
    return 0 if all(p for _, _, p in results) else 1


if __name__ == "__main__":
    sys.exit(main())
