"""Expanding a sweep into runs: Hydra's multirun grammar, sweep files, the cartesian grid.

Nothing here trains or imports torch: `bbbrun sweep --dry-run` and the
executors both start from the list of `RunPlan`s this module builds.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from bbbrun.config import (
    config_from_dict,
    config_to_dict,
    parse_override,
    read_yaml_mapping,
    set_dotted,
)
from bbbrun.errors import ConfigError
from bbbrun.names import MAX_NAME_CHARS, check_name
from bbbrun.reprs import short_repr
from bbbrun.sweeps.ranking import Goal, Metric, read_metric
from bbbrun.sweeps.slurm_options import SlurmOptions, read_slurm

SWEEP_FILE_KEYS = ("name", "config", "overrides", "parameters", "metric", "slurm")
RANGE = re.compile(r"^range\((.*)\)$")
UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_RUNS = 10_000  # a sweep's grid; every run gets a directory and a line of the summary


class ExecutorKind(str, Enum):
    LOCAL = "local"
    SERIAL = "serial"
    DASK = "dask"
    SLURM = "slurm"


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[Any, ...]


@dataclass
class RunPlan:
    index: int
    dir_name: str
    swept: dict[str, Any]  # the swept keys' values ("config" when several config files are swept)
    config: dict[str, Any]  # the run's full config as plain YAML data
    error: str | None = None  # why this combination cannot run, when it cannot


@dataclass
class SweepPlan:
    name: str
    swept_keys: list[str]
    runs: list[RunPlan]
    metric: Metric = field(default_factory=Metric)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


# ------------------------------------------------------------- the grammar


def parse_sweep_override(item: str) -> tuple[str, Any, Axis | None]:
    """`k=a,b` or `k=range(0,4)` -> an Axis; `k=v` -> a fixed (key, value) and no axis."""
    key, value = parse_override(item)
    text = item.partition("=")[2].strip()
    match = RANGE.match(text)
    if match:
        return key, None, Axis(key, tuple(parse_range(key, match.group(1))))
    pieces = split_top_level(text)
    if len(pieces) > 1:
        if "" in pieces:  # `a,,b` or `a,` is a slip, not a null: null is spelt out
            raise ConfigError(f"{key}={text}: value {pieces.index('') + 1} is empty; drop the extra comma "
                              "(write null for a null value)")
        return key, None, distinct_axis(key, [parse_override(f"{key}={p}")[1] for p in pieces])
    return key, value, None


def distinct_axis(key: str, values: list[Any], where: str = "") -> Axis:
    """An axis whose values all differ: a repeated value would train the same run twice."""
    seen: list[Any] = []  # values may be lists, so not a set
    for value in values:
        token = number_or_value(value)
        if token in seen:
            raise ConfigError(f"{where}{key} sweeps {format_value(value)} twice; give each value once")
        seen.append(token)
    return Axis(key, tuple(values))


def number_or_value(value: Any) -> Any:
    """A number as a float (PyYAML leaves `1e-2` a string that the config reads as 0.01), else the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return (type(value).__name__, value)
    try:
        return float(value)
    except ValueError:
        return value


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so `[0.05,0.95]` stays one value."""
    pieces, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces]


def number_or_text(value: Any) -> Any:
    """YAML 1.1 reads 1e9 (no dot, no sign) as text; as a range bound it can only mean the number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_range(key: str, inner: str) -> list[int | float]:
    """Hydra's range(stop), range(start, stop) or range(start, stop, step); stop excluded."""
    try:
        args = [number_or_text(yaml.safe_load(a)) for a in inner.split(",")]
    except yaml.YAMLError:
        args = []
    if not 1 <= len(args) <= 3 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ConfigError(f"{key}=range({inner}): write range(stop), range(start, stop) or range(start, stop, step)")
    if len(args) == 1:
        args = [0, *args]
    if len(args) == 2:
        args = [*args, 1]
    start, stop, step = args
    if not all(math.isfinite(a) for a in args):
        raise ConfigError(f"{key}=range({inner}): start, stop and step must be finite numbers")
    if step == 0:
        raise ConfigError(f"{key}=range({inner}): the step must not be 0")
    # The tolerance keeps range(0.1, 0.4, 0.1) at three values despite rounding in (0.4 - 0.1) / 0.1.
    span = (stop - start) / step - 1e-9
    if not math.isfinite(span) or span > MAX_RUNS:
        raise ConfigError(f"{key}=range({inner}) has more than {MAX_RUNS:,} values; a sweep runs at most "
                          f"{MAX_RUNS:,} runs")
    count = max(0, math.ceil(span))
    values = [start + i * step for i in range(count)]
    if not values:
        raise ConfigError(f"{key}=range({inner}) is empty")
    return values if all(isinstance(a, int) for a in args) else [round(v, 12) for v in values]


# ------------------------------------------------------------- the sources


@dataclass
class SweepSpec:
    """What the user asked for, before expansion."""

    configs: list[tuple[str, dict[str, Any]]]  # (label, raw config) per config file
    fixed: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, Axis] = field(default_factory=dict)
    metric: Metric = field(default_factory=Metric)
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    name: str | None = None


def read_spec(paths: list[Path], overrides: list[str]) -> SweepSpec:
    """Config files (the grid's first axis) or one sweep file, then command-line overrides."""
    if not paths:
        raise ConfigError("give one or more config files or a sweep file, e.g. bbbrun sweep configs/default.yaml")
    raws = [(path, read_yaml_mapping(path)) for path in paths]
    sweep_files = [path for path, raw in raws if "parameters" in raw or "metric" in raw or "config" in raw]
    if sweep_files and len(paths) > 1:
        raise ConfigError(f"{sweep_files[0]} is a sweep file; give it alone, not with other files")
    spec = read_sweep_file(*raws[0]) if sweep_files else SweepSpec(configs=config_axis(raws))
    given: set[str] = set()
    for item in overrides:
        key, value, axis = parse_sweep_override(item)
        if key in given:
            raise ConfigError(f"{key} is given twice; give each key once (write {key}=a,b to sweep several values)")
        given.add(key)
        spec.axes.pop(key, None)
        spec.fixed.pop(key, None)
        if axis is None:
            spec.fixed[key] = value
        else:
            spec.axes[key] = axis
    return spec


def config_axis(raws: list[tuple[Path, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    stems = [path.stem for path, _ in raws]
    unique = len(set(stems)) == len(stems)
    return [(path.stem if unique else str(path), raw) for path, raw in raws]


def read_sweep_file(path: Path, raw: dict[str, Any]) -> SweepSpec:
    unknown = [k for k in raw if k not in SWEEP_FILE_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown sweep file key {unknown[0]!r} (allowed: {', '.join(SWEEP_FILE_KEYS)})")
    base = raw.get("config")
    if isinstance(base, str):
        base = read_yaml_mapping(path.parent / base)
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: 'config' must be a config file path (relative to the sweep file) or a mapping")
    fixed = raw.get("overrides") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: 'overrides' must be a mapping of key: value")
    return SweepSpec(
        configs=[(path.stem, base)], fixed=dict(fixed), axes=read_parameters(path, raw.get("parameters") or {}),
        metric=read_metric(path, raw.get("metric") or {}), slurm=read_slurm(path, raw.get("slurm") or {}),
        name=check_name(str(raw.get("name") or path.stem), f"{path}: name"),
    )


def read_parameters(path: Path, raw: Any) -> dict[str, Axis]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'parameters' must map each key to {{values: [...]}}")
    axes = {}
    for key, entry in raw.items():
        values = entry.get("values") if isinstance(entry, dict) else entry
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: parameters.{key} needs a non-empty list, e.g. {{values: [1, 2]}}")
        axes[str(key)] = distinct_axis(str(key), values, f"{path}: parameters.")
    return axes


# ------------------------------------------------------------- expansion


def expand(spec: SweepSpec) -> SweepPlan:
    """The cartesian product: config files first, then each axis in the order given."""
    for _, raw in spec.configs:  # fail on a misspelt key before anything runs
        scratch = copy.deepcopy(raw)
        for key in [*spec.fixed, *spec.axes]:
            set_dotted(scratch, key, None)
    check_grid_size(spec)
    swept_keys = (["config"] if len(spec.configs) > 1 else []) + list(spec.axes)
    grid = itertools.product(spec.configs, *(axis.values for axis in spec.axes.values()))
    runs = [plan_run(i, spec, combo) for i, combo in enumerate(grid)]
    if runs and all(run.error for run in runs):
        raise ConfigError(f"no run of this sweep is valid; the first: {runs[0].error}")
    return SweepPlan(sweep_name(spec), swept_keys, runs, spec.metric, spec.slurm)


def check_grid_size(spec: SweepSpec) -> None:
    """Refuse a grid of more than MAX_RUNS runs before any of it is built."""
    sizes = [len(spec.configs), *(len(axis.values) for axis in spec.axes.values())]
    if math.prod(sizes) > MAX_RUNS:
        shape = " x ".join(map(str, sizes))
        raise ConfigError(f"this sweep has {math.prod(sizes):,} runs ({shape}); at most {MAX_RUNS:,}: "
                          "sweep fewer values")


def plan_run(index: int, spec: SweepSpec, combo: tuple[Any, ...]) -> RunPlan:
    (label, base), values = combo[0], combo[1:]
    swept = dict(zip(spec.axes, values, strict=True))
    if len(spec.configs) > 1:
        swept = {"config": label, **swept}
    raw = copy.deepcopy(base)
    for key, value in [*spec.fixed.items(), *zip(spec.axes, values, strict=True)]:
        set_dotted(raw, key, value)
    try:
        config, error = config_to_dict(config_from_dict(raw)), None
    except ConfigError as err:
        config, error = raw, str(err)
    return RunPlan(index, run_dir_name(index, swept), swept, config, error)


def sweep_name(spec: SweepSpec) -> str:
    if spec.name:
        return spec.name
    names = list(dict.fromkeys(str(spec.fixed.get("name") or raw.get("name") or "run") for _, raw in spec.configs))
    return UNSAFE.sub("_", "+".join(names))[:MAX_NAME_CHARS].lstrip(".") or "sweep"


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def run_dir_name(index: int, swept: dict[str, Any]) -> str:
    label = ",".join(f"{k}={format_value(v)}" for k, v in swept.items()) or "run"
    return f"{index:03d}_{UNSAFE.sub('_', label)[:120]}"


def plan_from_dict(raw: Any, where: Path) -> SweepPlan:
    """A plan as `plan_to_dict` wrote it (read back from the sweep directory at `where`), checked as hostile:
    the recorded directory names must be plain and distinct, every field of the type bbbrun wrote."""
    try:
        runs = [RunPlan(**run) for run in raw["runs"]]
        metric = Metric(raw["metric"]["name"], Goal(raw["metric"]["goal"]))
        plan = SweepPlan(raw["name"], list(raw["swept_keys"]), runs, metric, read_slurm(where, raw["slurm"]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"{where} is not a sweep plan written by bbbrun sweep ({short_repr(err, 120)})") from None
    check_plan(plan, where)
    return plan


def check_plan(plan: SweepPlan, where: Path) -> None:
    """Refuse a hand-edited plan whose names or runs bbbrun could not have written."""
    broken = f"{where} was edited or is corrupt"
    if not isinstance(plan.name, str) or not isinstance(plan.metric.name, str):
        raise ConfigError(f"{broken}: its name and metric must be strings")
    check_name(plan.name, f"{where}: name")
    names = [run.dir_name for run in plan.runs]
    for run in plan.runs:
        if not isinstance(run.index, int) or not isinstance(run.config, dict) or not isinstance(run.swept, dict):
            raise ConfigError(f"{broken}: run {short_repr(run.index)} is not an index, swept values and a config")
        check_name(run.dir_name, f"{where}: run {run.index}'s directory")
    if len(set(names)) != len(names) or len({run.index for run in plan.runs}) != len(plan.runs):
        raise ConfigError(f"{broken}: two runs share a directory or an index")


def plan_to_dict(plan: SweepPlan) -> dict[str, Any]:
    data = dataclasses.asdict(plan)
    data["metric"]["goal"] = plan.metric.goal.value
    return data
