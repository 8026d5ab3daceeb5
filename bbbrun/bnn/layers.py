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

import itertools
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
    for in_dim, out_dim in itertools.pairwise(dims):
        layer = LayerSlices(in_dim, out_dim, offset)
        layout.append(layer)
        offset = layer.end
    return layout


# ---------------------------------------------------------------- forward
#
# The model keeps activations features-first, (in, N) or (S, in, N): with the
# N points on the last, contiguous axis every matmul is a short-and-wide
# (out, in) @ (in, N) product, which CPU BLAS runs about twice as fast as the
# tall-and-skinny (N, in) @ (in, out) form, and a layer with in_dim = 1 (the
# first, for 1-D inputs) is a broadcast multiply instead of a matmul.


def affine_features_first(h: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """weight_t @ h + bias; weight_t (..., out, in), h (..., in, N), bias (..., out, 1)."""
    # A product's backward needs its inputs, not its output, so the bias may be
    # added in place; mul + add_ and bmm + add_ measured faster than the fused
    # addcmul and baddbmm, which broadcast-copy the bias first.
    if weight_t.shape[-1] == 1:
        return torch.mul(weight_t, h).add_(bias)  # (..., out, 1) * (..., 1, N)
    if weight_t.dim() == 3 and h.dim() == 3:
        return torch.bmm(weight_t, h).add_(bias)  # (S, out, N)
    if weight_t.dim() == 2 and h.dim() == 2:
        return torch.addmm(bias, weight_t, h)  # (out, N)
    return torch.matmul(weight_t, h) + bias  # h shared by S networks


def linear_features_first(h: torch.Tensor, w: torch.Tensor, layer: LayerSlices) -> torch.Tensor:
    """W^T h + b with W and b read from sampled flat weights, activations features-first.

    w is (P,) for one network, h (in, N), result (out, N); or w is (S, P) for
    S sampled networks at once, h (in, N) or (S, in, N), result (S, out, N).
    """
    lead = w.shape[:-1]
    weight_t = w[..., layer.weight].view(*lead, layer.in_dim, layer.out_dim).transpose(-1, -2)
    bias = w[..., layer.bias].view(*lead, layer.out_dim, 1)
    return affine_features_first(h, weight_t, bias)


def local_reparameterized_features_first(
    h: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, layer: LayerSlices, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Sample the pre-activations instead of the weights (Kingma et al. 2015); h (in, N) -> (out, N).

    For independent Gaussian weights, W^T h + b is Gaussian per unit with mean
    mu_W^T h + mu_b and variance (sigma_W^2)^T h^2 + sigma_b^2; drawing it
    directly gives each data point its own weight noise, lowering the
    gradient variance at the same cost. `noise` is the standard normal draw
    shaped like the result (drawn here when None); with mu and sigma (K, P)
    and h (K, in, N), K networks run at once.
    """
    mean = linear_features_first(h, mu, layer)
    var = linear_features_first(h.square(), sigma.square(), layer)
    # sqrt's backward needs only its result, so it may overwrite var in place.
    return torch.addcmul(mean, var.sqrt_(), torch.randn_like(mean) if noise is None else noise)  # (out, N)


def linear(h: torch.Tensor, w: torch.Tensor, layer: LayerSlices) -> torch.Tensor:
    """h @ W + b, points-first: h (N, in) or (S, N, in), w (P,) or (S, P); result (N, out) or (S, N, out)."""
    return linear_features_first(h.mT, w, layer).mT


def local_reparameterized_linear(
    h: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, layer: LayerSlices
) -> torch.Tensor:
    """The points-first form of `local_reparameterized_features_first`: h (N, in) -> (N, out)."""
    return local_reparameterized_features_first(h.mT, mu, sigma, layer).mT


# ---------------------------------------------------------------- priors
#
# A prior's settings are floats for one network, or (K, 1) tensors when K
# networks with different priors are trained at once.

Scalar = float | torch.Tensor


def log_of(value: Scalar) -> Scalar:
    return math.log(value) if isinstance(value, float | int) else torch.log(value)


def log1p_of(value: Scalar) -> Scalar:
    return math.log1p(value) if isinstance(value, float | int) else torch.log1p(value)


@dataclass(frozen=True)
class GaussianPrior:
    """p(w) = N(0, std^2) for every weight."""

    std: Scalar

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return -0.5 * (w / self.std).square() - log_of(self.std) - LOG_SQRT_2PI


@dataclass(frozen=True)
class ScaleMixturePrior:
    """p(w) = pi N(0, sigma_1^2) + (1 - pi) N(0, sigma_2^2), Blundell et al. 2015, sec. 3.3."""

    mixture_weight: Scalar
    sigma_1: Scalar
    sigma_2: Scalar

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        # log-sum-exp keeps the narrow component from underflowing for large |w|.
        wide = log_of(self.mixture_weight) + GaussianPrior(self.sigma_1).log_prob(w)
        narrow = log1p_of(-self.mixture_weight) + GaussianPrior(self.sigma_2).log_prob(w)
        return torch.logaddexp(wide, narrow)


Prior = GaussianPrior | ScaleMixturePrior


# ---------------------------------------------------------------- KL terms


def sigma_from_rho(rho: torch.Tensor) -> torch.Tensor:
    return F.softplus(rho)


def monte_carlo_kl(eps: torch.Tensor, w: torch.Tensor, sigma: torch.Tensor, prior: Prior) -> torch.Tensor:
    """One-sample estimate of KL(q || p) = log q(w) - log p(w), summed over weights (the last axis).

    With w = mu + sigma * eps, log q(w) = log N(eps; 0, 1) - log sigma; its
    total derivative equals that of evaluating N(mu, sigma).log_prob(w).
    """
    log_q = -0.5 * eps.square() - torch.log(sigma) - LOG_SQRT_2PI
    return (log_q - prior.log_prob(w)).sum(-1)


def closed_form_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_std: Scalar) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, prior_std^2)) summed over weights (the last axis)."""
    ratio = (sigma / prior_std).square()
    return 0.5 * (ratio + (mu / prior_std).square() - 1.0 - torch.log(ratio)).sum(-1)
