"""Likelihoods by name (`model.likelihood`). A new one is a module with a `Likelihood`
subclass plus one entry in `LIKELIHOODS` (and its name in `config.Likelihood`)."""

from __future__ import annotations

from bbbrun.bnn.likelihoods.base import Likelihood, RegressionSamples, SampleBuffer
from bbbrun.bnn.likelihoods.categorical import Categorical, ClassProbabilities
from bbbrun.bnn.likelihoods.gaussian import FixedGaussian, HeteroscedasticGaussian, LearnedGaussian
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import ModelConfig
from bbbrun.errors import ConfigError

LIKELIHOODS: dict[str, type[Likelihood]] = {
    "fixed": FixedGaussian,
    "learned": LearnedGaussian,
    "heteroscedastic": HeteroscedasticGaussian,
    "categorical": Categorical,
}


def likelihood_class(name: str) -> type[Likelihood]:
    if name not in LIKELIHOODS:
        raise ConfigError(f"model.likelihood {name!r} is not registered (known: {', '.join(LIKELIHOODS)})")
    return LIKELIHOODS[name]


def make_likelihood(cfg: ModelConfig, std: Standardizer, classes: tuple[str, ...] = ()) -> Likelihood:
    return likelihood_class(cfg.likelihood.value).build(cfg, std, classes)


def task_of(cfg: ModelConfig) -> str:
    """What the model's likelihood predicts: "regression" (numbers) or "classification" (class labels)."""
    return likelihood_class(cfg.likelihood.value).task


__all__ = ["LIKELIHOODS", "ClassProbabilities", "Likelihood", "RegressionSamples", "SampleBuffer",
           "likelihood_class", "make_likelihood", "task_of"]
