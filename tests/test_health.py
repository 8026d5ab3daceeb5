"""Fit health warnings: each check where it must fire and where it must not, then two real trainings."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import write_config

from bbbrun.bnn.likelihoods.gaussian import GaussianSamples, HeteroscedasticGaussian, inverse_softplus
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import Config, Likelihood, ModelConfig, OptimConfig, Prior, load_config
from bbbrun.evaluate.predictive import predictive_at
from bbbrun.evaluate.regression import summarize
from bbbrun.runs import health
from bbbrun.runs.layout import RunDir
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session


def column(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).reshape(-1, 1)


def sine_data(num_points: int, noise_std: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x on [-3, 3] and y = 3 sin(2x) + noise, as (N, 1) float32 arrays."""
    x = np.linspace(-3.0, 3.0, num_points)
    y = 3.0 * np.sin(2.0 * x) + np.random.default_rng(seed).normal(0.0, noise_std, num_points)
    return column(x), column(y)


def rho_for(sigma: float, size: int = 101) -> torch.Tensor:
    return torch.full((size,), inverse_softplus(sigma))


# ---------------------------------------------------------------- check 1: NLL


def test_constant_baseline_matches_a_normal_log_density() -> None:
    rng = np.random.default_rng(1)
    y_train, y_val = column(rng.normal(2.0, 3.0, 500)), column(rng.normal(2.5, 3.0, 100))
    train = torch.from_numpy(y_train.astype(np.float64))
    normal = torch.distributions.Normal(train.mean(), train.std(unbiased=False))
    expected = -normal.log_prob(torch.from_numpy(y_val.astype(np.float64))).mean()
    assert health.constant_baseline_nll(y_train, y_val) == pytest.approx(float(expected), rel=1e-9)


def test_nll_above_the_constant_baseline_warns_with_the_learning_rate() -> None:
    y_train, y_val = sine_data(200, 0.5)[1], sine_data(50, 0.5, seed=2)[1]
    cfg = Config(optim=OptimConfig(lr=5.0))
    baseline = health.constant_baseline_nll(y_train, y_val)
    message = health.worse_than_constant(baseline + 0.5, y_train, y_val, cfg)
    assert message is not None
    assert message.startswith(f"validation NLL {baseline + 0.5:.3g} is above the {baseline:.3g}")
    assert "optim.lr too high (5)" in message
    assert health.worse_than_constant(baseline - 0.5, y_train, y_val, cfg) is None
    # A fixed noise scale far under the errors is named as the cause, not the learning rate.
    fixed = health.worse_than_constant(baseline + 0.5, y_train, y_val, Config(), val_rmse=1.5)
    assert fixed is not None and "model.likelihood_std=0.1" in fixed and "optim.lr" not in fixed
    close = health.worse_than_constant(baseline + 0.5, y_train, y_val, Config(), val_rmse=0.2)
    assert close is not None and "optim.lr" in close
    failed_mean = health.worse_than_constant(baseline + 0.5, y_train, y_val, Config(), val_rmse=1e6)
    assert failed_mean is not None and "optim.lr" in failed_mean


def test_constant_training_targets_skip_the_baseline() -> None:
    assert health.worse_than_constant(9.0, column(np.ones(10)), column(np.ones(5)), Config()) is None


def test_validation_nll_falls_back_to_the_samples() -> None:
    f = torch.tensor([[0.0, 1.0], [0.5, 2.0]])  # (S, N)
    samples = GaussianSamples(f, torch.ones(()).expand(2, 2), f.clone())
    y = np.array([[0.2], [1.5]], dtype=np.float32)
    # A naive double loop over points and samples.
    expected = -sum(
        math.log(sum(math.exp(-0.5 * (float(y[n, 0]) - float(f[s, n])) ** 2) / math.sqrt(2 * math.pi) for s in range(2))
                 / 2) for n in range(2)
    ) / 2
    assert health.validation_nll(samples, y, {}) == pytest.approx(expected, rel=1e-5)
    assert health.validation_nll(samples, y, {"val_nll": 4.0}) == 4.0


# ----------------------------------------------------------- check 2: flat mean


def test_neighbour_noise_recovers_the_noise_of_a_smooth_function() -> None:
    x, y = sine_data(2000, 0.3)
    assert health.neighbour_noise_std(x, y) == pytest.approx(0.3, rel=0.1)


def test_neighbour_noise_scales_features_and_subsamples() -> None:
    rng = np.random.default_rng(3)
    x = np.stack([rng.uniform(-1, 1, 5000), rng.uniform(-1000, 1000, 5000)], axis=1)
    y = np.sin(2 * x[:, 0]) + np.cos(x[:, 1] / 500) + rng.normal(0.0, 0.2, 5000)
    # 2000 of 5000 points in 2-D: neighbours are farther, so a looser bound.
    assert health.neighbour_noise_std(x, column(y)) == pytest.approx(0.2, rel=0.3)


def test_flat_mean_over_a_signal_warns() -> None:
    x, y = sine_data(300, 0.3)
    message = health.flat_mean(torch.full((300,), 0.01), x, y, Config())
    assert message is not None and message.startswith("the predictive mean is flat")


def test_flat_mean_over_constant_plus_noise_is_healthy() -> None:
    # The right answer for such data is a flat mean, whatever the noise's size.
    for noise_std in (0.01, 1.0, 50.0):
        x = column(np.linspace(-3, 3, 300))
        y = column(4.0 + np.random.default_rng(4).normal(0.0, noise_std, 300))
        assert health.flat_mean(torch.full((300,), 4.0), x, y, Config()) is None


def test_a_mean_that_follows_the_signal_is_not_flat() -> None:
    x, y = sine_data(300, 0.3)
    mean = torch.from_numpy(3.0 * np.sin(2.0 * x.ravel()))
    assert health.flat_mean(mean, x, y, Config()) is None


# -------------------------------------------------------- check 3: weight sigmas


def test_collapsed_sigmas_warn() -> None:
    message = health.weight_sigmas(rho_for(1e-7), Config(), 240)
    assert message is not None and "collapsed to a point estimate" in message


def test_sigmas_at_the_gaussian_prior_warn() -> None:
    cfg = Config(model=ModelConfig(prior_std=0.5))
    message = health.weight_sigmas(rho_for(0.48), cfg, 240)
    assert message is not None and "learned nothing" in message and "model.prior_std" in message
    assert health.weight_sigmas(rho_for(0.4), cfg, 240) is None


def test_the_scale_mixture_is_measured_against_sigma_1() -> None:
    cfg = Config(model=ModelConfig(prior=Prior.SCALE_MIXTURE, sigma_1=2.0, prior_std=1.0))
    assert health.weight_sigmas(rho_for(0.95), cfg, 240) is None
    message = health.weight_sigmas(rho_for(1.9), cfg, 240)
    assert message is not None and "model.sigma_1" in message


def test_the_median_ignores_a_few_odd_sigmas() -> None:
    rho = torch.cat([rho_for(0.05, 90), rho_for(1e-8, 11)])  # a few pruned weights, most healthy
    assert health.weight_sigmas(rho, Config(), 240) is None


# ------------------------------------------------------------------ check 4: KL


@pytest.mark.parametrize(("kl", "nll", "fires"), [
    (3.0, 1.0, True),  # the prior outweighs the data
    (0.5, -2.0, False),  # KL above a negative NLL but under a nat per point: precise data, not a problem
    (2.0, 3.0, False),  # the data outweigh the prior
])
def test_kl_dominating_the_last_epoch(kl: float, nll: float, fires: bool) -> None:
    history = [{"epoch": 10, "kl": 9.0, "nll": 0.0}, {"epoch": 20, "kl": kl, "nll": nll}]
    message = health.kl_dominates(history, Config(), 240, 97)
    assert (message is not None) == fires
    if fires:
        assert message is not None and "epoch (20)" in message and "240 training points for 97 weights" in message


def test_no_history_no_kl_warning() -> None:
    assert health.kl_dominates([], Config(), 240, 97) is None


# ----------------------------------------------------------- check 5: noise


def test_a_tiny_homoscedastic_noise_warns() -> None:
    y = column(np.random.default_rng(5).normal(0.0, 2.0, 400))
    learned = Config(model=ModelConfig(likelihood=Likelihood.LEARNED))
    message = health.noise_at_bound(1e-4, y, learned)
    assert message is not None and "interpolates the noise" in message
    fixed = health.noise_at_bound(1e-4, y, Config(model=ModelConfig(likelihood_std=1e-4)))
    assert fixed is not None and "model.likelihood_std (0.0001)" in fixed
    assert health.noise_at_bound(0.1, y, learned) is None
    assert health.noise_at_bound(None, y, learned) is None


def test_the_heteroscedastic_floor_is_min_scale_in_data_units() -> None:
    likelihood = HeteroscedasticGaussian(ModelConfig(), Standardizer(y_scale=3.0))
    floor = health.noise_floor(likelihood)
    # The head's smallest output: softplus of a very negative raw scale, plus the floor, times y_scale.
    smallest = likelihood.mean_and_scale(torch.tensor([[0.0, -100.0]]))[1]
    assert floor == pytest.approx(float(smallest), rel=1e-6)


def test_heteroscedastic_scales_at_the_floor_warn() -> None:
    hetero = Config(model=ModelConfig(likelihood=Likelihood.HETEROSCEDASTIC))
    message = health.scale_at_floor(torch.full((50,), 1.5e-4), 1e-4, hetero, 240)
    assert message is not None and "floor" in message
    assert health.scale_at_floor(torch.full((50,), 3e-4), 1e-4, hetero, 240) is None
    learned = Config(model=ModelConfig(likelihood=Likelihood.LEARNED))
    assert health.scale_at_floor(torch.full((50,), 1.5e-4), 1e-4, learned, 240) is None


# ------------------------------------------------------- all checks together


def fake_fit(sigma: float, kl: float, noise_std: float) -> tuple[SimpleNamespace, dict, dict]:
    """A session-shaped namespace over sine data whose predictive mean is the true function,
    with its summaries and metrics."""
    x, y = sine_data(300, 0.3)
    mean = torch.from_numpy(3.0 * np.sin(2.0 * x.ravel()))
    summary = SimpleNamespace(mean=mean, aleatoric_std=torch.full((300,), noise_std))
    model = SimpleNamespace(rho=rho_for(sigma), num_weights=101, likelihood=None)
    session = SimpleNamespace(
        cfg=Config(model=ModelConfig(likelihood=Likelihood.LEARNED)), model=model,
        dataset=SimpleNamespace(x_train=x, y_train=y, x_val=x, y_val=y),
        state=SimpleNamespace(history=[{"epoch": 100, "kl": kl, "nll": 0.5}]),
    )
    metrics = {"val_nll": health.constant_baseline_nll(y, y) - 1.0, "noise_std": noise_std}
    return session, {"train": summary, "val": summary}, metrics


def test_a_healthy_fake_fit_has_no_warnings() -> None:
    session, summaries, metrics = fake_fit(sigma=0.05, kl=0.2, noise_std=0.3)
    assert health.fit_warnings(session, None, summaries, metrics) == []  # type: ignore[arg-type]


def test_a_sick_fake_fit_reports_each_symptom_once() -> None:
    session, summaries, metrics = fake_fit(sigma=1e-7, kl=4.0, noise_std=1e-6)
    messages = health.fit_warnings(session, None, summaries, metrics)  # type: ignore[arg-type]
    assert len(messages) == 3
    assert "collapsed" in messages[0] and "KL" in messages[1] and "noise scale" in messages[2]


# ---------------------------------------------------------- real trainings


def train_and_check(tmp_path: Path, overrides: list[str]) -> list[str]:
    """Train a tiny run, recompute its predictive, and return the health warnings."""
    model = {"hidden_dim": 8, "num_layers": 3, "likelihood": "learned", "likelihood_std": 1.5,
             "activation": "silu", "init_mu_std": None, "init_rho_mean": -5.0}
    config = write_config(
        tmp_path / "tiny.yaml", model=model, data={"num_points": 300, "standardize": True},
        optim={"lr": 0.02}, train={"epochs": 2000, "log_every": 100, "checkpoint_every": 2000},
        predict={"num_samples": 50},
    )
    session = start_session(load_config(config, overrides))
    (tmp_path / "run").mkdir()
    result = run_training(session, RunDir(tmp_path / "run"))
    assert result.status == "completed"
    cfg, ds = session.cfg, session.dataset
    samples = {"train": predictive_at(session.model, ds.x_train, cfg.predict, cfg.seed),
               "val": predictive_at(session.model, ds.x_val, cfg.predict, cfg.seed)}
    summaries = {name: summarize(s, cfg.predict.interval) for name, s in samples.items()}
    return health.fit_warnings(session, samples["val"], summaries, result.metrics)


@pytest.mark.slow
def test_a_healthy_tiny_training_has_no_warnings(tmp_path: Path) -> None:
    assert train_and_check(tmp_path, []) == []


@pytest.mark.slow
def test_a_learning_rate_of_five_is_named_in_an_nll_warning(tmp_path: Path) -> None:
    # 100 epochs: at lr=5 this run diverges (NaN) a few hundred epochs later.
    messages = train_and_check(tmp_path, ["optim.lr=5", "train.epochs=100"])
    assert any(m.startswith("validation NLL") and "optim.lr too high (5)" in m for m in messages)
