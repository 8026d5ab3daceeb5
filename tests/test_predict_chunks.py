"""The batched predictive: the chunk size changes nothing, and each figure matches a naive computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import Likelihood, ModelConfig
from bbbrun.evaluate import predictive as predict
from bbbrun.evaluate import regression as metrics
from bbbrun.evaluate.predictive import sample_predictive
from bbbrun.evaluate.regression import quantiles, summarize

NUM_SAMPLES = 23
NUM_POINTS = 37


def trained_looking_model(likelihood: Likelihood) -> BayesianNetwork:
    """A small network with weights spread enough that samples differ visibly."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_dim=8, num_layers=3, likelihood=likelihood, likelihood_std=0.3,
                      init_mu_std=None, init_rho_mean=-1.5)
    return BayesianNetwork(cfg, Standardizer(x_shift=(0.5,), x_scale=(2.0,), y_shift=1.0, y_scale=3.0))


def inputs() -> torch.Tensor:
    return torch.linspace(-3.0, 3.0, NUM_POINTS).view(-1, 1)


@pytest.mark.parametrize("likelihood", [Likelihood.FIXED, Likelihood.LEARNED, Likelihood.HETEROSCEDASTIC])
def test_any_chunk_size_gives_identical_samples(likelihood: Likelihood, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(predict, "POINT_TILE", 10)  # 37 points span four tiles, the last one short
    model = trained_looking_model(likelihood)
    whole = sample_predictive(model, inputs(), NUM_SAMPLES, seed=3)
    shapes = set()
    for chunk_elements in (1, 8 * 10 * 2, 8 * 10 * 5, 8 * 10 * 22, 10**7):
        shapes.add(predict.chunk_shape(NUM_POINTS, NUM_SAMPLES, 8, chunk_elements))
        part = sample_predictive(model, inputs(), NUM_SAMPLES, seed=3, chunk_elements=chunk_elements)
        for name in ("f", "scale", "y"):
            assert torch.equal(getattr(part, name), getattr(whole, name)), (name, chunk_elements)
    assert shapes == {(10, 1), (10, 2), (10, 5), (10, 22), (10, 23)}


def test_samples_do_not_depend_on_the_tile_beyond_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    model = trained_looking_model(Likelihood.HETEROSCEDASTIC)
    whole = sample_predictive(model, inputs(), NUM_SAMPLES, seed=3)
    monkeypatch.setattr(predict, "POINT_TILE", 3)
    tiled = sample_predictive(model, inputs(), NUM_SAMPLES, seed=3)
    torch.testing.assert_close(tiled.y, whole.y)


def test_the_seed_fixes_the_draws() -> None:
    model = trained_looking_model(Likelihood.FIXED)
    a, b = (sample_predictive(model, inputs(), NUM_SAMPLES, seed=s) for s in (3, 3))
    c = sample_predictive(model, inputs(), NUM_SAMPLES, seed=4)
    assert torch.equal(a.y, b.y) and not torch.equal(a.y, c.y)


@pytest.mark.parametrize("likelihood", [Likelihood.FIXED, Likelihood.HETEROSCEDASTIC])
def test_samples_are_the_sampled_networks_one_by_one(likelihood: Likelihood) -> None:
    model = trained_looking_model(likelihood)
    x = inputs()
    samples = sample_predictive(model, x, NUM_SAMPLES, seed=5, chunk_elements=16)
    w = model.sample_weights(NUM_SAMPLES, torch.Generator().manual_seed(5))
    for s in (0, 7, NUM_SAMPLES - 1):
        mean, scale = model.likelihood.mean_and_scale(model.run_samples(x, w[s : s + 1]))
        torch.testing.assert_close(samples.f[s], mean.view(-1))
        torch.testing.assert_close(samples.scale[s], scale.expand_as(mean).reshape(-1))


def test_quantiles_match_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    draws = torch.randn(101, 9, generator=g)
    levels = (0.05, 0.5, 0.9, 0.95)
    expected = np.quantile(draws.numpy().astype(np.float64), levels, axis=0)
    for got, want in zip(quantiles(draws, levels), expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    # A transposed (S, N) view, as sample_predictive returns, gives the same answer.
    for got, want in zip(quantiles(draws.T.contiguous().mT, levels), expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("likelihood", [Likelihood.FIXED, Likelihood.HETEROSCEDASTIC])
def test_summary_and_metrics_match_a_naive_computation(likelihood: Likelihood) -> None:
    model = trained_looking_model(likelihood)
    samples = sample_predictive(model, inputs(), NUM_SAMPLES, seed=6)
    f, scale = samples.f.double(), samples.scale.double()
    y = f.mean(0) + 0.7 * torch.linspace(-2.0, 2.0, NUM_POINTS, dtype=torch.float64)
    summary = summarize(samples, (0.05, 0.95))
    torch.testing.assert_close(summary.aleatoric_std.double(), scale.square().mean(0).sqrt())
    torch.testing.assert_close(summary.epistemic_std.double(), f.std(0, unbiased=False))
    density = torch.stack([
        torch.tensor([math.exp(-0.5 * ((y[n] - f[s, n]) / scale[s, n]) ** 2) / (scale[s, n] * math.sqrt(2 * math.pi))
                      for n in range(NUM_POINTS)], dtype=torch.float64)
        for s in range(NUM_SAMPLES)
    ]).mean(0)
    assert metrics.mixture_nll(samples, y.float()) == pytest.approx(float(-density.log().mean()), rel=1e-4)
    cdf = torch.stack([
        torch.tensor([0.5 * (1 + math.erf((y[n] - f[s, n]) / (scale[s, n] * math.sqrt(2)))) for n in range(NUM_POINTS)])
        for s in range(NUM_SAMPLES)
    ]).mean(0)
    torch.testing.assert_close(metrics.pit(samples, y.float()).double(), cdf.double(), rtol=1e-5, atol=1e-6)
