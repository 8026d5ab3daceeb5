"""bbbrun against the tutorial's own implementation, interleaved, on one machine.

    python benchmarks/bench_vs_reference.py --epochs 1000 --reps 3

Each repetition runs the reference (../shared/reference/seed_reference.py) and
bbbrun on configs/seed.yaml in fresh processes, in alternating order, with the
same epochs, samples and seed, then (unless --skip-cli) times the commands a
user types: `bbbrun --help`, `bbbrun train configs/default.yaml` and
`bbbrun plot` on that run. It prints per-repetition figures, then medians and
the ratios bbbrun / reference. Peak memory is the whole child process's
maximum resident set (ru_maxrss), read with os.wait4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference" / "seed_reference.py"
BBBRUN = [str(Path(sys.executable).parent / "bbbrun")]

# (what the table calls it, the reference's JSON key, bbbrun's worker key)
ROWS = [
    ("train ms/epoch", "ms_per_epoch", "ms_per_epoch"),
    ("predictive s (train+val sampling)", "predict_seconds_train_and_val", "predict_seconds_train_and_val"),
    ("  + summary s (moments, quantiles)", None, "summary_seconds_train_and_val"),
    ("peak RSS MB (whole process)", "peak_rss_mb", "peak_rss_mb"),
    ("val_rmse", "val_rmse_noisy", "val_rmse"),
    ("val_rmse_true", "val_rmse_true_function", "val_rmse_true"),
    ("val_nll", "val_nll_per_point", "val_nll"),
    ("val_coverage_90", "val_coverage_90", "val_coverage_90"),
]


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MB) of one child process; raises if it fails."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it, and says how much memory it peaked at
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed with {proc.returncode}:\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024  # KiB on Linux


def last_json(text: str) -> dict[str, Any]:
    return json.loads(text.strip().splitlines()[-1])


def run_reference(args: argparse.Namespace) -> dict[str, Any]:
    threads = ["--threads", str(args.threads)] if args.threads else []
    cmd = [sys.executable, str(REFERENCE), "--epochs", str(args.epochs), "--samples", str(args.samples),
           "--seed", str(args.seed), *threads]
    out, _, peak = run_child(cmd)
    result = last_json(out)
    result["peak_rss_mb"] = peak
    return result


def run_bbbrun(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--epochs", str(args.epochs),
           "--samples", str(args.samples), "--seed", str(args.seed), "--threads", str(args.threads),
           "--config", str(args.config)]
    out, _, peak = run_child(cmd)
    result = last_json(out)
    result["peak_rss_mb"] = peak
    return result


def run_cli(args: argparse.Namespace, out_root: Path) -> dict[str, float]:
    """Wall time of `bbbrun --help` and of the whole default training; peak RSS of `bbbrun plot`."""
    env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    _, help_s, _ = run_child([*BBBRUN, "--help"], env)
    _, train_s, train_rss = run_child([*BBBRUN, "train", "configs/default.yaml", "--out", str(out_root)], env)
    run_dir = next(out_root.rglob("checkpoint.pt")).parent
    _, plot_s, plot_rss = run_child([*BBBRUN, "plot", str(run_dir)], env)
    return {"help_s": help_s, "train_default_s": train_s, "train_default_rss_mb": train_rss,
            "plot_s": plot_s, "plot_rss_mb": plot_rss}


def median(rows: list[dict[str, Any]], key: str | None) -> float | None:
    values = [r[key] for r in rows if key is not None and r.get(key) is not None]
    return statistics.median(values) if values else None


def report(refs: list[dict[str, Any]], ours: list[dict[str, Any]], clis: list[dict[str, float]]) -> dict[str, Any]:
    print(f"\nmedians over {len(ours)} repetitions")
    print(f"{'':38s}{'reference':>12s}{'bbbrun':>12s}{'ratio':>9s}")
    summary: dict[str, Any] = {}
    for label, ref_key, our_key in ROWS:
        ref, our = median(refs, ref_key), median(ours, our_key)
        ratio = our / ref if ref and our is not None else None
        summary[label.strip()] = {"reference": ref, "bbbrun": our, "ratio": ratio}
        cells = [f"{v:12.4g}" if v is not None else f"{'-':>12s}" for v in (ref, our)]
        print(f"{label:38s}{cells[0]}{cells[1]}" + (f"{ratio:9.3f}" if ratio is not None else ""))
    for key in (clis[0] if clis else {}):
        value = median(clis, key)
        summary[key] = value
        print(f"{key:38s}{'':12s}{value:12.4g}")
    return summary


def worker(args: argparse.Namespace) -> None:
    """One bbbrun run in this process: train, time the predictive, compute the validation figures."""
    import torch

    from bbbrun.config import load_config
    from bbbrun.evaluate.predictive import sample_predictive
    from bbbrun.evaluate.regression import summarize
    from bbbrun.fit.loop import fit
    from bbbrun.runs import results
    from bbbrun.runs.session import start_session

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [f"train.epochs={args.epochs}", f"seed={args.seed}", f"predict.num_samples={args.samples}",
                 "device=cpu", f"train.log_every={args.epochs}", f"train.checkpoint_every={args.epochs}"]
    if args.threads:  # bbbrun trains with one thread unless its config says otherwise
        overrides.append(f"threads={args.threads}")
    cfg = load_config(Path(args.config), overrides)
    session = start_session(cfg)
    state = fit(session.trainee)
    ds = session.dataset
    started = time.perf_counter()
    samples = [sample_predictive(session.model, torch.from_numpy(x).to(session.device), args.samples,
                                        cfg.seed, cfg.predict.chunk_elements) for x in (ds.x_train, ds.x_val)]
    sampled = time.perf_counter()
    summaries = [summarize(s, cfg.predict.interval) for s in samples]
    summarized = time.perf_counter()
    metrics = results.run_metrics(session, dict(zip(("train", "val"), samples, strict=True)),
                                  dict(zip(("train", "val"), summaries, strict=True)))
    print(json.dumps({
        "epochs": state.epoch, "ms_per_epoch": 1000 * state.train_seconds / state.epoch,
        "predict_seconds_train_and_val": sampled - started, "summary_seconds_train_and_val": summarized - sampled,
        "val_rmse": metrics["val_rmse"], "val_rmse_true": metrics["val_rmse_true"],
        "val_nll": metrics["val_nll"], "val_coverage_90": metrics["val_coverage_90"],
        "threads": torch.get_num_threads(),
    }))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="compare", choices=["compare", "worker"])
    parser.add_argument("--epochs", type=int, default=1000, help="training epochs (the tutorial trains 5000)")
    parser.add_argument("--samples", type=int, default=1000, help="predictive samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="repetition i uses seeds[i %% len]; quality across seeds")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both (0: torch's default)")
    parser.add_argument("--config", default="configs/seed.yaml")
    parser.add_argument("--skip-cli", action="store_true", help="skip the bbbrun --help / train / plot timings")
    parser.add_argument("--json", type=Path, help="also write the medians here")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.mode == "worker":
        worker(args)
        return
    print(f"load average at start: {os.getloadavg()}; cpus: {os.cpu_count()}")
    refs, ours, clis = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            if args.seeds:
                args.seed = args.seeds[rep % len(args.seeds)]
            # Alternate who goes first so a drift in machine load hits both alike.
            pair = (run_reference, run_bbbrun) if rep % 2 == 0 else (run_bbbrun, run_reference)
            results = {fn: fn(args) for fn in pair}
            refs.append(results[run_reference])
            ours.append(results[run_bbbrun])
            if not args.skip_cli:
                clis.append(run_cli(args, Path(tmp) / f"rep{rep}"))
            ref_shown = {k: v for k, v in refs[-1].items() if k != "log"}
            print(f"rep {rep} (seed {args.seed}):\n  reference {json.dumps(ref_shown)}\n  bbbrun {json.dumps(ours[-1])}"
                  + (f"\n  cli {json.dumps(clis[-1])}" if clis else ""), flush=True)
    summary = report(refs, ours, clis)
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
