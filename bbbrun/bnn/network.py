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

    def forward(self, x: torch.Tensor) -> Output:
        """One training pass: a fresh weight sample (or pre-activation sample) and its KL."""
        sigma = layers.sigma_from_rho(self.rho)
        h = self._standardize(x)  # (d, N)
        if self.cfg.estimator is Estimator.LOCAL_REPARAMETERIZATION:
            out = self._run_local(h, sigma)
            kl = self._kl(sigma, None, None)
        else:
            eps = torch.randn_like(self.mu)
            w = self.mu + sigma * eps
            out = self._run(h, w)
            kl = self._kl(sigma, eps, w)
        return Output(raw=out, kl=kl)

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

    def _run_local(self, h: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layout):
            h = layers.local_reparameterized_features_first(h, self.mu, sigma, layer)
            if i < len(self.layout) - 1:
                h = self._activate(h)
        return h.mT

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        # A linear layer's backward needs its inputs, not its output, so ReLU may
        # overwrite the pre-activations; that saves one (out, N) buffer per layer.
        if self.cfg.activation is Activation.RELU:
            return h.relu_()
        return self.activation(h)

    def _kl(self, sigma: torch.Tensor, eps: torch.Tensor | None, w: torch.Tensor | None) -> torch.Tensor:
        if self.cfg.kl is KLEstimator.CLOSED_FORM:
            return layers.closed_form_kl(self.mu, sigma, self.cfg.prior_std)
        if eps is None or w is None:
            # The local estimator samples no weights; the Monte Carlo KL gets its own draw.
            eps = torch.randn_like(self.mu)
            w = self.mu + sigma * eps
        return layers.monte_carlo_kl(eps, w, sigma, self.prior)


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
