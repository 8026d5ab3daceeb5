"""The Python front door: load a trained run, predict with it, train and sweep from a notebook.

    import bbbrun
    run = bbbrun.train("configs/default.yaml", train__epochs=200)   # or bbbrun.load("outputs/default/<stamp>")
    pred = run.predict(x)                # x: (N, num_inputs) or (N,), numpy or torch, in the data's own units
    lower, upper = pred.interval(0.9)    # the central 90% interval, observation noise included

Each call does what the matching command does (`bbbrun train`, `bbbrun sweep`),
writing the same run directories, and returns objects instead of printing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from bbbrun.bnn.likelihoods import RegressionSamples
from bbbrun.config import Config, config_from_dict, config_to_dict, read_yaml_mapping, set_dotted
from bbbrun.errors import ConfigError
from bbbrun.evaluate.regression import summarize
from bbbrun.runs.inference import TrainedModel, load_model, predictive_rows
from bbbrun.runs.layout import RunDir, SweepDir, new_run_dir, read_json_object
from bbbrun.runs.provenance import Invocation

ConfigLike = Union[str, Path, Mapping[str, Any], Config]
ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]


@dataclass(frozen=True)
class Prediction:
    """The predictive distribution at N points, in the target's own units; every array has shape (N,).

    std is the total standard deviation, sqrt(epistemic_std² + aleatoric_std²):
    epistemic from the spread of the sampled networks' means, aleatoric the
    likelihood's noise scale.
    """

    mean: np.ndarray
    std: np.ndarray
    epistemic_std: np.ndarray
    aleatoric_std: np.ndarray
    samples: RegressionSamples  # the Monte Carlo draws behind the numbers: (S, N) each

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The central `level` interval (lower, upper), each (N,): exact quantiles of the sampled mixture,
        observation noise included, as `bbbrun predict --level` writes them."""
        if not 0.0 < level < 1.0:
            raise ConfigError(f"level must be in (0, 1), got {level}")
        summary = summarize(self.samples, ((1 - level) / 2, (1 + level) / 2), exact=True)
        return to_numpy(summary.lower), to_numpy(summary.upper)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def as_inputs(x: ArrayLike, num_inputs: int) -> np.ndarray:
    """x as a float32 (N, num_inputs) array; a flat (N,) array is taken as N points of a one-input model."""
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim == 1 and num_inputs == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != num_inputs:
        raise ConfigError(f"x must have shape (N, {num_inputs}) for this model, got {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ConfigError("x must hold finite numbers")
    return array.astype(np.float32)


class Run:
    """A trained run: its config, metrics, history and provenance, and predictions from its checkpoint."""

    def __init__(self, trained: TrainedModel) -> None:
        self._trained = trained
        self.path: Path = trained.checkpoint.parent
        self.config: Config = trained.cfg
        run_dir = RunDir(self.path)
        self.metrics: dict[str, Any] = run_dir.read_metrics() or {}
        self.provenance: dict[str, Any] | None = run_dir.read_provenance()
        self._history = run_dir.read_history()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.metrics.get('status', 'unknown')!r})"

    @property
    def history(self) -> Any:
        """history.csv, one entry per log point: a pandas DataFrame when pandas is installed, else a list of
        dicts (epoch, loss, val_loss, nll, kl, ...)."""
        try:
            import pandas as pd
        except ImportError:
            return [dict(row) for row in self._history]
        return pd.DataFrame(self._history)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's input columns, in the order `predict` takes them."""
        return self._trained.feature_names

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Each categorical input's categories: `predict` takes such a column as one 0/1 column per category,
        in this order (a numeric input is one column as it is)."""
        return dict(self._trained.inputs.categories)

    def predict(self, x: ArrayLike, num_samples: int | None = None) -> Prediction:
        """The predictive at x: (N, num_inputs) or, for one input, (N,); numpy or torch; the data's own units
        (the model standardises inside). `num_samples` defaults to the run's predict.num_samples.

        The draws depend on the run's seed only, so the same x gives the same numbers as `bbbrun predict`.
        """
        cfg = self.config
        if self._trained.model.likelihood.task != "regression":
            raise ConfigError("Run.predict is for regression runs; a classifier's class probabilities come from "
                              "bbbrun predict RUN --input FILE.csv, or in Python bbbrun.probabilities_at("
                              "bbbrun.load_model(RUN).model, x, run.config.predict, seed=0)")
        if num_samples is not None:
            if num_samples < 1:
                raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
            cfg = dataclasses.replace(cfg, predict=dataclasses.replace(cfg.predict, num_samples=num_samples))
        samples = predictive_rows(self._trained.model, as_inputs(x, self._trained.model.in_dim), cfg)
        f = samples.f
        epistemic, aleatoric = f.std(0, unbiased=False), samples.aleatoric_std()
        return Prediction(to_numpy(f.mean(0)), to_numpy((epistemic.square() + aleatoric.square()).sqrt()),
                          to_numpy(epistemic), to_numpy(aleatoric), samples)


def as_text(value: Any) -> str:
    """A Python value as the YAML an override holds: None is null, floats keep every digit."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def load(path: str | Path) -> Run:
    """A trained run from its directory or its checkpoint file (no code in the file is run)."""
    return Run(load_model(Path(path)))


# ------------------------------------------------------------- training


def override_key(name: str) -> str:
    """train__epochs (a Python keyword argument) -> train.epochs; dotted names pass as they are."""
    return name.replace("__", ".")


def resolve_config(config: ConfigLike, overrides: Mapping[str, Any]) -> Config:
    """A config file, a dict or a Config, with overrides applied and everything validated."""
    if isinstance(config, Config):
        raw = config_to_dict(config)
    elif isinstance(config, Mapping):
        raw = config_to_dict(config_from_dict(dict(config)))  # validated, and a copy the overrides may change
    else:
        raw = read_yaml_mapping(Path(config))
    for name, value in overrides.items():
        set_dotted(raw, override_key(name), value)
    return config_from_dict(raw)


def api_invocation(call: str, config: ConfigLike, overrides: Mapping[str, Any]) -> Invocation:
    """run.json's record of a Python call: what was called and with which overrides."""
    path = str(config) if isinstance(config, (str, Path)) else None
    current = Invocation.current(None if path is None else Path(path))
    typed = tuple(f"{override_key(k)}={as_text(v)}" for k, v in overrides.items())
    # Written like the command it stands for: bbbrun.train configs/x.yaml train.epochs=200
    argv = (f"bbbrun.{call}", path or f"<{type(config).__name__}>", *typed)
    return dataclasses.replace(current, argv=argv, overrides=typed)


def train(config: ConfigLike, out: str | Path = "outputs", **overrides: Any) -> Run:
    """Train as `bbbrun train` does, into out/<name>/<timestamp>/, and return the trained run.

    `config` is a YAML file, a dict of config keys or a `Config`. Overrides are config keys, dots
    written as double underscores (train__epochs=200) or passed as a dict (**{"train.epochs": 200}).
    An interrupted or diverged run raises the error `bbbrun train` reports (a `BbbrunError`).
    """
    from bbbrun.runs import runner
    from bbbrun.runs.session import start_session

    cfg = resolve_config(config, overrides)
    session = start_session(cfg)
    run_dir = new_run_dir(Path(out), cfg.name)
    result = runner.run_training(session, run_dir, invocation=api_invocation("train", config, overrides))
    runner.raise_for_status(result, session)
    return load(run_dir.path)


# ------------------------------------------------------------- sweeps


@dataclass
class SweepResult:
    """A sweep's directory and its runs' records, best first by the sweep metric (failed runs last)."""

    path: Path
    metric: str
    records: list[dict[str, Any]]

    def runs(self) -> list[Run]:
        """The completed runs, best first, loaded."""
        return [load(self.path / str(r["run"])) for r in self.records if r.get("status") == "completed"]

    @property
    def best(self) -> Run:
        completed = self.runs()
        if not completed:
            raise ConfigError(f"no run of the sweep in {self.path} completed")
        return completed[0]


def load_sweep(path: str | Path) -> SweepResult:
    """A finished (or stopped) sweep or benchmark directory's ranked records."""
    sweep = SweepDir.existing(Path(path))
    data = read_json_object(sweep.summary_json)
    if data is None:
        raise ConfigError(f"{path} has no readable {sweep.summary_json.name}; the sweep has not ended yet")
    return SweepResult(sweep.path, data["metric"]["name"], data["runs"])


def sweep(*sources: str | Path, out: str | Path = "outputs", workers: int = 1, **axes: Any) -> SweepResult:
    """Run a grid as `bbbrun sweep` does and return its ranked records.

    `sources` are config files (each a grid value) or one sweep file; each keyword is a config key (dots as
    double underscores) with a list of values to sweep, or one value to set: sweep("c.yaml",
    model__hidden_dim=[16, 32], seed=[0, 1]). workers=1 runs in this process; more spawn processes.
    Failed runs raise `SweepFailed` after the summary is written, as the command does.
    """
    from bbbrun.sweeps import sweep as sweeps
    from bbbrun.sweeps.executors import ExecOptions, make_executor
    from bbbrun.sweeps.grid import ExecutorKind

    typed = [f"{override_key(k)}={','.join(map(as_text, vs)) if isinstance(vs, (list, tuple)) else as_text(vs)}"
             for k, vs in axes.items()]
    prepared = sweeps.prepare(sweeps.SweepRequest((*map(str, sources), *typed)))
    kind = ExecutorKind.SERIAL if workers == 1 else ExecutorKind.LOCAL
    executor = make_executor(ExecOptions(kind, workers))
    root = sweeps.open_sweep(prepared, Path(out))
    records = sweeps.run_sweep(prepared.plan, root, executor, lambda _summary, _name: None)
    sweeps.raise_for_failures(records, root)
    return load_sweep(root.path)
