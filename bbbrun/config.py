"""Experiment configuration: frozen dataclasses, YAML loading, overrides, validation.

Every field's type and allowed range is declared next to it, so the one
validator below can reject a bad value with a sentence that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from bbbrun.errors import ConfigError
from bbbrun.files import check_readable_file


class Activation(str, Enum):
    RELU = "relu"
    TANH = "tanh"
    SILU = "silu"


class Likelihood(str, Enum):
    FIXED = "fixed"
    LEARNED = "learned"
    HETEROSCEDASTIC = "heteroscedastic"


class Prior(str, Enum):
    GAUSSIAN = "gaussian"
    SCALE_MIXTURE = "scale_mixture"


class KLEstimator(str, Enum):
    MONTE_CARLO = "monte_carlo"
    CLOSED_FORM = "closed_form"


class Estimator(str, Enum):
    REPARAMETERIZATION = "reparameterization"
    LOCAL_REPARAMETERIZATION = "local_reparameterization"


class KLWeighting(str, Enum):
    UNIFORM = "uniform"
    BLUNDELL = "blundell"


class Source(str, Enum):
    FUNCTION = "function"
    CSV = "csv"
    NPZ = "npz"
    UCI = "uci"


class Function(str, Enum):
    SEED_CUBIC = "seed_cubic"
    SINE = "sine"
    BLUNDELL_TOY = "blundell_toy"


def _field(default: Any, **rules: Any) -> Any:
    """A dataclass field whose metadata holds its range rules (gt, ge, lt, le)."""
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass(frozen=True)
class DataConfig:
    # Which loader reads the data (bbbrun.data.SOURCES); the generated functions by default.
    source: Source = Source.FUNCTION
    function: Function = Function.SEED_CUBIC
    num_points: int = _field(20000, ge=2)
    x_min: float = -3.0
    x_max: float = 3.0
    noise_std: float = _field(1.5, ge=0.0)
    val_fraction: float = _field(0.2, gt=0.0, lt=1.0)
    split_seed: int = _field(1996, ge=0)
    # Files and benchmark folders (data.source csv, npz, uci): where, which column is the
    # target, which are inputs (default: every other column), which are categories (one-hot).
    path: str | None = None
    target: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    # Rows held out for the final metrics only (csv, npz; a uci split fixes its own), and the uci split number.
    test_fraction: float = _field(0.0, ge=0.0, lt=1.0)
    split: int = _field(0, ge=0)
    # Train on standardised x and y (the network sees zero-mean, unit-scale
    # data); predictions and losses are always reported in the data's units.
    standardize: bool = False


@dataclass(frozen=True)
class ModelConfig:
    hidden_dim: int = _field(20, ge=1)
    num_layers: int = _field(5, ge=1)
    activation: Activation = Activation.RELU
    prior: Prior = Prior.GAUSSIAN
    prior_std: float = _field(1.0, gt=0.0)
    mixture_weight: float = _field(0.5, gt=0.0, lt=1.0)
    sigma_1: float = _field(1.0, gt=0.0)
    sigma_2: float = _field(0.0025, gt=0.0)
    kl: KLEstimator = KLEstimator.MONTE_CARLO
    estimator: Estimator = Estimator.REPARAMETERIZATION
    # null: He-style means, N(0, 2 / fan_in); a number: N(0, init_mu_std^2).
    init_mu_std: float | None = _field(0.001, ge=0.0)
    init_rho_mean: float = -2.5
    init_rho_std: float = _field(0.001, ge=0.0)
    bias_mu_init: float = 0.0
    bias_rho_init: float = 0.0
    likelihood: Likelihood = Likelihood.FIXED
    # The fixed scale, or the starting scale when the likelihood is learned.
    likelihood_std: float = _field(0.1, gt=0.0)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = _field(0.01, gt=0.0)
    betas: tuple[float, float] = _field((0.9, 0.999), ge=0.0, lt=1.0)
    weight_decay: float = _field(0.0, ge=0.0)
    # The last epoch's learning rate as a fraction of lr, reached by a cosine
    # schedule; 1 keeps it constant, as the tutorial does.
    lr_final_factor: float = _field(1.0, gt=0.0, le=1.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _field(5000, ge=1)
    batch_size: int | None = _field(None, ge=1)
    # At least this many optimiser steps: small data sets get more epochs, so that a config
    # converges the same at any size (null: exactly `epochs`).
    min_steps: int | None = _field(None, ge=1)
    kl_weighting: KLWeighting = KLWeighting.UNIFORM
    log_every: int = _field(500, ge=1)
    checkpoint_every: int = _field(500, ge=1)


@dataclass(frozen=True)
class PredictConfig:
    num_samples: int = _field(1000, ge=1)
    interval: tuple[float, float] = _field((0.05, 0.95), gt=0.0, lt=1.0)
    # Upper bound on the floats in one chunk of the batched predictive.
    chunk_elements: int = _field(8_000_000, ge=1)


@dataclass(frozen=True)
class Config:
    name: str = "run"
    seed: int = _field(0, ge=0)
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


# --------------------------------------------------------------------- loading


def load_config(path: Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config, apply `key=value` overrides, validate everything."""
    raw = read_yaml_mapping(path)
    for item in overrides or []:
        key, value = parse_override(item)
        set_dotted(raw, key, value)
    return config_from_dict(raw)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    text = read_text_file(path, "config")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{path}: a config must be a YAML mapping of keys, got {kind}")
    return raw


def read_text_file(path: Path, what: str) -> str:
    check_readable_file(path, what, ConfigError)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if b"\x00" in data:
        raise ConfigError(f"{path} is a binary file; expected a YAML {what} file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; expected a YAML {what} file") from None


def parse_override(item: str) -> tuple[str, Any]:
    """`a.b=value` -> ("a.b", value parsed as YAML)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {item!r} has no '=': write key=value, e.g. train.epochs=100")
    if not key:
        raise ConfigError(f"override {item!r} has no key: write key=value, e.g. train.epochs=100")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    return key, value


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, checking every part names a real field."""
    parts = key.split(".")
    node: dict[str, Any] = raw
    cls: type = Config
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            prefix = ".".join(parts[:depth])
            raise ConfigError(unknown_key_message(prefix, part, list(fields), source="override"))
        if depth == len(parts) - 1:
            node[part] = value
            return
        sub = _section_type(cls, part)
        if sub is None:
            raise ConfigError(f"override {key!r}: {'.'.join(parts[: depth + 1])} is not a section")
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node, cls = child, sub


def unknown_key_message(prefix: str, key: str, allowed: list[str], source: str = "config") -> str:
    full = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]!r}?" if close else ""
    return f"unknown {source} key {full!r}{hint} (allowed here: {', '.join(allowed)})"


# ------------------------------------------------------------------ validation


def config_from_dict(raw: dict[str, Any]) -> Config:
    cfg = _build(Config, raw, prefix="")
    check_consistency(cfg)
    if cfg.data.path is not None:
        # Absolute from here on, so a run's config.yaml and checkpoint find the data from any directory.
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=os.path.abspath(cfg.data.path)))
    return cfg


def _section_type(cls: type, name: str) -> type | None:
    hint = typing.get_type_hints(cls)[name]
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(unknown_key_message(prefix, str(key), list(fields)))
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
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        return _check_range(key, _coerce_int(key, value), rules)
    if hint is float:
        return _check_range(key, _coerce_float(key, value), rules)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _coerce_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _coerce_float(key: str, value: Any) -> float:
    # PyYAML reads 1e-3 (no dot) as a string, so numeric strings are accepted.
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    return number


def _coerce_choice(key: str, value: Any, enum: type[Enum]) -> Enum:
    allowed = [e.value for e in enum]
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return enum(value)


def _coerce_names(key: str, value: Any) -> tuple[str, ...]:
    """A list of column names; one name alone is accepted as a list of one."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{key} must be a list of column names, got {value!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{key} names a column twice: {value!r}")
    return tuple(names)


def _coerce_pair(key: str, value: Any, rules: typing.Mapping[str, Any]) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key} must be a list of two numbers, got {value!r}")
    pair = tuple(_check_range(key, _coerce_float(key, v), rules) for v in value)
    return (pair[0], pair[1])


def _check_range(key: str, value: float, rules: typing.Mapping[str, Any]) -> Any:
    bounds = {"gt": (">", lambda a, b: a > b), "ge": (">=", lambda a, b: a >= b),
              "lt": ("<", lambda a, b: a < b), "le": ("<=", lambda a, b: a <= b)}
    for rule, (symbol, ok) in bounds.items():
        if rule in rules and not ok(value, rules[rule]):
            raise ConfigError(f"{key} must be {symbol} {rules[rule]}, got {value!r}")
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


def check_data_source(data: DataConfig) -> None:
    """Generated data needs enough points; files and folders need a path, a CSV its target column."""
    if data.source is Source.FUNCTION:
        num_val = int(data.num_points * data.val_fraction)
        if num_val < 1 or num_val >= data.num_points:
            raise ConfigError(
                f"data.val_fraction={data.val_fraction} leaves no validation or no training points "
                f"out of data.num_points={data.num_points}"
            )
        return
    if not data.path:
        what = {Source.CSV: "a CSV file", Source.NPZ: "an NPZ file", Source.UCI: "a UCI benchmark folder"}[data.source]
        raise ConfigError(f"data.source={data.source.value} needs data.path, {what}")
    if data.source is Source.CSV and not data.target:
        raise ConfigError("data.source=csv needs data.target, the name of the column to predict")


def check_device_name(device: str) -> None:
    if device in ("auto", "cpu", "cuda"):
        return
    prefix, _, index = device.partition(":")
    if prefix != "cuda" or not index.isdigit():
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N; got {device!r}")


# ------------------------------------------------------------------- dumping


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain YAML-safe values (enums as strings, tuples as lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
