"""The Bayesian regression network built from a model config, and its likelihoods."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bbbrun import layers
from bbbrun.config import Activation, Estimator, KLEstimator, Likelihood, ModelConfig, Prior

ACTIVATIONS: dict[Activation, Callable[[torch.Tensor], torch.Tensor]] = {
    Activation.RELU: F.relu, Activation.TANH: torch.tanh, Activation.SILU: F.silu,
}
MIN_SCALE = 1e-4  # floor on a predicted noise scale, in standardised units


@dataclass(frozen=True)
class Standardizer:
    """The affine map between the data's units and the network's."""

    x_shift: float = 0.0
    x_scale: float = 1.0
    y_shift: float = 0.0
    y_scale: float = 1.0


@dataclass
class Output:
    """One forward pass: a predictive mean and noise scale in the data's units, and the KL."""

    mean: torch.Tensor  # (N, 1) or (S, N, 1)
    scale: torch.Tensor  # broadcastable to mean
    kl: torch.Tensor  # scalar; zero when not computed


def make_prior(cfg: ModelConfig) -> layers.Prior:
    if cfg.prior is Prior.SCALE_MIXTURE:
        return layers.ScaleMixturePrior(cfg.mixture_weight, cfg.sigma_1, cfg.sigma_2)
    return layers.GaussianPrior(cfg.prior_std)


def inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class BayesianRegressor(nn.Module):
    """An MLP whose weights are independent Gaussians, with a Gaussian likelihood."""

    # Buffers, declared for type checkers (nn.Module's attribute lookup is untyped).
    x_shift: torch.Tensor
    x_scale: torch.Tensor
    y_shift: torch.Tensor
    y_scale: torch.Tensor
    fixed_noise_std: torch.Tensor
    activation: Callable[[torch.Tensor], torch.Tensor]

    def __init__(self, cfg: ModelConfig, standardizer: Standardizer | None = None, in_dim: int = 1) -> None:
        super().__init__()
        self.cfg = cfg
        std = standardizer or Standardizer()
        out_dim = 2 if cfg.likelihood is Likelihood.HETEROSCEDASTIC else 1
        self.layout = layers.layer_layout([in_dim] + [cfg.hidden_dim] * (cfg.num_layers - 1) + [out_dim])
        mu, rho = initial_parameters(self.layout, cfg)
        self.mu = nn.Parameter(mu)
        self.rho = nn.Parameter(rho)
        if cfg.likelihood is Likelihood.LEARNED:
            start = inverse_softplus(cfg.likelihood_std / std.y_scale)
            self.noise_rho = nn.Parameter(torch.tensor(start))
        else:
            self.register_buffer("fixed_noise_std", torch.tensor(cfg.likelihood_std))
        for name, value in vars(std).items():
            self.register_buffer(name, torch.tensor(float(value)))
        self.prior = make_prior(cfg)
        self.activation = ACTIVATIONS[cfg.activation]

    @property
    def num_weights(self) -> int:
        return self.mu.numel()

    def forward(self, x: torch.Tensor) -> Output:
        """One training pass: a fresh weight sample (or pre-activation sample) and its KL."""
        sigma = layers.sigma_from_rho(self.rho)
        h = self._standardize(x)  # (1, N)
        if self.cfg.estimator is Estimator.LOCAL_REPARAMETERIZATION:
            out = self._run_local(h, sigma)
            kl = self._kl(sigma, None, None)
        else:
            eps = torch.randn_like(self.mu)
            w = self.mu + sigma * eps
            out = self._run(h, w)
            kl = self._kl(sigma, eps, w)
        return self._output(out, kl)

    def sample_weights(self, num_samples: int, generator: torch.Generator) -> torch.Tensor:
        """(S, P) weight samples drawn on the CPU from `generator`, for reproducible predictions."""
        eps = torch.randn(num_samples, self.num_weights, generator=generator)
        sigma = layers.sigma_from_rho(self.rho.detach())
        return self.mu.detach() + sigma * eps.to(self.mu.device)

    def run_samples(self, x: torch.Tensor, w: torch.Tensor) -> Output:
        """Evaluate S sampled networks (w: (S, P)) at x: (N, 1); no KL."""
        return self._output(self._run(self._standardize(x), w), torch.zeros((), device=x.device))

    def noise_std(self) -> float | None:
        """The homoscedastic noise scale in data units, or None when it varies with x."""
        if self.cfg.likelihood is Likelihood.HETEROSCEDASTIC:
            return None
        return float(self._fixed_scale().detach())

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in) inputs in data units -> (in, N) features-first network inputs."""
        return ((x - self.x_shift) / self.x_scale).mT

    def _run(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(in, N) -> (N, out) for w (P,), or (S, N, out) for w (S, P)."""
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

    def _fixed_scale(self) -> torch.Tensor:
        if self.cfg.likelihood is Likelihood.LEARNED:
            return F.softplus(self.noise_rho) * self.y_scale
        return self.fixed_noise_std

    def _output(self, out: torch.Tensor, kl: torch.Tensor) -> Output:
        mean = out[..., :1] * self.y_scale + self.y_shift
        if self.cfg.likelihood is Likelihood.HETEROSCEDASTIC:
            scale = (F.softplus(out[..., 1:]) + MIN_SCALE) * self.y_scale
        else:
            scale = self._fixed_scale()
        return Output(mean=mean, scale=scale, kl=kl)


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


def standardizer_for(x: torch.Tensor, y: torch.Tensor, enabled: bool) -> Standardizer:
    if not enabled:
        return Standardizer()
    return Standardizer(
        x_shift=float(x.mean()), x_scale=float(x.std()) or 1.0,
        y_shift=float(y.mean()), y_scale=float(y.std()) or 1.0,
    )
