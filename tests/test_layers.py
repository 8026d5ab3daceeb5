"""The Bayesian layer's math, each answer computed a second way.

Statistical checks use many draws and compare against a closed form within a
few standard errors (or a bound far from where a wrong answer lands), with
fixed seeds so a pass is reproducible.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from bbbrun.bnn import layers
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import Estimator, KLEstimator, ModelConfig

LAYER = layers.LayerSlices(in_dim=3, out_dim=2, offset=0)
NUM_PARAMS = LAYER.end  # 3 * 2 weights + 2 biases


def layer_posterior(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's mu and sigma = softplus(rho), with sigmas of different sizes."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(NUM_PARAMS, generator=g, dtype=torch.float64)
    rho = torch.empty(NUM_PARAMS, dtype=torch.float64).uniform_(-2.0, 0.5, generator=g)
    return mu, layers.sigma_from_rho(rho)


# ------------------------------------------------------------------- shapes


def test_linear_shapes_for_one_and_many_networks() -> None:
    h = torch.randn(5, 3)
    w = torch.randn(NUM_PARAMS)
    assert layers.linear(h, w, LAYER).shape == (5, 2)
    ws = torch.randn(4, NUM_PARAMS)
    assert layers.linear(h, ws, LAYER).shape == (4, 5, 2)  # h shared by the 4 networks
    assert layers.linear(torch.randn(4, 5, 3), ws, LAYER).shape == (4, 5, 2)
    mu, sigma = layer_posterior()
    assert layers.local_reparameterized_linear(h.double(), mu, sigma, LAYER).shape == (5, 2)


def test_linear_is_h_times_w_plus_b() -> None:
    h = torch.randn(5, 3, dtype=torch.float64)
    w = torch.randn(4, NUM_PARAMS, dtype=torch.float64)
    out = layers.linear(h, w, LAYER)
    for s in range(4):
        weight = w[s, LAYER.weight].reshape(3, 2)
        expected = torch.stack([h[n] @ weight + w[s, LAYER.bias] for n in range(5)])
        torch.testing.assert_close(out[s], expected)
        torch.testing.assert_close(layers.linear(h, w[s], LAYER), expected)


def test_layout_tiles_the_flat_vector() -> None:
    layout = layers.layer_layout([1, 4, 4, 2])
    assert [(s.in_dim, s.out_dim) for s in layout] == [(1, 4), (4, 4), (4, 2)]
    assert layout[0].offset == 0 and layout[-1].end == 1 * 4 + 4 + 4 * 4 + 4 + 4 * 2 + 2
    for a, b in itertools.pairwise(layout):
        assert a.end == b.offset


def test_sigma_is_positive_even_for_very_negative_rho() -> None:
    rho = torch.linspace(-30.0, 30.0, 61)
    sigma = layers.sigma_from_rho(rho)
    assert bool((sigma > 0).all())
    torch.testing.assert_close(sigma, torch.log1p(torch.exp(rho.double())).float())


def test_model_output_shapes() -> None:
    torch.manual_seed(0)
    model = BayesianNetwork(ModelConfig(hidden_dim=6, num_layers=3))
    out = model(torch.randn(7, 1))
    assert out.raw.shape == (7, 1) and out.kl.shape == ()
    w = model.sample_weights(4, torch.Generator().manual_seed(0))
    assert w.shape == (4, model.num_weights)
    assert model.run_samples(torch.randn(7, 1), w).shape == (4, 7, 1)


# ------------------------------------------------------------------- KL terms


def test_monte_carlo_kl_averages_to_the_closed_form() -> None:
    torch.manual_seed(1)
    mu, sigma = layer_posterior(1)
    prior_std = 0.7
    exact = layers.closed_form_kl(mu, sigma, prior_std)
    eps = torch.randn(20000, NUM_PARAMS, dtype=torch.float64)
    estimates = torch.stack([
        layers.monte_carlo_kl(e, mu + sigma * e, sigma, layers.GaussianPrior(prior_std)) for e in eps
    ])
    stderr = estimates.std() / math.sqrt(len(estimates))
    assert abs(float(estimates.mean() - exact)) < 4 * float(stderr)
    # The closed form itself, against a direct sum of the textbook formula.
    direct = sum(
        math.log(prior_std / s) + (s**2 + m**2) / (2 * prior_std**2) - 0.5
        for m, s in zip(mu.tolist(), sigma.tolist(), strict=True)
    )
    assert float(exact) == pytest.approx(direct, rel=1e-10)


def test_monte_carlo_kl_gradient_averages_to_the_closed_form_gradient() -> None:
    """Both ways of writing log q (through eps, or as N(mu, sigma).log_prob(w)) give the right gradient."""
    torch.manual_seed(2)
    mu0, sigma0 = layer_posterior(2)
    rho0 = torch.log(torch.expm1(sigma0))
    prior = layers.GaussianPrior(1.3)

    def gradient(kl_of: str) -> torch.Tensor:
        mu, rho = mu0.clone().requires_grad_(), rho0.clone().requires_grad_()
        sigma = layers.sigma_from_rho(rho)
        if kl_of == "closed":
            kl = layers.closed_form_kl(mu, sigma, prior.std)
        else:
            eps = torch.randn(4000, NUM_PARAMS, dtype=torch.float64)
            w = mu + sigma * eps
            if kl_of == "eps":
                kl = layers.monte_carlo_kl(eps, w, sigma, prior).sum() / len(eps)
            else:
                log_q = torch.distributions.Normal(mu, sigma).log_prob(w)
                kl = (log_q - prior.log_prob(w)).sum() / len(eps)
        return torch.cat(torch.autograd.grad(kl, (mu, rho)))

    exact = gradient("closed")
    for kind in ("eps", "log_prob"):
        torch.testing.assert_close(gradient(kind), exact, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("estimator", list(Estimator))
def test_model_monte_carlo_kl_averages_to_its_closed_form(estimator: Estimator) -> None:
    """The network's KL under either estimator, against the same network with the closed form."""
    cfg = ModelConfig(hidden_dim=4, num_layers=2, prior_std=0.5, init_rho_mean=-1.0,
                      init_mu_std=0.3, bias_rho_init=-1.0, estimator=estimator, kl=KLEstimator.MONTE_CARLO)
    torch.manual_seed(3)
    mc_model = BayesianNetwork(cfg)
    exact_model = BayesianNetwork(dataclasses.replace(cfg, kl=KLEstimator.CLOSED_FORM))
    exact_model.load_state_dict(mc_model.state_dict())
    x = torch.zeros(1, 1)
    with torch.no_grad():
        exact = float(exact_model(x).kl)
        estimates = torch.tensor([float(mc_model(x).kl) for _ in range(4000)])
    stderr = float(estimates.std()) / math.sqrt(len(estimates))
    assert abs(float(estimates.mean()) - exact) < 4 * stderr
    assert exact > 1.0  # a KL far from zero, so agreeing with it means something


# ------------------------------------------------------------------- priors


def test_scale_mixture_log_prior_is_the_mixture_density() -> None:
    pi, s1, s2 = 0.3, 1.5, 0.01
    prior = layers.ScaleMixturePrior(pi, s1, s2)
    w = torch.linspace(-4.0, 4.0, 801, dtype=torch.float64)

    def normal_pdf(x: torch.Tensor, s: float) -> torch.Tensor:
        return torch.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))

    direct = torch.log(pi * normal_pdf(w, s1) + (1 - pi) * normal_pdf(w, s2))
    torch.testing.assert_close(prior.log_prob(w), direct)
    torch.testing.assert_close(layers.GaussianPrior(s1).log_prob(w), torch.log(normal_pdf(w, s1)))


def test_scale_mixture_log_prior_stays_finite_where_the_narrow_part_underflows() -> None:
    prior = layers.ScaleMixturePrior(0.5, 1.0, 1e-3)
    w = torch.tensor([0.5, 3.0, 10.0])  # float32: the narrow density underflows to 0 here
    log_p = prior.log_prob(w)
    assert bool(torch.isfinite(log_p).all())
    # Far from zero only the wide component is left: log(pi) + log N(w; 0, sigma_1^2).
    torch.testing.assert_close(log_p, math.log(0.5) + layers.GaussianPrior(1.0).log_prob(w))


# ------------------------------------------------- local reparameterisation


def layer_output_moments(h: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Exact mean and variance of h @ W + b for independent Gaussian W and b."""
    mean = h @ mu[LAYER.weight].view(3, 2) + mu[LAYER.bias]
    var = h.square() @ sigma[LAYER.weight].square().view(3, 2) + sigma[LAYER.bias].square()
    return mean, var


def test_local_reparameterisation_matches_the_weight_sampling_distribution() -> None:
    torch.manual_seed(4)
    mu, sigma = layer_posterior(4)
    h = torch.randn(6, 3, dtype=torch.float64)
    mean, var = layer_output_moments(h, mu, sigma)
    num_samples = 20000
    w = mu + sigma * torch.randn(num_samples, NUM_PARAMS, dtype=torch.float64)
    plain = layers.linear(h, w, LAYER)  # (S, 6, 2)
    local = layers.local_reparameterized_linear(h.repeat(num_samples, 1), mu, sigma, LAYER).view(num_samples, 6, 2)
    for draws in (plain, local):
        stderr = (var / num_samples).sqrt()
        assert bool(((draws.mean(0) - mean).abs() < 4.5 * stderr).all())
        # The sample variance of a Gaussian has relative std sqrt(2 / S) ~ 1%.
        torch.testing.assert_close(draws.var(0), var, rtol=0.05, atol=0.0)


def test_local_reparameterisation_has_lower_gradient_variance() -> None:
    torch.manual_seed(5)
    mu0, sigma0 = layer_posterior(5)
    h = torch.randn(64, 3, dtype=torch.float64)
    target = torch.randn(64, 2, dtype=torch.float64)

    def mu_gradient(local: bool) -> torch.Tensor:
        mu = mu0.clone().requires_grad_()
        if local:
            out = layers.local_reparameterized_linear(h, mu, sigma0, LAYER)
        else:
            out = layers.linear(h, mu + sigma0 * torch.randn(NUM_PARAMS, dtype=torch.float64), LAYER)
        (grad,) = torch.autograd.grad((out - target).square().sum(), mu)
        return grad

    plain = torch.stack([mu_gradient(False) for _ in range(500)])
    local = torch.stack([mu_gradient(True) for _ in range(500)])
    # Same expected gradient (the loss is quadratic in the output, so both are unbiased) ...
    stderr = ((plain.var(0) + local.var(0)) / 500).sqrt()
    assert bool(((plain.mean(0) - local.mean(0)).abs() < 4.5 * stderr).all())
    # ... but one weight draw shared by 64 points varies far more than 64 independent draws.
    assert float(local.var(0).sum()) < 0.5 * float(plain.var(0).sum())
