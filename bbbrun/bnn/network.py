"""The Bayesian network built from a model config: flat Gaussian weights, a likelihood on its outputs."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bbbrun.bnn import layers
from bbbrun.bnn.likelihoods import Likelihood, make_likelihood
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import Activation, Estimator, KLEstimator, ModelConfig, Prior

ACTIVATIONS: dict[Activation, Callable[[torch.Tensor], torch.Tensor]] = {
    Activation.RELU: F.relu, Activation.TANH: torch.tanh, Activation.SILU: F.silu,
}


@dataclass
class Output:
    """One forward pass: the raw outputs (network units) and the KL."""

    raw: torch.Tensor  # (N, output_width) or (S, N, output_width)
    kl: torch.Tensor  # scalar; zero when not computed


def make_prior(cfg: ModelConfig) -> layers.Prior:
    if cfg.prior is Prior.SCALE_MIXTURE:
        return layers.ScaleMixturePrior(cfg.mixture_weight, cfg.sigma_1, cfg.sigma_2)
    return layers.GaussianPrior(cfg.prior_std)


class BayesianNetwork(nn.Module):
    """An MLP whose weights are independent Gaussians, with a likelihood on its outputs.

    Inputs arrive in data units (N, d) and are standardised per feature here;
    the likelihood maps the outputs back to the target's units.
    """

    # Buffers, declared for type checkers (nn.Module's attribute lookup is untyped).
    x_shift: torch.Tensor
    x_scale: torch.Tensor
    activation: Callable[[torch.Tensor], torch.Tensor]

    def __init__(self, cfg: ModelConfig, standardizer: Standardizer | None = None, in_dim: int | None = None,
                 likelihood: Likelihood | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        std = standardizer or Standardizer.identity(in_dim or 1)
        self.in_dim = in_dim or std.input_dim
        self.likelihood = likelihood if likelihood is not None else make_likelihood(cfg, std)
        hidden = [cfg.hidden_dim] * (cfg.num_layers - 1)
        self.layout = layers.layer_layout([self.in_dim, *hidden, self.likelihood.output_width])
        mu, rho = initial_parameters(self.layout, cfg)
        self.mu = nn.Parameter(mu)
        self.rho = nn.Parameter(rho)
        self.register_buffer("x_shift", torch.tensor(std.x_shift, dtype=torch.float32))
        self.register_buffer("x_scale", torch.tensor(std.x_scale, dtype=torch.float32))
        self.prior = make_prior(cfg)
        self.activation = ACTIVATIONS[cfg.activation]

    @property
    def num_weights(self) -> int:
        return self.mu.numel()

    def forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None = None) -> Output:
        """One training pass: a fresh weight sample (or pre-activation sample) and its KL.

        `noise` is the pass's standard normal draws (`draw_noise`); drawn from
        the global stream when None.
        """
        draws = noise if noise is not None else self.draw_noise(x.shape[0])
        return sampled_pass(self, self._standardize(x), self.mu, self.rho, draws, self.prior)

    def draw_noise(self, num_points: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """A training pass's standard normal draws, in the order the pass uses them.

        Drawing them apart from the pass lets K networks trained at once each
        take theirs from their own stream, exactly as when trained alone.
        """
        def normal(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, dtype=self.mu.dtype, device=self.mu.device)

        if self.cfg.estimator is not Estimator.LOCAL_REPARAMETERIZATION:
            return [normal(self.num_weights)]  # the weights' eps, which the Monte Carlo KL reuses
        draws = [normal(layer.out_dim, num_points) for layer in self.layout]
        if self.cfg.kl is not KLEstimator.CLOSED_FORM:
            draws.append(normal(self.num_weights))  # the local estimator samples no weights for the KL
        return draws

    def sample_weights(self, num_samples: int, generator: torch.Generator) -> torch.Tensor:
        """(S, P) weight samples drawn on the CPU from `generator`, for reproducible predictions."""
        eps = torch.randn(num_samples, self.num_weights, generator=generator)
        sigma = layers.sigma_from_rho(self.rho.detach())
        return self.mu.detach() + sigma * eps.to(self.mu.device)

    def run_samples(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Raw outputs (S, N, output_width) of S sampled networks (w: (S, P)) at x: (N, d)."""
        return self._run(self._standardize(x), w)

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, d) inputs in data units -> (d, N) features-first network inputs."""
        return ((x - self.x_shift) / self.x_scale).mT

    def _run(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(d, N) -> (N, out) for w (P,), or (S, N, out) for w (S, P)."""
        for i, layer in enumerate(self.layout):
            h = layers.linear_features_first(h, w, layer)
            if i < len(self.layout) - 1:
                h = self._activate(h)
        return h.mT

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        # A linear layer's backward needs its inputs, not its output, so ReLU may
        # overwrite the pre-activations; that saves one (out, N) buffer per layer.
        if self.cfg.activation is Activation.RELU:
            return h.relu_()
        return self.activation(h)


def sampled_pass(net: BayesianNetwork, h: torch.Tensor, mu: torch.Tensor, rho: torch.Tensor,
                 noise: list[torch.Tensor], prior: layers.Prior) -> Output:
    """One sampled pass of `net`'s architecture with the given posterior, noise and prior.

    For one network: h (d, N), mu and rho (P,), raw (N, out) and a scalar KL.
    For K networks at once: h (K, d, N), mu and rho (K, P), each draw with a
    leading K, the prior's settings (K, 1): raw (K, N, out) and KL (K,).
    """
    sigma = layers.sigma_from_rho(rho)
    cfg = net.cfg
    if cfg.estimator is Estimator.LOCAL_REPARAMETERIZATION:
        for i, layer in enumerate(net.layout):
            h = layers.local_reparameterized_features_first(h, mu, sigma, layer, noise[i])
            if i < len(net.layout) - 1:
                h = net._activate(h)
        out, w = h.mT, None
        eps = noise[-1] if cfg.kl is not KLEstimator.CLOSED_FORM else None
    else:
        eps = noise[0]
        w = mu + sigma * eps
        out = net._run(h, w)
    if cfg.kl is KLEstimator.CLOSED_FORM:
        assert isinstance(prior, layers.GaussianPrior)  # validation pairs the closed form with a Gaussian prior
        return Output(raw=out, kl=layers.closed_form_kl(mu, sigma, prior.std))
    assert eps is not None
    w = mu + sigma * eps if w is None else w
    return Output(raw=out, kl=layers.monte_carlo_kl(eps, w, sigma, prior))


def initial_parameters(layout: list[layers.LayerSlices], cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat mu and rho drawn from the global torch RNG, layer by layer as the tutorial does."""
    size = layout[-1].end
    mu, rho = torch.empty(size), torch.empty(size)
    for layer in layout:
        mu_std = cfg.init_mu_std if cfg.init_mu_std is not None else math.sqrt(2.0 / layer.in_dim)
        mu[layer.weight].normal_(0.0, mu_std)
        rho[layer.weight].normal_(cfg.init_rho_mean, cfg.init_rho_std)
        mu[layer.bias] = cfg.bias_mu_init
        rho[layer.bias] = cfg.bias_rho_init
    return mu, rho
