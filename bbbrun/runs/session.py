"""Starting a run: the device, the data on it, a fresh model or one restored from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bbbrun.bnn.deterministic import make_network
from bbbrun.bnn.likelihoods import make_likelihood, task_of
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.standardize import fit_standardizer
from bbbrun.config import Config, config_from_dict, config_to_dict, load_config, parse_override, set_dotted
from bbbrun.data import Dataset, make_dataset
from bbbrun.errors import CheckpointError, ConfigError
from bbbrun.fit import checkpoint as ckpt
from bbbrun.fit.loop import TrainData, Trainee, TrainState, make_optimizer, planned_epochs
from bbbrun.runs.layout import RunDir, existing_run_dir, new_run_dir
from bbbrun.tracking import check_tracking

# What a resume may change: how long and where it trains, nothing that defines the model or data.
RESUMABLE_PREFIXES = ("train.",)
RESUMABLE_KEYS = ("device",)


@dataclass
class Session:
    """Everything live during a run: the data set, the device and what the loop steps."""

    trainee: Trainee
    dataset: Dataset
    device: torch.device

    @property
    def cfg(self) -> Config:
        return self.trainee.cfg

    @property
    def model(self) -> BayesianNetwork:
        return self.trainee.model

    @property
    def state(self) -> TrainState:
        return self.trainee.state


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} but CUDA is not available on this machine; use device=auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(name)


def start_session(cfg: Config, payload: dict[str, Any] | None = None) -> Session:
    """Build data, model and optimiser from the config (and a checkpoint when resuming)."""
    check_tracking(cfg)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    dataset = make_dataset(cfg.data, cfg.seed, task_of(cfg.model))
    data = TrainData.from_dataset(dataset, device)
    std = fit_standardizer(data.x_train, data.y_train, cfg.data.standardize)
    likelihood = make_likelihood(cfg.model, std, dataset.classes)
    model = make_network(cfg.model, std, likelihood=likelihood).to(device)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    trainee = Trainee(model, make_optimizer(model, cfg.optim), data, cfg, shuffle, noise=noise_stream(cfg, device))
    if payload is not None:
        trainee.state = ckpt.restore_training(payload, trainee, device)
    return Session(trainee, dataset, device)


def noise_stream(cfg: Config, device: torch.device) -> torch.Generator:
    """The training noise's own stream: where torch's global one stands after the model's initialisation.

    A run's noise then depends on nothing drawn elsewhere in the process, so K
    runs trained at once each draw exactly what they would alone.
    """
    if device.type == "cuda":
        return torch.Generator(device=device).manual_seed(cfg.seed)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    return generator


def resume_session(target: Path, overrides: list[str]) -> tuple[Session, RunDir]:
    """Continue the run at `target` (a run directory or its checkpoint), changing only train.* and device.

    Only a directory bbbrun made is accepted, and only it is written to. A run whose training ended but
    whose results were interrupted (metrics.json not completed) is finished without more epochs.
    """
    run_dir = existing_run_dir(target)
    path = target if target.is_file() else run_dir.checkpoint
    payload = ckpt.load_checkpoint(path)
    if payload["status"] == "pruned":
        raise ConfigError(f"{path} is a pruned checkpoint (bbbrun prune --save): it predicts and evaluates, but "
                          "its removed weights have no posterior left to train; resume the original run instead")
    raw = config_to_dict(ckpt.config_of(payload, path))
    for item in overrides:
        key, value = parse_override(item)
        if not (key.startswith(RESUMABLE_PREFIXES) or key in RESUMABLE_KEYS):
            raise ConfigError(f"on --resume only train.* and device may change, not {key!r}")
        set_dotted(raw, key, value)
    cfg = config_from_dict(raw)
    ckpt.check_restorable(payload, cfg, path)
    try:
        session = start_session(cfg, payload)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    planned = planned_epochs(cfg.train, session.trainee.data.num_train)
    if payload["epoch"] >= planned and payload["status"] == "completed" and run_dir.is_completed():
        raise ConfigError(f"{path} already completed {payload['epoch']} epochs; raise train.epochs (or "
                          "train.min_steps) to go on")
    return session, run_dir


def open_run(config: Path | None, overrides: list[str], out: Path, resume: Path | None) -> tuple[Session, RunDir]:
    """A new run from a config file (its directory under `out`), or the resumed run at `resume`."""
    if resume is not None:
        if config is not None and "=" not in str(config):
            raise ConfigError(
                f"--resume takes no config file ({config}): the run's own config.yaml is used; to change how it "
                "goes on, give train.* or device overrides, e.g. bbbrun train --resume RUN train.epochs=400")
        return resume_session(resume, ([str(config)] if config else []) + overrides)
    if config is None:
        raise ConfigError("give a config file (bbbrun train CONFIG [key=value ...]) or --resume RUN_DIR")
    cfg = load_config(config, overrides)
    resolve_device(cfg.device)  # fail before a run directory exists
    session = start_session(cfg)
    return session, new_run_dir(out, cfg.name)


def sweep_session(raw: dict[str, Any], run_dir: RunDir) -> Session:
    """A sweep run's session: continued from its checkpoint when an earlier attempt stopped short, else new.

    A run that failed starts again; a checkpoint that cannot be used is set aside by starting afresh.
    """
    cfg = config_from_dict(raw)
    metrics = run_dir.read_metrics() or {}
    if run_dir.checkpoint.is_file() and metrics.get("status") != "failed":
        try:
            payload = ckpt.load_checkpoint(run_dir.checkpoint)
            if config_to_dict(ckpt.config_of(payload, run_dir.checkpoint)) == config_to_dict(cfg):
                return start_session(cfg, payload)
        except CheckpointError:
            pass
    return start_session(cfg)


def config_warnings(cfg: Config) -> list[str]:
    """Settings that run but give a result a user would not want without knowing."""
    warnings = []
    if cfg.model.likelihood.value == "fixed":
        warnings.append(
            f"model.likelihood=fixed keeps the noise scale at {cfg.model.likelihood_std} whatever the data's noise; "
            "bands are only honest when that is the true noise (configs/default.yaml learns it: "
            "model.likelihood=learned)")
    return warnings
