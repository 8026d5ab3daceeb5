"""The config's schema: one frozen dataclass per section, every field's type and allowed range beside it.

Closed choices are str Enums; `validate` reads the range rules from each
field's metadata, so a bad value is rejected with a sentence naming its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Activation(str, Enum):
    RELU = "relu"
    TANH = "tanh"
    SILU = "silu"


class Likelihood(str, Enum):
    FIXED = "fixed"
    LEARNED = "learned"
    HETEROSCEDASTIC = "heteroscedastic"
    CATEGORICAL = "categorical"


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
    SKLEARN = "sklearn"
    IDX = "idx"


class Function(str, Enum):
    SEED_CUBIC = "seed_cubic"
    SINE = "sine"
    BLUNDELL_TOY = "blundell_toy"
    TWO_MOONS = "two_moons"
    SPIRALS = "spirals"


class ModelType(str, Enum):
    BAYESIAN = "bayesian"
    DETERMINISTIC = "deterministic"


class Tracking(str, Enum):
    """Where each run's parameters, metrics and files are also logged (besides its run directory)."""

    NONE = "none"
    MLFLOW = "mlflow"


# Upper bounds: beyond them a value is a typo or an attack, never an experiment. They keep every
# number inside what torch and numpy accept (seeds) and what float32 computes with (inputs, scales);
# `budget` then checks the memory and time that the values together ask for.
MAX_COUNT = 10**9  # points, epochs, steps, batch sizes, log intervals
MAX_SEED = 2**32 - 1  # numpy's RandomState seeds the generated data; torch's limit is higher
MAX_WIDTH = 100_000
MAX_LAYERS = 1_000
MAX_SAMPLES = 10**7
MAX_INPUT = 1e6  # |x| of a generated data set, its noise and the likelihood scale: x**3 stays far from 3.4e38
MIN_SCALE = 1e-6  # the smallest likelihood scale; below it float32's log-density loses every digit


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
    num_points: int = _field(20000, ge=2, le=MAX_COUNT)
    x_min: float = _field(-3.0, ge=-MAX_INPUT, le=MAX_INPUT)
    x_max: float = _field(3.0, ge=-MAX_INPUT, le=MAX_INPUT)
    noise_std: float = _field(1.5, ge=0.0, le=MAX_INPUT)
    val_fraction: float = _field(0.2, gt=0.0, lt=1.0)
    split_seed: int = _field(1996, ge=0, le=MAX_SEED)
    # Files and benchmark folders (data.source csv, npz, uci): where, which column is the
    # target, which are inputs (default: every other column), which are categories (one-hot).
    path: str | None = None
    target: str | None = None
    features: tuple[str, ...] | None = None
    categorical: tuple[str, ...] = ()
    # Rows held out for the final metrics only (csv, npz; a uci split fixes its own), and the uci split number.
    test_fraction: float = _field(0.0, ge=0.0, lt=1.0)
    split: int = _field(0, ge=0, le=MAX_COUNT)
    # data.source sklearn: which of scikit-learn's bundled data sets (digits, iris, wine, breast_cancer, diabetes).
    name: str | None = None
    # Train on standardised x and y (the network sees zero-mean, unit-scale
    # data); predictions and losses are always reported in the data's units.
    standardize: bool = False


@dataclass(frozen=True)
class ModelConfig:
    # bayesian: Gaussian weights (Bayes by Backprop); deterministic: the same network with point weights
    # (mu alone, no KL), the baseline a Bayesian net should beat.
    type: ModelType = ModelType.BAYESIAN
    hidden_dim: int = _field(20, ge=1, le=MAX_WIDTH)
    num_layers: int = _field(5, ge=1, le=MAX_LAYERS)
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
    likelihood_std: float = _field(0.1, ge=MIN_SCALE, le=MAX_INPUT)


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
    epochs: int = _field(5000, ge=1, le=MAX_COUNT)
    batch_size: int | None = _field(None, ge=1, le=MAX_COUNT)
    # At least this many optimiser steps: small data sets get more epochs, so that a config
    # converges the same at any size (null: exactly `epochs`).
    min_steps: int | None = _field(None, ge=1, le=MAX_COUNT)
    kl_weighting: KLWeighting = KLWeighting.UNIFORM
    log_every: int = _field(500, ge=1, le=MAX_COUNT)
    checkpoint_every: int = _field(500, ge=1, le=MAX_COUNT)


@dataclass(frozen=True)
class PredictConfig:
    num_samples: int = _field(1000, ge=1, le=MAX_SAMPLES)
    interval: tuple[float, float] = _field((0.05, 0.95), gt=0.0, lt=1.0)
    # Upper bound on the floats in one chunk of the batched predictive.
    chunk_elements: int = _field(8_000_000, ge=1, le=2**31)


@dataclass(frozen=True)
class Config:
    name: str = "run"
    seed: int = _field(0, ge=0, le=MAX_SEED)
    device: str = "auto"
    # torch threads while training on the CPU; null: one (measured best here, fit.loop.DEFAULT_TRAINING_THREADS).
    threads: int | None = _field(None, ge=1)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    tracking: Tracking = Tracking.NONE
    # A folder (default ./mlruns) or any tracking URI MLflow accepts (sqlite:///mlflow.db, http://host:5000).
    tracking_uri: str = "mlruns"
