"""The health of a finished fit: warnings that name a symptom and its likely cause.

Each check reads what a completed run already holds (the session, the
validation predictive, its summaries, the metrics) and returns one sentence or
None. The library returns the sentences; the caller decides how to show them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bbbrun.bnn.likelihoods import RegressionSamples
from bbbrun.bnn.likelihoods.gaussian import MIN_SCALE, HeteroscedasticGaussian
from bbbrun.config import Config, Likelihood, ModelConfig, Prior
from bbbrun.evaluate.regression import PredictiveSummary, mixture_nll
from bbbrun.runs.session import Session

FLAT_MEAN_FRACTION = 0.1  # a mean spread under this share of the targets' is "flat"
SIGNAL_TO_NOISE = 2.0  # targets' std over the neighbour noise estimate that proves a signal exists
MAX_NEIGHBOUR_POINTS = 2000  # the noise estimate's pairwise distances stay a (2000, 2000) matrix
COLLAPSED_SIGMA = 1e-5
PRIOR_SIGMA_FRACTION = 0.9
MIN_KL_PER_POINT = 1.0  # nats
FIXED_SCALE_MARGIN = 3.0  # errors this many times a fixed noise scale: that scale, not the fit, costs the NLL
MIN_NOISE_FRACTION = 1e-3  # of the training targets' std
FLOOR_MARGIN = 2.0  # a mean predicted scale within this factor of MIN_SCALE sits on the floor


def fit_warnings(
    session: Session, val: RegressionSamples, summaries: dict[str, PredictiveSummary], metrics: dict[str, Any]
) -> list[str]:
    """One sentence per symptom of an unhealthy fit (symptom, then likely causes); empty when healthy."""
    cfg, ds, model = session.cfg, session.dataset, session.model
    num_train = len(ds.y_train)
    messages = [
        worse_than_constant(validation_nll(val, ds.y_val, metrics), ds.y_train, ds.y_val, cfg,
                            metrics.get("val_rmse")),
        flat_mean(summaries["val"].mean, ds.x_val, ds.y_val, cfg),
        weight_sigmas(model.rho, cfg, num_train),
        kl_dominates(session.state.history, cfg, num_train, model.num_weights),
        noise_at_bound(metrics.get("noise_std"), ds.y_train, cfg),
        scale_at_floor(summaries["train"].aleatoric_std, noise_floor(model.likelihood), cfg, num_train),
    ]
    return [m for m in messages if m is not None]


# ------------------------------------------------------------------ the NLL


def validation_nll(val: RegressionSamples, y_val: np.ndarray, metrics: dict[str, Any]) -> float:
    """metrics' val_nll, or the same mixture NLL computed from the samples when the metrics lack it."""
    if metrics.get("val_nll") is not None:
        return float(metrics["val_nll"])
    return mixture_nll(val, torch.from_numpy(y_val.ravel()).to(val.f.device))


def constant_baseline_nll(y_train: np.ndarray, y_val: np.ndarray) -> float:
    """Mean -log N(y_val; m, s^2), m and s the training targets' mean and (maximum-likelihood) std."""
    train, val = y_train.astype(np.float64).ravel(), y_val.astype(np.float64).ravel()
    m, s = train.mean(), train.std()
    return float(np.mean(0.5 * ((val - m) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)))


def epochs_setting(cfg: Config) -> str:
    """How long training was set to run, as the keys that decide it."""
    steps = cfg.train.min_steps
    return f"train.epochs={cfg.train.epochs}" + (f", train.min_steps={steps}" if steps is not None else "")


def worse_than_constant(val_nll: float, y_train: np.ndarray, y_val: np.ndarray, cfg: Config,
                        val_rmse: float | None = None) -> str | None:
    if float(np.std(y_train)) == 0.0:  # constant targets: the baseline's density is degenerate
        return None
    baseline = constant_baseline_nll(y_train, y_val)
    if not val_nll > baseline:
        return None
    return (f"validation NLL {val_nll:.3g} is above the {baseline:.3g} of a constant prediction (the training "
            f"targets' mean and std): the fit is worse than no model; likely causes: "
            f"{worse_than_constant_causes(cfg, val_rmse, float(np.std(y_val)))}")


def worse_than_constant_causes(cfg: Config, val_rmse: float | None, y_std: float) -> str:
    """A fixed noise scale far under the errors makes even a good mean score badly; a mean worse than the
    constant's (RMSE above the targets' std) is a failed fit whatever the scale."""
    scale = cfg.model.likelihood_std
    fixed = cfg.model.likelihood is Likelihood.FIXED
    if fixed and val_rmse is not None and FIXED_SCALE_MARGIN * scale < val_rmse <= y_std:
        return (f"the fixed noise scale model.likelihood_std={scale:g} is far below the errors (validation RMSE "
                f"{val_rmse:.3g}), so every miss costs too much; learn it with model.likelihood=learned")
    return f"optim.lr too high ({cfg.optim.lr:g}) or too few epochs ({epochs_setting(cfg)})"


# ------------------------------------------------------------ a flat mean


def neighbour_noise_std(x: np.ndarray, y: np.ndarray) -> float:
    """The noise's std from nearest-neighbour pairs: y_i - y_j at close inputs is nearly all noise, variance 2 sigma^2.

    Inputs are scaled per feature so no unit dominates the distance. Where the
    function still varies between neighbours the estimate is too high, which
    only makes the flat-mean check fire less.
    """
    stride = math.ceil(len(x) / MAX_NEIGHBOUR_POINTS)
    xs = torch.from_numpy(x[::stride].astype(np.float64))  # (n, d)
    ys = torch.from_numpy(y[::stride].astype(np.float64).ravel())  # (n,)
    xs = xs / xs.std(0, unbiased=False).clamp_min(1e-12)
    dist = torch.cdist(xs, xs)  # (n, n)
    dist.fill_diagonal_(math.inf)
    nearest = dist.argmin(1)
    return float((ys - ys[nearest]).square().mean().div(2).sqrt())


def flat_mean(mean: torch.Tensor, x_val: np.ndarray, y_val: np.ndarray, cfg: Config) -> str | None:
    """The predictive mean barely moves over inputs where the targets clearly do.

    The noise compared with is the data's own (neighbouring targets), not the
    model's: a learned noise grows to absorb a signal the mean missed, which
    would hide exactly this symptom, and a fixed one is the user's guess. For
    targets that are a constant plus noise, neighbours differ by noise alone,
    the estimate is ~std(y) and the ratio ~1: no warning. A ratio above 2 means
    the input explains at least 1 - 1/4 = 75% of the targets' variance, so a
    fitted mean would spread by ~0.87 std(y); one under 0.1 std(y) has learned
    almost none of it.
    """
    if len(y_val) < 2:
        return None
    spread, y_std = float(mean.std(unbiased=False)), float(np.std(y_val))
    noise = neighbour_noise_std(x_val, y_val)
    if not (spread < FLAT_MEAN_FRACTION * y_std and y_std > SIGNAL_TO_NOISE * noise):
        return None
    key, scale = prior_scale(cfg.model)
    return (f"the predictive mean is flat (its spread over the validation points, {spread:.3g}, is under "
            f"{FLAT_MEAN_FRACTION:.0%} of the targets' {y_std:.3g}) although neighbouring targets differ only by "
            f"noise of about {noise:.3g}: the network ignores its input; likely causes: too few epochs "
            f"({epochs_setting(cfg)}), optim.lr too low ({cfg.optim.lr:g}) or a prior that pulls the "
            f"weights to zero ({key}={scale:g})")


# ------------------------------------------------------- the weights' sigmas


def prior_scale(cfg: ModelConfig) -> tuple[str, float]:
    """The prior's (wide) scale and the key that sets it."""
    if cfg.prior is Prior.SCALE_MIXTURE:
        return "model.sigma_1", cfg.sigma_1
    return "model.prior_std", cfg.prior_std


def weight_sigmas(rho: torch.Tensor, cfg: Config, num_train: int) -> str | None:
    """The median sigma = softplus(rho), collapsed to a point estimate or back at the prior."""
    sigma = float(F.softplus(rho.detach()).median())
    key, scale = prior_scale(cfg.model)
    if sigma < COLLAPSED_SIGMA:
        return (f"the median weight sigma {sigma:.2g} is below {COLLAPSED_SIGMA:g}: the posterior has collapsed to "
                f"a point estimate and its epistemic uncertainty means nothing; likely causes: optim.lr too high "
                f"({cfg.optim.lr:g}) or model.init_rho_mean too low ({cfg.model.init_rho_mean:g})")
    if sigma > PRIOR_SIGMA_FRACTION * scale:
        return (f"the median weight sigma {sigma:.3g} is over {PRIOR_SIGMA_FRACTION:.0%} of the prior's "
                f"{scale:g} ({key}): the posterior learned nothing from the data; likely causes: too little data "
                f"({num_train} training points) for {rho.numel()} weights or too few epochs "
                f"({epochs_setting(cfg)})")
    return None


# ------------------------------------------------------------------ the KL


def kl_dominates(history: list[dict[str, float]], cfg: Config, num_train: int, num_weights: int) -> str | None:
    """In the last logged epoch the per-point KL outweighs the per-point NLL.

    A Gaussian KL grows both when the prior is narrow (mu^2 / prior^2) and when
    it is much wider than the posterior (log prior / sigma), so both are named.

    NLL per point can sit near zero or below for precise targets, so KL > NLL
    alone would fire on good fits; the KL must also exceed a nat per point,
    a large complexity cost in any units.
    """
    if not history:
        return None
    last = history[-1]
    kl, nll = float(last["kl"]), float(last["nll"])
    if not (kl > nll and kl > MIN_KL_PER_POINT):
        return None
    key, scale = prior_scale(cfg.model)
    return (f"in the last logged epoch ({int(last['epoch'])}) the KL of {kl:.3g} per training point exceeds the "
            f"NLL of {nll:.3g}: the prior outweighs the data; likely causes: too little data for the network size "
            f"({num_train} training points for {num_weights} weights) or a prior scale far from the "
            f"weights', too narrow or too wide ({key}={scale:g})")


# ---------------------------------------------------------- the noise scale


def noise_at_bound(noise_std: float | None, y_train: np.ndarray, cfg: Config) -> str | None:
    """A homoscedastic noise scale so far below the targets' spread that the fit must interpolate the noise."""
    if noise_std is None:
        return None
    limit = MIN_NOISE_FRACTION * float(np.std(y_train))
    if not noise_std < limit:
        return None
    cause = (f"model.likelihood_std ({cfg.model.likelihood_std:g}) set far below the data's noise"
             if cfg.model.likelihood is Likelihood.FIXED
             else "too many weights for the data or too few points to pin the noise down")
    return (f"the noise scale {noise_std:.3g} is below {MIN_NOISE_FRACTION:g} of the training targets' std "
            f"({limit:.3g}): the network interpolates the noise; likely causes: {cause}")


def noise_floor(likelihood: Any) -> float:
    """The smallest scale the heteroscedastic head can predict, in data units."""
    return likelihood.scale_floor() if isinstance(likelihood, HeteroscedasticGaussian) else MIN_SCALE


def scale_at_floor(aleatoric_std: torch.Tensor, floor: float, cfg: Config, num_train: int) -> str | None:
    """The heteroscedastic head predicts scales at its floor: it explains every residual as (almost) no noise."""
    if cfg.model.likelihood is not Likelihood.HETEROSCEDASTIC:
        return None
    mean_scale = float(aleatoric_std.mean())
    if not mean_scale < FLOOR_MARGIN * floor:
        return None
    key, scale = prior_scale(cfg.model)
    return (f"the mean predicted noise scale on the training points, {mean_scale:.3g}, is within "
            f"{FLOOR_MARGIN:g}x of its floor {floor:.3g}: the network interpolates the noise; likely causes: "
            f"too many weights for {num_train} training points or a prior too wide to hold them back "
            f"({key}={scale:g})")
