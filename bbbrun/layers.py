"""Bayesian linear layers, priors and KL terms: pure math, no I/O, no devices.

Bayes by Backprop (Blundell et al. 2015, "Weight Uncertainty in Neural
Networks"): each weight w has a Gaussian posterior N(mu, sigma^2) with
sigma = softplus(rho), sampled as w = mu + sigma * eps (reparameterisation).

All layers of a network keep their mu and rho in one flat vector each, so
sampling every weight and evaluating every layer's KL are one vectorised
expression per step instead of a handful of small kernels per layer. A
`LayerSlices` says where one layer's weight matrix and bias live in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class LayerSlices:
    """Where a layer's (in_dim, out_dim) weight and (out_dim,) bias sit in the flat vector."""

    in_dim: int
    out_dim: int
    offset: int

    @property
    def weight(self) -> slice:
        return slice(self.offset, self.offset + self.in_dim * self.out_dim)

    @property
    def bias(self) -> slice:
        start = self.offset + self.in_dim * self.out_dim
        return slice(start, start + self.out_dim)

    @property
    def end(self) -> int:
        return self.bias.stop


def layer_layout(dims: list[int]) -> list[LayerSlices]:
    """Consecutive slices for the layers dims[0] -> dims[1] -> ... -> dims[-1]."""
    layout, offset = [], 0
    for in_dim, out_dim in zip(dims[:-1], dims[1:]):
        layer = LayerSlices(in_dim, out_dim, offset)
        layout.append(layer)
        offset = layer.end
    return layout


# ---------------------------------------------------------------- forward


def linear(h: torch.Tensor, w: torch.Tensor, layer: LayerSlices) -> torch.Tensor:
    """h @ W + b with W and b read from sampled flat weights.

    w is (P,) for one network, or (S, P) for S sampled networks at once, in
    which case h is (N, in) or (S, N, in) and the result is (S, N, out).
    """
    if w.dim() == 1:
        weight = w[layer.weight].view(layer.in_dim, layer.out_dim)
        return torch.addmm(w[layer.bias], h, weight)  # (N, out)
    num_samples = w.shape[0]
    weight = w[:, layer.weight].view(num_samples, layer.in_dim, layer.out_dim)
    bias = w[:, layer.bias].view(num_samples, 1, layer.out_dim)
    if h.dim() == 2:
        return torch.matmul(h, weight) + bias  # (S, N, out), h broadcast over S
    return torch.baddbmm(bias, h, weight)  # (S, N, out)


def local_reparameterized_linear(
    h: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, layer: LayerSlices
) -> torch.Tensor:
    """Sample the pre-activations instead of the weights (Kingma et al. 2015).

    For independent Gaussian weights, h @ W + b is Gaussian per unit with mean
    h @ mu_W + mu_b and variance h^2 @ sigma_W^2 + sigma_b^2; drawing it
    directly gives each data point its own weight noise, lowering the
    gradient variance at the same cost.
    """
    mean = torch.addmm(mu[layer.bias], h, mu[layer.weight].view(layer.in_dim, layer.out_dim))
    var_w = sigma[layer.weight].square().view(layer.in_dim, layer.out_dim)
    var = torch.addmm(sigma[layer.bias].square(), h.square(), var_w)
    return mean + var.sqrt() * torch.randn_like(mean)  # (N, out)


# ---------------------------------------------------------------- priors


@dataclass(frozen=True)
class GaussianPrior:
    """p(w) = N(0, std^2) for every weight."""

    std: float

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return -0.5 * (w / self.std).square() - math.log(self.std) - LOG_SQRT_2PI


@dataclass(frozen=True)
class ScaleMixturePrior:
    """p(w) = pi N(0, sigma_1^2) + (1 - pi) N(0, sigma_2^2), Blundell et al. 2015, sec. 3.3."""

    mixture_weight: float
    sigma_1: float
    sigma_2: float

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        # log-sum-exp keeps the narrow component from underflowing for large |w|.
        wide = math.log(self.mixture_weight) + GaussianPrior(self.sigma_1).log_prob(w)
        narrow = math.log1p(-self.mixture_weight) + GaussianPrior(self.sigma_2).log_prob(w)
        return torch.logaddexp(wide, narrow)


Prior = GaussianPrior | ScaleMixturePrior


# ---------------------------------------------------------------- KL terms


def sigma_from_rho(rho: torch.Tensor) -> torch.Tensor:
    return F.softplus(rho)


def monte_carlo_kl(eps: torch.Tensor, w: torch.Tensor, sigma: torch.Tensor, prior: Prior) -> torch.Tensor:
    """One-sample estimate of KL(q || p) = log q(w) - log p(w), summed over weights.

    With w = mu + sigma * eps, log q(w) = log N(eps; 0, 1) - log sigma; its
    total derivative equals that of evaluating N(mu, sigma).log_prob(w).
    """
    log_q = -0.5 * eps.square() - torch.log(sigma) - LOG_SQRT_2PI
    return (log_q - prior.log_prob(w)).sum()


def closed_form_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_std: float) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_std^2)) summed over weights."""
    ratio = (sigma / prior_std).square()
    return 0.5 * (ratio + (mu / prior_std).square() - 1.0 - torch.log(ratio)).sum()
