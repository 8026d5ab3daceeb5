"""A sweep file's `slurm:` section: the options of a Slurm job array, each checked before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bbbrun.config import unknown_key_message
from bbbrun.errors import ConfigError
from bbbrun.reprs import short_repr


@dataclass(frozen=True)
class SlurmOptions:
    # "local" runs the job array on this machine through submitit's local executor.
    cluster: str = "slurm"
    partition: str | None = None
    time_min: int = 60
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    array_parallelism: int = 64


# Each Slurm option's type and smallest value (None: any string); checked before a sweep directory exists.
SLURM_RULES: dict[str, tuple[type, float | None]] = {
    "cluster": (str, None), "partition": (str, None), "time_min": (int, 1), "gpus_per_node": (int, 0),
    "cpus_per_task": (int, 1), "mem_gb": (float, 0.001), "array_parallelism": (int, 1),
}
SLURM_CLUSTERS = ("slurm", "local", "debug")


def read_slurm(path: Path, raw: Any) -> SlurmOptions:
    names = [f.name for f in dataclasses.fields(SlurmOptions)]
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'slurm' must be a mapping with keys from {', '.join(names)}")
    for key, value in raw.items():
        if key not in SLURM_RULES:
            raise ConfigError(unknown_key_message("slurm", short_repr(key) if not isinstance(key, str) else key,
                                                  names, source="slurm"))
        check_slurm_value(path, key, value)
    return SlurmOptions(**raw)


def check_slurm_value(path: Path, key: str, value: Any) -> None:
    kind, least = SLURM_RULES[key]
    if value is None and key in ("partition", "mem_gb"):
        return
    numeric = kind is not str and isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = isinstance(value, str) if kind is str else numeric and (kind is float or value == int(value))
    if not ok or (least is not None and value < least) or (key == "cluster" and value not in SLURM_CLUSTERS):
        want = f"one of {', '.join(SLURM_CLUSTERS)}" if key == "cluster" else (
            "a string" if kind is str else f"{'an integer' if kind is int else 'a number'} >= {least}")
        raise ConfigError(f"{path}: slurm.{key} must be {want}, got {short_repr(value)}")
