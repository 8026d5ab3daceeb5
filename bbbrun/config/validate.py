"""Turning plain data into a checked Config: types coerced, ranges and cross-key rules enforced."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from enum import Enum
from typing import Any

from bbbrun.config.budget import check_budget
from bbbrun.config.schema import Config, DataConfig, KLEstimator, Prior, Source
from bbbrun.errors import ConfigError
from bbbrun.names import check_name
from bbbrun.reprs import short_repr


def unknown_key_message(prefix: str, key: str, allowed: list[str], source: str = "config") -> str:
    key = key if len(key) <= 80 else key[:77] + "..."
    full = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]!r}?" if close else ""
    return f"unknown {source} key {full!r}{hint} (allowed here: {', '.join(allowed)})"


def config_from_dict(raw: dict[str, Any]) -> Config:
    cfg = _build(Config, raw, prefix="")
    check_consistency(cfg)
    check_budget(cfg)
    if cfg.data.path is not None:
        # Absolute from here on, so a run's config.yaml and checkpoint find the data from any directory.
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=os.path.abspath(cfg.data.path)))
    return cfg


def section_type(cls: type, name: str) -> type | None:
    hint = typing.get_type_hints(cls)[name]
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {short_repr(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(unknown_key_message(prefix, key if isinstance(key, str) else short_repr(key),
                                                  list(fields)))
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        if name not in raw:
            continue
        key = f"{prefix}.{name}" if prefix else name
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], raw[name], key)
        else:
            values[name] = _coerce(key, raw[name], hints[name], spec.metadata)
    return cls(**values)


def _coerce(key: str, value: Any, hint: Any, rules: typing.Mapping[str, Any]) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[-1:] == (Ellipsis,):
        return _coerce_names(key, value)
    if typing.get_origin(hint) is tuple:
        return _coerce_pair(key, value, rules)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _coerce_choice(key, value, hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {short_repr(value)}")
        return value
    if hint is int:
        return _check_range(key, _coerce_int(key, value), rules)
    if hint is float:
        return _check_range(key, _coerce_float(key, value), rules)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string, got {short_repr(value)}")
    return value


def _coerce_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise ConfigError(f"{key} must be an integer, got {short_repr(value)}")
    return int(value)


def _coerce_float(key: str, value: Any) -> float:
    # PyYAML reads 1e-3 (no dot) as a string, so numeric strings are accepted.
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {short_repr(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {short_repr(value)}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be a finite number, got {short_repr(value)}")
    return number


def _coerce_choice(key: str, value: Any, enum: type[Enum]) -> Enum:
    allowed = [e.value for e in enum]
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {short_repr(value)}")
    return enum(value)


def _coerce_names(key: str, value: Any) -> tuple[str, ...]:
    """A list of column names; one name alone is accepted as a list of one."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{key} must be a list of column names, got {short_repr(value)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} names a column twice: {short_repr(value)}")
    return tuple(names)


def _coerce_pair(key: str, value: Any, rules: typing.Mapping[str, Any]) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key} must be a list of two numbers, got {short_repr(value)}")
    pair = tuple(_check_range(key, _coerce_float(key, v), rules) for v in value)
    return (pair[0], pair[1])


def _check_range(key: str, value: float, rules: typing.Mapping[str, Any]) -> Any:
    bounds = {"gt": (">", lambda a, b: a > b), "ge": (">=", lambda a, b: a >= b),
              "lt": ("<", lambda a, b: a < b), "le": ("<=", lambda a, b: a <= b)}
    for rule, (symbol, ok) in bounds.items():
        if rule in rules and not ok(value, rules[rule]):
            raise ConfigError(f"{key} must be {symbol} {rules[rule]}, got {short_repr(value)}")
    return value


def check_consistency(cfg: Config) -> None:
    """Rules that tie several keys together."""
    if cfg.data.x_min >= cfg.data.x_max:
        raise ConfigError(f"data.x_min must be < data.x_max, got {cfg.data.x_min} >= {cfg.data.x_max}")
    lo, hi = cfg.predict.interval
    if lo >= hi:
        raise ConfigError(f"predict.interval must be [lower, upper] with lower < upper, got {[lo, hi]}")
    check_data_source(cfg.data)
    if cfg.model.kl is KLEstimator.CLOSED_FORM and cfg.model.prior is Prior.SCALE_MIXTURE:
        raise ConfigError(
            "model.kl=closed_form needs model.prior=gaussian; the scale-mixture prior has no "
            "closed-form KL, use model.kl=monte_carlo"
        )
    if cfg.model.prior is Prior.SCALE_MIXTURE and cfg.model.sigma_2 >= cfg.model.sigma_1:
        raise ConfigError("model.sigma_2 must be < model.sigma_1 (the narrow component comes second)")
    check_device_name(cfg.device)
    check_name(cfg.name, "name")


def check_data_source(data: DataConfig) -> None:
    """Generated data needs enough points; files and folders need a path, a CSV its target column."""
    check_csv_only_keys(data)
    if data.source is Source.FUNCTION:
        num_val = int(data.num_points * data.val_fraction)
        if num_val < 1 or num_val >= data.num_points:
            raise ConfigError(
                f"data.val_fraction={data.val_fraction} leaves no validation or no training points "
                f"out of data.num_points={data.num_points}"
            )
        return
    if data.source is Source.SKLEARN:
        if not data.name:
            raise ConfigError("data.source=sklearn needs data.name, one of scikit-learn's bundled sets "
                              "(digits, iris, wine, breast_cancer, diabetes)")
        return
    if not data.path:
        what = {Source.CSV: "a CSV file", Source.NPZ: "an NPZ file", Source.UCI: "a UCI benchmark folder",
                Source.IDX: "a folder of MNIST-format IDX files"}[data.source]
        raise ConfigError(f"data.source={data.source.value} needs data.path, {what}")
    if data.source is Source.CSV and not data.target:
        raise ConfigError("data.source=csv needs data.target, the name of the column to predict")


def check_csv_only_keys(data: DataConfig) -> None:
    """Column names mean something only to a CSV file; elsewhere they would be silently ignored."""
    if data.source is Source.CSV:
        return
    given = [key for key, value in (("target", data.target), ("features", data.features),
                                    ("categorical", data.categorical)) if value]
    if given:
        raise ConfigError(f"data.{given[0]} names CSV columns, but data.source={data.source.value}; it applies only "
                          "to data.source=csv (an NPZ file's inputs are its array x and its target y)")


def check_device_name(device: str) -> None:
    if device in ("auto", "cpu", "cuda"):
        return
    prefix, _, index = device.partition(":")
    if prefix != "cuda" or not index.isdigit():
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {short_repr(device)}")
