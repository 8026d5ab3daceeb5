"""`bbbrun benchmark uci`: every split of each benchmark folder trained and scored as runs of one sweep.

The plan is an ordinary sweep plan (one run per data set and split), so the
sweep's executors, failure isolation and --resume apply; this module adds the
aggregate: mean and standard error over splits of the test RMSE and test
log-likelihood, in benchmark.json and benchmark.csv, with published results
beside them where the data set is known.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bbbrun.config import parse_override, read_yaml_mapping, set_dotted
from bbbrun.data.uci import REQUIRED_FILES, num_splits
from bbbrun.errors import ConfigError
from bbbrun.files import write_text_atomic
from bbbrun.runs.layout import SweepDir
from bbbrun.sweeps.grid import Axis, RunPlan, SweepPlan, SweepSpec, plan_run, run_dir_name
from bbbrun.sweeps.ranking import Goal, Metric
from bbbrun.sweeps.sweep import Prepared, resume_plan

SCORES = ("test_rmse", "test_ll")


@dataclass(frozen=True)
class BenchmarkRequest:
    folders: tuple[Path, ...]
    config: Path
    overrides: tuple[str, ...] = ()
    splits: int | None = None  # the first N splits of each folder; None: all
    resume: Path | None = None  # a benchmark directory to finish instead


def prepare(request: BenchmarkRequest) -> Prepared:
    """The plan to run: new from the folders, or read back from the benchmark directory being resumed."""
    if request.resume is None:
        return Prepared(plan_benchmark(request), None)
    if request.folders or request.overrides:
        raise ConfigError("--resume takes the benchmark directory alone; its sweep.yaml fixes every run")
    return resume_plan(request.resume)


def plan_benchmark(request: BenchmarkRequest) -> SweepPlan:
    """One run per (folder, split), checked before anything is created."""
    if not request.folders:
        raise ConfigError("give one or more benchmark folders, e.g. bbbrun benchmark uci ../shared/uci/*")
    base = read_yaml_mapping(request.config)
    for item in request.overrides:
        set_dotted(base, *parse_override(item))
    configs = [(folder.name, with_folder(base, folder)) for folder in map(check_folder, request.folders)]
    if len({label for label, _ in configs}) != len(configs):
        raise ConfigError("two benchmark folders have the same name; give each data set once")
    spec = SweepSpec(configs=configs, axes={"data.split": Axis("data.split", ())}, name="uci")
    runs: list[RunPlan] = []
    for label, raw in configs:
        count = num_splits(Path(raw["data"]["path"]))
        for split in range(min(count, request.splits or count)):
            run = plan_run(len(runs), spec, ((label, raw), split))
            # The data set is always a swept key, even when there is one: the aggregate groups by it.
            run.swept = {"config": label, "data.split": split}
            run.dir_name = run_dir_name(run.index, run.swept)
            runs.append(run)
    if runs and all(run.error for run in runs):
        raise ConfigError(f"no run of this benchmark is valid; the first: {runs[0].error}")
    return SweepPlan("uci", ["config", "data.split"], runs, Metric("val_nll", Goal.MINIMIZE))


def check_folder(folder: Path) -> Path:
    missing = [name for name in (*REQUIRED_FILES, "index_train_0.txt", "index_test_0.txt")
               if not (folder / name).is_file()]
    if not folder.is_dir() or missing:
        what = "is not a folder" if not folder.is_dir() else f"has no {missing[0]}"
        raise ConfigError(f"{folder} {what}; a UCI benchmark folder holds data.txt, index_features.txt, "
                          "index_target.txt and index_train_K.txt / index_test_K.txt")
    return folder.resolve()


def with_folder(base: dict[str, Any], folder: Path) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(base))  # a deep copy of plain data
    data = raw.setdefault("data", {})
    data.update({"source": "uci", "path": str(folder)})
    for key in ("target", "features", "categorical"):  # a CSV config's columns; the folder names its own
        data.pop(key, None)
    raw["name"] = folder.name
    return raw


# ------------------------------------------------------------- the aggregate


def aggregate(plan: SweepPlan, records: list[dict[str, Any]]) -> dict[str, Any]:
    """benchmark.json's content: the config, and per data set the splits and their mean ± se."""
    datasets: dict[str, Any] = {}
    for record in records:
        entry = datasets.setdefault(str(record["config"]), {"splits": []})
        if record.get("status") == "completed":
            entry["splits"].append({"split": record["data.split"], **{k: record.get(k) for k in SCORES},
                                    "seconds": record.get("train_seconds")})
    for name, entry in datasets.items():
        planned = sum(1 for r in records if r["config"] == name)
        entry.update({"n_splits": len(entry["splits"]), "n_planned": planned})
        for key in SCORES:
            entry[key] = mean_se([s[key] for s in entry["splits"] if isinstance(s[key], (int, float))])
    first = next((run.config for run in plan.runs if run.error is None), {})
    config = {k: v for k, v in first.items() if k != "name"}
    config["data"] = {k: v for k, v in config.get("data", {}).items() if k not in ("path", "split")}
    return {"config": config, "datasets": datasets}


def mean_se(values: list[float]) -> dict[str, float | None]:
    """Mean and standard error (std over splits / sqrt(number of splits))."""
    if not values:
        return {"mean": None, "se": None}
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "se": se}


def write_benchmark(sweep: SweepDir, result: dict[str, Any]) -> None:
    write_text_atomic(sweep.benchmark_json, json.dumps(result, indent=2))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["dataset", "split", *SCORES, "seconds"])
    for name, entry in result["datasets"].items():
        for s in entry["splits"]:
            writer.writerow([name, s["split"], *(s[k] for k in SCORES), s["seconds"]])
    write_text_atomic(sweep.benchmark_csv, buffer.getvalue())


# ------------------------------------------------------------- published results


def published() -> dict[str, Any]:
    text = resources.files("bbbrun.sweeps").joinpath("published_uci.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Ours beside the published VI, PBP and MC-dropout numbers (where the data set is known)."""
    known = published()
    methods = list(known["sources"])
    columns = ["data set", "splits", "test RMSE", "test LL", *(f"{m} LL" for m in methods)]
    rows = []
    for name, entry in result["datasets"].items():
        theirs = known["datasets"].get(name, {})
        rows.append([name, f"{entry['n_splits']}/{entry['n_planned']}", pm(entry["test_rmse"]), pm(entry["test_ll"]),
                     *(pm_pair(theirs.get(m, {}).get("ll")) for m in methods)])
    return columns, rows


def pm(stat: dict[str, float | None]) -> str:
    if stat["mean"] is None:
        return "-"
    return f"{stat['mean']:.3f}" + (f" ± {stat['se']:.3f}" if stat["se"] is not None else "")


def pm_pair(pair: list[float] | None) -> str:
    return "-" if not pair else f"{pair[0]:.2f} ± {pair[1]:.2f}"


def citations() -> list[str]:
    return [f"{key}: {text}" for key, text in published()["sources"].items()]
