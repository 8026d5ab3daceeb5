"""Memory and time a config asks for, estimated before anything is allocated.

Each setting within its own range can still combine into a run that would
exhaust the machine (a million hidden units; a million predictive samples of a
large network) or never end. `check_budget` names the setting and the
estimate in one line instead. The estimates are deliberately rough (within a
small factor) and the limits far above any experiment this tool is for.
"""

from __future__ import annotations

import itertools
import math

from bbbrun.config.schema import MAX_SAMPLES, Config, ModelConfig, Source
from bbbrun.errors import ConfigError

MEMORY_LIMIT = 64 * 2**30  # bytes
FLOP_LIMIT = 1e18  # about ten days of the matmuls these networks run, on a current GPU
FLOAT = 4  # bytes: the model computes in float32
MAX_OUTPUT_WIDTH = 2  # the widest likelihood head (heteroscedastic: mean and scale)


def num_weights(model: ModelConfig, in_dim: int = 1) -> int:
    """Weights plus biases of the network (with the widest output head)."""
    dims = [in_dim, *[model.hidden_dim] * (model.num_layers - 1), MAX_OUTPUT_WIDTH]
    return sum(a * b + b for a, b in itertools.pairwise(dims))


def memory_estimates(cfg: Config, in_dim: int = 1) -> list[tuple[str, float, str]]:
    """(settings, bytes, what for) of each large allocation a run makes."""
    weights = num_weights(cfg.model, in_dim)
    generated = cfg.data.source is Source.FUNCTION
    points = cfg.data.num_points if generated else 0
    batch = cfg.train.batch_size or points
    return [
        ("model.hidden_dim and model.num_layers", 8 * FLOAT * weights,
         f"{weights:,} weights with their sigmas, gradients and Adam moments"),
        ("data.num_points", 6 * 8 * points * (in_dim + 1), f"{points:,} generated points"),
        ("train.batch_size (default: every training point) and model.hidden_dim",
         4 * FLOAT * min(batch, points) * cfg.model.hidden_dim * cfg.model.num_layers, "one step's activations"),
        ("predict.num_samples", 2 * FLOAT * cfg.predict.num_samples * weights,
         f"{cfg.predict.num_samples:,} sampled networks of {weights:,} weights"),
    ]


def training_flops(cfg: Config, in_dim: int = 1) -> float:
    """Floating-point operations of training a generated data set: about 6 per weight per point per epoch."""
    if cfg.data.source is not Source.FUNCTION:
        return 0.0
    num_train = cfg.data.num_points * (1 - cfg.data.val_fraction)
    epochs = cfg.train.epochs
    if cfg.train.min_steps is not None:
        batches = math.ceil(num_train / cfg.train.batch_size) if cfg.train.batch_size else 1
        epochs = max(epochs, math.ceil(cfg.train.min_steps / max(batches, 1)))
    return 6.0 * num_weights(cfg.model, in_dim) * num_train * epochs


def check_budget(cfg: Config, in_dim: int = 1) -> None:
    """One ConfigError line naming the setting when the run would need more memory or time than is sane."""
    for setting, size, what in memory_estimates(cfg, in_dim):
        if size > MEMORY_LIMIT:
            raise ConfigError(f"{setting}: {what} would need about {format_bytes(size)} of memory (limit "
                              f"{format_bytes(MEMORY_LIMIT)}); lower it")
    flops = training_flops(cfg, in_dim)
    if flops > FLOP_LIMIT:
        raise ConfigError(f"train.epochs, data.num_points and the network's size: training would take about "
                          f"{flops:.1e} floating-point operations (limit {FLOP_LIMIT:.0e}, days on a GPU); lower them")


def check_samples(cfg: Config, samples: int, option: str = "--samples") -> None:
    """A sample count given on the command line, checked as predict.num_samples is."""
    weights = num_weights(cfg.model)
    size = 2 * FLOAT * samples * weights
    if samples > MAX_SAMPLES or size > MEMORY_LIMIT:
        raise ConfigError(f"{option} {samples:,}: {samples:,} sampled networks of {weights:,} weights would need "
                          f"about {format_bytes(size)} of memory (at most {MAX_SAMPLES:,} samples and "
                          f"{format_bytes(MEMORY_LIMIT)}); lower it")


def format_bytes(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"
