"""The split metrics added for the UCI benchmark: CRPS against a double loop and the Gaussian closed form,
interval widths against the mixture's exact quantiles, ll against nll."""

from __future__ import annotations

import math

import pytest
import torch

from bbbrun.bnn.likelihoods.gaussian import GaussianSamples
from bbbrun.evaluate import regression
from bbbrun.evaluate.regression import COVERAGE_LEVELS, crps, evaluate, mixture_quantiles, summarize


def samples_of(f: torch.Tensor, scale: torch.Tensor, seed: int) -> GaussianSamples:
    noise = torch.randn(f.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return GaussianSamples(f=f, scale=scale, y=f + scale * noise)


def naive_crps(draws: list[list[float]], targets: list[float]) -> float:
    """mean_s |x_s - y| - 0.5 mean_{s != t} |x_s - x_t| per point, averaged over points."""
    total = 0.0
    for x, y in zip(draws, targets, strict=True):
        s = len(x)
        to_target = sum(abs(xi - y) for xi in x) / s
        between = sum(abs(xi - xj) for i, xi in enumerate(x) for j, xj in enumerate(x) if i != j)
        total += to_target - 0.5 * between / (s * (s - 1))
    return total / len(targets)


def gaussian_crps(y: float, mean: float, scale: float) -> float:
    z = (y - mean) / scale
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return scale * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def test_crps_matches_a_double_loop_over_the_draws() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(7, 5, generator=g, dtype=torch.float64)
    samples = samples_of(f, torch.full_like(f, 0.3), seed=1)
    samples.y[0, 2] = samples.y[1, 2]  # a tie
    y = torch.tensor([0.0, 1.5, -2.0, 0.1, 9.0], dtype=torch.float64)
    expected = naive_crps(samples.y.mT.tolist(), y.tolist())
    assert crps(samples, y) == pytest.approx(expected, rel=1e-12)


def test_crps_does_not_depend_on_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    f = torch.randn(6, 11, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    samples = samples_of(f, torch.ones_like(f), seed=3)
    y = torch.linspace(-2, 2, 11, dtype=torch.float64)
    whole = crps(samples, y)
    monkeypatch.setattr(regression, "MIXTURE_CHUNK_ELEMENTS", 6 * 4)  # 4 points a chunk, the last one short
    assert crps(samples, y) == pytest.approx(whole, rel=1e-12)


def test_one_draw_scores_its_absolute_error() -> None:
    samples = samples_of(torch.tensor([[1.0, -1.0]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64), 0)
    assert crps(samples, torch.tensor([3.0, -1.5], dtype=torch.float64)) == pytest.approx(1.25)


@pytest.mark.parametrize(("y", "mean", "scale"), [(0.0, 0.0, 1.0), (1.3, -0.4, 0.5), (-3.0, 2.0, 2.0)])
def test_crps_of_a_gaussian_is_its_closed_form(y: float, mean: float, scale: float) -> None:
    # Every network says N(mean, scale^2): 20000 draws at each of 50 points, each point's estimate
    # has a std of about 0.6 scale / sqrt(S), and the mean over points 1/sqrt(50) of that.
    num_samples, num_points = 20000, 50
    f = torch.full((num_samples, num_points), mean, dtype=torch.float64)
    samples = samples_of(f, torch.full_like(f, scale), seed=4)
    targets = torch.full((num_points,), y, dtype=torch.float64)
    error = 0.6 * scale / math.sqrt(num_samples * num_points)
    assert crps(samples, targets) == pytest.approx(gaussian_crps(y, mean, scale), abs=5 * error)


def test_evaluate_reports_ll_crps_and_exact_widths() -> None:
    g = torch.Generator().manual_seed(5)
    f = torch.randn(40, 30, generator=g, dtype=torch.float64)
    scale = 0.2 + torch.rand(40, 30, generator=g, dtype=torch.float64)
    samples = samples_of(f, scale, seed=6)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    metrics = evaluate(samples, summarize(samples, (0.05, 0.95)), y, None)
    assert metrics["ll"] == -float(metrics["nll"])  # type: ignore[arg-type]
    assert metrics["crps"] == pytest.approx(naive_crps(samples.y.mT.tolist(), y.tolist()), rel=1e-12)
    for level in COVERAGE_LEVELS:
        lower, upper = mixture_quantiles(samples, ((1 - level) / 2, (1 + level) / 2))
        assert metrics[f"interval_width_{round(level * 100)}"] == pytest.approx(float((upper - lower).mean()))
    widths = [metrics[f"interval_width_{round(level * 100)}"] for level in COVERAGE_LEVELS]
    assert widths == sorted(widths)  # type: ignore[type-var]
    assert "rmse_true" not in metrics and "coverage_90" in metrics and "calibration" in metrics


def test_widths_of_one_gaussian_are_its_closed_form() -> None:
    f = torch.zeros(5, 3, dtype=torch.float64)
    samples = samples_of(f, torch.full_like(f, 2.0), seed=7)
    metrics = evaluate(samples, summarize(samples, (0.05, 0.95)), torch.zeros(3, dtype=torch.float64), f[0])
    assert metrics["interval_width_90"] == pytest.approx(2 * 2.0 * 1.6448536, rel=1e-5)
    assert metrics["interval_width_50"] == pytest.approx(2 * 2.0 * 0.6744898, rel=1e-5)
    assert metrics["rmse_true"] == 0.0
