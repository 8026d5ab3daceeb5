"""Bayes by Backprop against the one case solved in closed form.

One Bayesian linear layer (y = w x + b, no hidden layers) with a N(0, p^2)
prior on w and b and a known Gaussian noise s is Bayesian linear regression:
the posterior is Gaussian with precision A = X^T X / s^2 + I / p^2 and mean
A^-1 X^T y / s^2, where X = [x, 1]. Within the mean-field family the ELBO is
maximised by the exact posterior means and variances 1 / diag(A) (not the
marginal variances diag(A^-1)). Training with the closed-form KL must land there.
"""

from __future__ import annotations

import math

import pytest
import torch

from bbbrun.bnn import layers
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import config_from_dict
from bbbrun.fit.loop import TrainData, Trainee, fit, make_optimizer

NOISE_STD = 0.5
PRIOR_STD = 1.0
NUM_POINTS = 40


def linear_data() -> tuple[torch.Tensor, torch.Tensor]:
    # x away from zero makes w and b strongly correlated a posteriori, so the
    # mean-field variances 1 / diag(A) differ clearly from the marginal ones.
    g = torch.Generator().manual_seed(0)
    x = torch.empty(NUM_POINTS, 1).uniform_(1.0, 3.0, generator=g)
    y = 1.5 * x - 0.7 + NOISE_STD * torch.randn(NUM_POINTS, 1, generator=g)
    return x, y


def exact_mean_field(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(posterior mean, mean-field variances 1/diag(A), marginal variances diag(A^-1)) for (w, b)."""
    design = torch.cat([x, torch.ones_like(x)], dim=1).double()  # (N, 2)
    precision = design.T @ design / NOISE_STD**2 + torch.eye(2, dtype=torch.float64) / PRIOR_STD**2
    mean = torch.linalg.solve(precision, design.T @ y.double() / NOISE_STD**2).ravel()
    return mean, 1.0 / precision.diagonal(), torch.linalg.inv(precision).diagonal()


def trained_posterior(
    estimator: str, batch_size: int | None, epochs: int, x: torch.Tensor, y: torch.Tensor, seed: int = 0
) -> BayesianNetwork:
    cfg = config_from_dict({
        "seed": seed, "device": "cpu",
        "model": {"num_layers": 1, "likelihood": "fixed", "likelihood_std": NOISE_STD, "prior": "gaussian",
                  "prior_std": PRIOR_STD, "kl": "closed_form", "estimator": estimator, "init_mu_std": 0.0,
                  "init_rho_mean": -3.0, "init_rho_std": 0.0, "bias_rho_init": -3.0},
        "optim": {"lr": 0.1, "lr_final_factor": 0.002},
        "train": {"epochs": epochs, "batch_size": batch_size, "log_every": epochs, "checkpoint_every": epochs},
    })
    torch.manual_seed(cfg.seed)
    model = BayesianNetwork(cfg.model)  # no standardiser: the weights are in the data's units
    state = fit(Trainee(model, make_optimizer(model, cfg.optim), TrainData(x, y, x, y), cfg,
                        torch.Generator().manual_seed(seed)))
    assert state.status == "completed"
    return model


def weight_and_bias(model: BayesianNetwork) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's (mu, sigma) for (w, b)."""
    layer = model.layout[0]
    index = [layer.weight.start, layer.bias.start]
    mu, sigma = model.mu.detach().double(), layers.sigma_from_rho(model.rho.detach()).double()
    return mu[index], sigma[index]


@pytest.mark.parametrize(("batch_size", "epochs"), [(None, 1000), (20, 600), (35, 600)])
def test_one_layer_reaches_the_optimal_mean_field_gaussian(batch_size: int | None, epochs: int) -> None:
    """Full batch, 2 equal minibatches per epoch, and a ragged pair (35 + 5 rows): the same objective.

    The ragged case is where a KL weighted by (n / B_i) pi_i per step lands on NLL + 2.29 KL, with stds
    about 50% too wide.
    """
    x, y = linear_data()
    mean, mean_field_var, marginal_var = exact_mean_field(x, y)
    model = trained_posterior("local_reparameterization", batch_size, epochs, x, y)
    mu, sigma = weight_and_bias(model)
    std = mean_field_var.sqrt()
    # Tolerance: the gradients are unbiased but noisy (one pre-activation draw
    # per point and step), so training stops near, not at, the optimum. Over
    # seeds 0-3 both cases land within 0.1 posterior std of the means and 4%
    # of the stds; we allow 0.2 std and 10%. A wrong objective misses by far
    # more: the marginal stds are over 3x the mean-field ones here (checked
    # below), and a KL weighted 1 / (number of batches) would shrink sigma
    # by sqrt(2). The local estimator is used because the plain one's higher
    # gradient variance needs several times more steps to settle as close.
    assert bool(((mu - mean).abs() < 0.2 * std).all()), (mu, mean, std)
    torch.testing.assert_close(sigma, std, rtol=0.10, atol=0.0)
    assert bool((marginal_var.sqrt() > 3 * std).all())
    assert math.isclose(float(mean[0]), 1.5, abs_tol=0.2)  # the data's slope, as a sanity check
