"""The network's likelihoods and the minibatch objective, on problems small enough to solve here."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from bbbrun.bnn.likelihoods.gaussian import gaussian_nll
from bbbrun.bnn.loss import negative_elbo
from bbbrun.bnn.network import BayesianNetwork, Output
from bbbrun.bnn.standardize import fit_standardizer
from bbbrun.config import Config, KLWeighting, config_from_dict
from bbbrun.evaluate.predictive import sample_predictive
from bbbrun.evaluate.regression import summarize
from bbbrun.fit.loop import TrainData, Trainee, TrainState, fit, history_columns, make_optimizer


def tiny_config(**model: object) -> Config:
    return config_from_dict({
        "seed": 0, "device": "cpu", "data": {"standardize": True},
        "model": {"hidden_dim": 16, "num_layers": 2, "activation": "silu", "kl": "closed_form",
                  "init_mu_std": None, "init_rho_mean": -5.0, "bias_rho_init": -5.0, **model},
        "optim": {"lr": 0.03, "lr_final_factor": 0.05},
        "train": {"epochs": 400, "log_every": 100, "checkpoint_every": 400},
    })


def noisy_sine(noise_std: torch.Tensor | float, num_points: int = 400) -> TrainData:
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-2.0, 2.0, num_points).unsqueeze(1)
    y = 2.0 * torch.sin(x) + noise_std * torch.randn(num_points, 1, generator=g)
    return TrainData(x, y, x, y)


def train(cfg: Config, data: TrainData) -> tuple[BayesianNetwork, TrainState]:
    torch.manual_seed(cfg.seed)
    model = BayesianNetwork(cfg.model, fit_standardizer(data.x_train, data.y_train, cfg.data.standardize))
    state = fit(Trainee(model, make_optimizer(model, cfg.optim), data, cfg, torch.Generator().manual_seed(0)))
    assert state.status == "completed"
    return model, state


# ------------------------------------------------------------------ likelihoods


def test_learned_noise_converges_near_the_true_noise() -> None:
    true_noise = 0.5
    cfg = tiny_config(likelihood="learned", likelihood_std=1.5)  # starts 3x too wide
    model, state = train(cfg, noisy_sine(true_noise))
    noise = model.likelihood.noise_std()
    assert noise is not None
    # 400 residuals estimate a std to ~4% (1 / sqrt(2 * 400)); the learned
    # scale also absorbs a little misfit and weight noise.
    assert noise == pytest.approx(true_noise, rel=0.1)
    # The history's noise column follows it down from the starting value.
    column = [row["noise_std"] for row in state.history]
    assert column[-1] == pytest.approx(noise) and column[0] < 1.5


def test_fixed_noise_stays_fixed() -> None:
    model, _ = train(tiny_config(likelihood="fixed", likelihood_std=0.3), noisy_sine(0.5))
    assert model.likelihood.noise_std() == pytest.approx(0.3)


def test_heteroscedastic_scales_are_positive_and_follow_the_noise() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-2.0, 2.0, 400).unsqueeze(1)
    data = noisy_sine(torch.where(x < 0, 0.2, 1.0))
    cfg = tiny_config(likelihood="heteroscedastic")
    untrained = BayesianNetwork(cfg.model)
    _, far = untrained.likelihood.mean_and_scale(untrained(torch.tensor([[-1e4], [0.0], [1e4]])).raw)
    assert far.shape == (3, 1) and bool((far > 0).all())
    assert untrained.likelihood.noise_std() is None

    model, _ = train(cfg, data)
    summary = summarize(sample_predictive(model, x, 200, seed=0), (0.05, 0.95))
    assert bool((summary.aleatoric_std > 0).all())
    quiet = float(summary.aleatoric_std[x.ravel() < -0.5].mean())
    loud = float(summary.aleatoric_std[x.ravel() > 0.5].mean())
    # The learned scale also soaks up some weight noise, so it runs ~15% high here.
    assert quiet == pytest.approx(0.2, rel=0.3) and loud == pytest.approx(1.0, rel=0.3)
    assert loud > 3 * quiet


# ---------------------------------------------------------- the minibatch ELBO


@pytest.mark.parametrize("num_batches", [1, 2, 7, 64, 5000])
@pytest.mark.parametrize("scheme", list(KLWeighting))
def test_kl_weights_sum_to_one(num_batches: int, scheme: KLWeighting) -> None:
    from bbbrun.bnn.loss import kl_weights

    weights = kl_weights(num_batches, scheme)
    assert len(weights) == num_batches and all(w >= 0 and math.isfinite(w) for w in weights)
    assert math.fsum(weights) == pytest.approx(1.0, abs=1e-12)


def test_blundell_weights_are_the_papers_formula() -> None:
    from bbbrun.bnn.loss import kl_weights

    m = 12
    exact = [Fraction(2 ** (m - i), 2**m - 1) for i in range(1, m + 1)]
    assert kl_weights(m, KLWeighting.BLUNDELL) == pytest.approx([float(f) for f in exact], rel=1e-12)


class MeanAndScale:
    """A likelihood whose raw outputs are the Gaussian's mean and scale themselves."""

    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(y, raw[:, :1], raw[:, 1:])


def fixed_output(num_points: int) -> tuple[Output, torch.Tensor]:
    """A deterministic 'forward pass' (mean, scale, KL) and targets, in float64."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(num_points, 1, generator=g, dtype=torch.float64)
    mean = torch.randn(num_points, 1, generator=g, dtype=torch.float64)
    scale = torch.rand(num_points, 1, generator=g, dtype=torch.float64) + 0.5
    return Output(raw=torch.cat([mean, scale], 1), kl=torch.tensor(37.0, dtype=torch.float64)), y


def batch_of(out: Output, y: torch.Tensor, i: int, size: int, kl: torch.Tensor) -> tuple[Output, torch.Tensor]:
    rows = slice(i * size, (i + 1) * size)
    return Output(raw=out.raw[rows], kl=kl), y[rows]


@pytest.mark.parametrize("scheme", list(KLWeighting))
def test_minibatch_losses_are_on_the_full_data_scale(scheme: KLWeighting) -> None:
    from bbbrun.bnn.loss import kl_weights

    n, num_batches = 120, 6
    size = n // num_batches
    out, y = fixed_output(n)
    full = float(negative_elbo(MeanAndScale(), out, y, n, kl_weight=1.0).total)
    totals = [
        float(negative_elbo(MeanAndScale(), *batch_of(out, y, i, size, out.kl), n, kl_weight=w,
                            num_batches=num_batches).total)
        for i, w in enumerate(kl_weights(num_batches, scheme))
    ]
    # Blundell's minibatch objectives add up to the full-data negative ELBO;
    # each step's loss is that objective scaled by n / batch size.
    assert sum(totals) / num_batches == pytest.approx(full, rel=1e-12)
    if scheme is KLWeighting.UNIFORM:
        # ... so with uniform weights every step estimates the full-data loss
        # without bias: n times the batch's mean NLL, plus the whole KL.
        zero = torch.zeros((), dtype=torch.float64)
        for i, total in enumerate(totals):
            data_term = float(negative_elbo(MeanAndScale(), *batch_of(out, y, i, size, zero), n, kl_weight=1.0,
                                             num_batches=num_batches).total)
            assert total == pytest.approx(data_term + float(out.kl), rel=1e-12)


def test_history_reports_the_full_data_terms_per_point() -> None:
    cfg = tiny_config(likelihood="learned", likelihood_std=1.0)
    cfg = config_from_dict({**_raw(cfg), "train": {**_raw(cfg)["train"], "batch_size": 100, "epochs": 30,
                                                   "log_every": 10}})
    data = noisy_sine(0.5)
    model, state = train(cfg, data)
    assert [row["epoch"] for row in state.history] == [10, 20, 30]
    last = state.history[-1]
    assert list(last) == history_columns(model.likelihood)
    assert last["loss"] == pytest.approx(last["nll"] + last["kl"])
    assert 0.0 < last["kl_weight"] <= 1.0
    # The KL column is the whole KL per training point (one epoch's weights add
    # up to one), not a batch's share of it; it moves little within an epoch.
    with torch.no_grad():
        kl_now = float(model(data.x_train).kl) / data.num_train
    assert last["kl"] == pytest.approx(kl_now, rel=0.05)
    # The NLL column is per point over the whole training set (about log(0.5 * sqrt(2 pi e)) ~ 0.73).
    assert 0.5 < last["nll"] < 1.2


def _raw(cfg: Config) -> dict:
    from bbbrun.config import config_to_dict

    return config_to_dict(cfg)
