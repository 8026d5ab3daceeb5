"""The fit loop. It reports through callbacks and never prints."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from bbbrun.allocator import retain_freed_memory
from bbbrun.bnn.likelihoods import Likelihood
from bbbrun.bnn.loss import kl_weights, negative_elbo
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import Config, OptimConfig, TrainConfig
from bbbrun.data import Dataset

# Training on the CPU runs one torch thread unless the config's `threads` says
# otherwise. This model's ops are short (a few hundred microseconds at most),
# and each op split across threads ends in a barrier that waits a whole
# scheduler slice whenever another process holds a core. Measured on the
# project's 2-core machine (benchmarks/bench_batched.py threads, load 1.5-2):
# 1 vs 2 threads, ms per step: default.yaml 1.00 vs 2.39, default.yaml as 20
# batched seeds 4.21 vs 6.13, seed.yaml (full batch, 16,000 points) 5.56 vs
# 6.49, uci.yaml as 20 / 50 / 100 batched splits 1.71 vs 1.84 / 3.61 vs 2.90 /
# 7.41 vs 6.71; under heavier load a second thread cost 10-50x.
DEFAULT_TRAINING_THREADS = 1

# val_nll_1sample is the validation NLL per point under one weight sample, a cheap
# progress signal; metrics.json's val_nll is the mixture over predict.num_samples.
BASE_COLUMNS = ("epoch", "loss", "nll", "kl", "kl_weight", "val_loss", "val_nll_1sample")


def history_columns(likelihood: Likelihood | type[Likelihood]) -> list[str]:
    """history.csv's columns: the loss terms, the likelihood's own (e.g. noise_std), then lr and time."""
    return [*BASE_COLUMNS, *likelihood.history_columns, "lr", "seconds"]


@dataclass
class TrainData:
    """The split data as tensors on the training device, moved there once."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def from_dataset(cls, data: Dataset, device: torch.device) -> TrainData:
        def move(a: Any) -> torch.Tensor:
            return torch.from_numpy(a).to(device)

        return cls(move(data.x_train), move(data.y_train), move(data.x_val), move(data.y_val))

    @property
    def num_train(self) -> int:
        return self.x_train.shape[0]


@dataclass
class TrainState:
    """Where training stands; everything a checkpoint needs besides the tensors."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    status: str = "running"  # running | completed | interrupted | diverged
    stop_signal: int | None = None
    diverged_epoch: int | None = None


def _ignore(*_: Any) -> None:
    return None


@dataclass
class Callbacks:
    on_log: Callable[[dict[str, float]], None] = _ignore
    on_progress: Callable[[int, float], None] = _ignore
    on_checkpoint: Callable[[TrainState], None] = _ignore
    should_stop: Callable[[], int | None] = lambda: None
    on_stage: Callable[[str], None] = _ignore  # a slow step after training starts


@dataclass
class Trainee:
    """What the loop steps: the model, its optimiser, the data on the device, the random streams, progress.

    `noise` is the stream of the weight (or pre-activation) noise, on the
    model's device; None takes it from torch's global stream.
    """

    model: BayesianNetwork
    optimizer: torch.optim.Optimizer
    data: TrainData
    cfg: Config
    shuffle: torch.Generator
    state: TrainState = field(default_factory=TrainState)
    noise: torch.Generator | None = None


def make_optimizer(model: BayesianNetwork, cfg: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def batches_per_epoch(cfg: TrainConfig, num_train: int) -> int:
    return math.ceil(num_train / cfg.batch_size) if cfg.batch_size and cfg.batch_size < num_train else 1


def planned_epochs(cfg: TrainConfig, num_train: int) -> int:
    """train.epochs, or more when train.min_steps asks for more optimiser steps than that gives."""
    if cfg.min_steps is None:
        return cfg.epochs
    return max(cfg.epochs, math.ceil(cfg.min_steps / batches_per_epoch(cfg, num_train)))


def learning_rate(cfg: OptimConfig, epoch: int, epochs: int) -> float:
    """Cosine decay from lr to lr * lr_final_factor; constant when the factor is 1."""
    if cfg.lr_final_factor == 1.0:
        return cfg.lr
    progress = (epoch - 1) / max(epochs - 1, 1)
    factor = cfg.lr_final_factor + (1.0 - cfg.lr_final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.lr * factor


def fit(trainee: Trainee, callbacks: Callbacks | None = None) -> TrainState:
    """Train from state.epoch + 1 to the planned epochs (`planned_epochs`), or until stopped or diverged."""
    retain_freed_memory()
    cfg, data = trainee.cfg, trainee.data
    batch_size = cfg.train.batch_size if cfg.train.batch_size and cfg.train.batch_size < data.num_train else None
    elements = (batch_size or data.num_train) * cfg.model.hidden_dim
    with intra_op_threads(training_threads(cfg, data.x_train.device, elements)):
        return _fit(trainee, callbacks or Callbacks(), batch_size)


def training_threads(cfg: Config, device: torch.device, elements: int) -> int | None:
    """torch threads for a training loop on `device` (None: leave torch's setting): the config's, else one.

    `elements` (activations per step) is kept for a rule that depends on size; none measured better yet.
    """
    if device.type != "cpu":
        return None
    return cfg.threads if cfg.threads is not None else DEFAULT_TRAINING_THREADS


@contextlib.contextmanager
def intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op threads set to num_threads (None: unchanged)."""
    before = torch.get_num_threads()
    if num_threads is None or num_threads == before:
        yield
        return
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(trainee: Trainee, calls: Callbacks, batch_size: int | None) -> TrainState:
    model, optimizer, data, cfg, state = trainee.model, trainee.optimizer, trainee.data, trainee.cfg, trainee.state
    epochs, tcfg = planned_epochs(cfg.train, data.num_train), cfg.train
    weights = kl_weights(math.ceil(data.num_train / batch_size) if batch_size else 1, tcfg.kl_weighting)
    # Reading a loss back costs a host sync on a GPU, so it happens only here.
    report_every = max(1, min(tcfg.log_every, epochs // 100 or 1))
    on_cpu = data.x_train.device.type == "cpu"
    started, seconds_before = time.perf_counter(), state.train_seconds
    state.status = "running"
    model.train()
    for epoch in range(state.epoch + 1, epochs + 1):
        lr = learning_rate(cfg.optim, epoch, epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        is_log = epoch % tcfg.log_every == 0 or epoch == epochs
        track = is_log or epoch % report_every == 0
        sums = run_epoch(trainee, weights, batch_size, track)
        if (on_cpu or track or epoch % tcfg.checkpoint_every == 0) and not bool(torch.isfinite(sums[2])):
            state.status, state.diverged_epoch = "diverged", epoch
            break
        state.epoch = epoch
        state.train_seconds = seconds_before + time.perf_counter() - started
        if track:
            loss = float(sums[0] + sums[1]) / data.num_train
            if is_log:
                row = log_row(model, data, trainee.noise, epoch, sums, weights, lr, state.train_seconds)
                state.history.append(row)
                calls.on_log(row)
            calls.on_progress(epoch, loss)
        if epoch % tcfg.checkpoint_every == 0:
            calls.on_checkpoint(state)
        signum = calls.should_stop()
        if signum is not None:
            state.status, state.stop_signal = "interrupted", signum
            break
    else:
        state.status = "completed"
    state.train_seconds = seconds_before + time.perf_counter() - started
    return state


def run_epoch(
    trainee: Trainee, weights: list[float], batch_size: int | None, track: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass over the training data; returns (summed NLL, weighted KL, last loss), detached."""
    model, optimizer, data, shuffle = trainee.model, trainee.optimizer, trainee.data, trainee.shuffle
    n = data.num_train
    zero = torch.zeros((), device=data.x_train.device)
    nll_sum, kl_sum, last = zero, zero, zero
    order = torch.randperm(n, generator=shuffle).to(data.x_train.device) if batch_size else None
    for i, weight in enumerate(weights):
        if order is None:
            x, y = data.x_train, data.y_train
        else:
            idx = order[i * batch_size : (i + 1) * batch_size]  # type: ignore[operator]
            x, y = data.x_train[idx], data.y_train[idx]
        out = model(x, model.draw_noise(x.shape[0], trainee.noise))
        parts = negative_elbo(model.likelihood, out, y, n, weight, len(weights))
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        last = parts.total.detach()
        if track:
            nll_sum = nll_sum + parts.nll.detach()
            kl_sum = kl_sum + weight * parts.kl.detach()
    return nll_sum, kl_sum, last


@torch.no_grad()
def log_row(
    model: BayesianNetwork,
    data: TrainData,
    noise: torch.Generator | None,
    epoch: int,
    sums: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    weights: list[float],
    lr: float,
    seconds: float,
) -> dict[str, float]:
    """One history row: per-point training terms and a validation pass (one weight sample).

    The validation loss is the validation NLL per point plus the same per-point
    KL as training (KL / number of training points), so the two are comparable.
    """
    n = data.num_train
    out = model(data.x_val, model.draw_noise(data.x_val.shape[0], noise))
    val_nll = float(model.likelihood.nll(out.raw, data.y_val)) / data.x_val.shape[0]
    nll, kl = float(sums[0]) / n, float(sums[1]) / n
    return {
        "epoch": epoch, "loss": nll + kl, "nll": nll, "kl": kl,
        "kl_weight": sum(weights) / len(weights), "val_loss": val_nll + float(out.kl) / n,
        "val_nll_1sample": val_nll, **model.likelihood.log_values(out.raw), "lr": lr, "seconds": seconds,
    }
