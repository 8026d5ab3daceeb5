"""How much batching K runs into one model saves: per-step scaling, threads, and whole commands.

    python benchmarks/bench_batched.py steps  [--config configs/uci.yaml] [--members 1,2,5,10,20,50,100]
    python benchmarks/bench_batched.py threads [--config configs/default.yaml] [--members 1,20]
    python benchmarks/bench_batched.py commands [--uci ../shared/uci] [--parts default,boston,all]

`steps`: trains K members (seeds 0..K-1 of the config; a `uci` config takes split 0's data for all) for
a fixed number of steps with `fit_group`, against one run with today's `fit`, and prints ms per step,
the batched step's cost per member, and the speed-up K * t(one run) / t(group).

`threads`: the same step timing with 1 and with 2 torch threads.

`commands`: wall time of whole commands as a user types them (each in a fresh process):
`bbbrun train configs/default.yaml` against `... seeds=20`; `bbbrun benchmark uci` on one split of
bostonHousing against all 20; and all six sets of the benchmark, 20 splits each.

Timings depend on the machine and its load; every figure in the README says how it was taken.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bbbrun.config import config_from_dict, config_to_dict, load_config
from bbbrun.fit.group import MemberCallbacks, fit_group
from bbbrun.fit.loop import Callbacks, batches_per_epoch, fit, intra_op_threads
from bbbrun.runs.session import Session, start_session

REPO = Path(__file__).resolve().parents[1]
STEPS = 600


def sessions(config: Path, count: int, steps: int, uci: Path) -> list[Session]:
    raw = config_to_dict(load_config(config, [f"data.path={uci / 'bostonHousing'}"] if "uci" in config.name else []))
    made = []
    for seed in range(count):
        member = copy.deepcopy(raw)
        member["seed"], member["device"] = seed, "cpu"
        member["train"]["epochs"], member["train"]["min_steps"] = 1, steps
        member["train"]["log_every"] = member["train"]["checkpoint_every"] = 10**6
        made.append(start_session(config_from_dict(member)))
    return made


def steps_of(session: Session) -> int:
    cfg = session.cfg.train
    epochs = max(cfg.epochs, -(-(cfg.min_steps or 0) // batches_per_epoch(cfg, session.trainee.data.num_train)))
    return epochs * batches_per_epoch(cfg, session.trainee.data.num_train)


def time_single(config: Path, uci: Path, threads: int | None = None) -> float:
    (one,) = sessions(config, 1, STEPS, uci)
    with intra_op_threads(threads):
        started = time.perf_counter()
        fit(one.trainee)
    return (time.perf_counter() - started) / steps_of(one)


def time_group(config: Path, count: int, uci: Path, threads: int | None = None) -> float:
    members = sessions(config, count, STEPS, uci)
    calls = MemberCallbacks([Callbacks() for _ in members])
    started = time.perf_counter()
    if threads is None:
        fit_group([s.trainee for s in members], calls)
    else:
        with intra_op_threads(threads):
            from bbbrun.fit import group

            group._fit_group(group.Group([s.trainee for s in members]), dict(enumerate(calls.members)),
                             lambda: None, members[0].cfg.train.batch_size)
    return (time.perf_counter() - started) / steps_of(members[0])


def bench_steps(args: argparse.Namespace) -> None:
    time_single(args.config, args.uci)  # warm up
    single = min(time_single(args.config, args.uci) for _ in range(3))
    print(f"{args.config}: one run with fit(): {1e3 * single:.3f} ms/step ({STEPS} steps, best of 3)")
    print(f"{'K':>5} {'ms/step':>9} {'ms/step/member':>15} {'speed-up':>9}")
    for count in args.members:
        group = min(time_group(args.config, count, args.uci) for _ in range(2))
        print(f"{count:>5} {1e3 * group:>9.3f} {1e3 * group / count:>15.4f} {count * single / group:>9.1f}")


def bench_threads(args: argparse.Namespace) -> None:
    for count in args.members:
        for threads in (1, 2):
            group = min(time_group(args.config, count, args.uci, threads) for _ in range(2))
            print(f"K={count:<4} threads={threads}: {1e3 * group:.3f} ms/step")


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds


def bench_commands(args: argparse.Namespace) -> None:
    bbbrun = str(Path(sys.executable).parent / "bbbrun")
    with tempfile.TemporaryDirectory() as tmp:
        out = ["--out", tmp]
        if "default" in args.parts:
            one = timed([bbbrun, "train", "configs/default.yaml", "device=cpu", *out], REPO)
            twenty = timed([bbbrun, "train", "configs/default.yaml", "device=cpu", "seeds=20", *out], REPO)
            print(f"default.yaml: one run {one:.1f} s; seeds=20 {twenty:.1f} s; ratio {twenty / one:.2f}")
        if "boston" in args.parts:
            boston = str(args.uci / "bostonHousing")
            one = timed([bbbrun, "benchmark", "uci", boston, "--splits", "1", *out], REPO)
            twenty = timed([bbbrun, "benchmark", "uci", boston, *out], REPO)
            print(f"uci.yaml bostonHousing: one split {one:.1f} s; 20 splits {twenty:.1f} s; ratio {twenty / one:.2f}")
        if "all" in args.parts:
            sets = [str(p) for p in sorted(args.uci.iterdir()) if p.is_dir()]
            every = timed([bbbrun, "benchmark", "uci", *sets, *out], REPO)
            print(f"uci.yaml all {len(sets)} sets x 20 splits: {every:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("steps", "threads", "commands"))
    parser.add_argument("--config", type=Path, default=REPO / "configs/uci.yaml")
    parser.add_argument("--members", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 5, 10, 20, 50, 100])
    parser.add_argument("--uci", type=Path, default=REPO.parent / "shared/uci")
    parser.add_argument("--parts", default="default,boston,all",
                        help="commands: which of default, boston, all (the six-set benchmark) to time")
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}")
    {"steps": bench_steps, "threads": bench_threads, "commands": bench_commands}[args.part](args)


if __name__ == "__main__":
    main()
