"""How calibration of configs/default.yaml holds across data sizes.

Trains the config at each `data.num_points` (the same cubic, noise and 80/20
split, only smaller or larger) for each seed, exactly as `bbbrun train` does,
and prints the held-out coverage of the 90% interval, the calibration error
and the NLL's excess over the oracle (true function, true noise).

    python benchmarks/bench_sizes.py [--config configs/default.yaml] [--sizes 500,2000,5000,20000] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_default import describe_machine, oracle_nll

from bbbrun.config import load_config
from bbbrun.runs import runner
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import start_session


def run(config: Path, num_points: int, seed: int) -> dict[str, Any]:
    cfg = load_config(config, [f"data.num_points={num_points}", f"seed={seed}", "device=cpu"])
    session = start_session(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        result = runner.run_training(session, RunDir(Path(tmp)))
    if result.status != "completed":
        raise SystemExit(f"{num_points} points, seed {seed}: training {result.status}")
    ds = session.dataset
    excess = result.metrics["val_nll"] - oracle_nll(cfg, ds.y_val.ravel(), ds.f_val.ravel())
    return {**result.metrics, "nll_excess": excess}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path("configs/default.yaml"))
    parser.add_argument("--sizes", default="500,2000,5000,20000")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    print(f"{args.config}; machine: {describe_machine()}")
    print(f"{'points':>7} {'coverage_90 per seed':>28} {'mean':>6} {'calib_err mean':>15} {'nll-oracle mean':>16}")
    for size in (int(s) for s in args.sizes.split(",")):
        rows = [run(args.config, size, int(seed)) for seed in args.seeds.split(",")]
        cover = [r["val_coverage_90"] for r in rows]
        print(f"{size:>7} {', '.join(f'{c:.3f}' for c in cover):>28} {statistics.fmean(cover):6.3f} "
              f"{statistics.fmean(r['val_calibration_error'] for r in rows):15.4f} "
              f"{statistics.fmean(r['nll_excess'] for r in rows):16.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
