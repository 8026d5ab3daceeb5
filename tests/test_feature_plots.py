"""Each split's figures for inputs of any width: valid PNGs for one, a few and many points, degenerate
predictives included; the rank correlation in the error figure's title against a hand computation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bbbrun import plots
from bbbrun.bnn.likelihoods.gaussian import GaussianSamples
from bbbrun.evaluate.regression import pit, summarize
from bbbrun.runs.figures import FEATURE_FIGURES, write_feature_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def predictive(num_points: int, spread: float, scale: float, seed: int) -> tuple[GaussianSamples, torch.Tensor]:
    """S = 30 networks whose means vary by `spread` around sin(i), noise `scale`, and targets near them."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.sin(torch.arange(num_points, dtype=torch.float64))
    f = centre + spread * torch.randn(30, num_points, generator=g, dtype=torch.float64)
    noise = torch.randn(30, num_points, generator=g, dtype=torch.float64)
    samples = GaussianSamples(f=f, scale=torch.full_like(f, scale), y=f + scale * noise)
    return samples, centre + 0.3 * torch.randn(num_points, generator=g, dtype=torch.float64)


def assert_figures_written(tmp_path: Path, split: str, samples: GaussianSamples, y: torch.Tensor) -> None:
    paths = {name: tmp_path / f"{split}_{name}.png" for name in FEATURE_FIGURES}
    summary = summarize(samples, (0.05, 0.95))
    write_feature_plots(paths, split, y.numpy()[:, None], summary, pit(samples, y).numpy())
    for path in paths.values():
        assert path.read_bytes().startswith(PNG_SIGNATURE), path


@pytest.mark.parametrize("num_points", [1, 7, 5000])
def test_every_figure_is_a_png(tmp_path: Path, num_points: int) -> None:
    samples, y = predictive(num_points, spread=0.2, scale=0.1, seed=num_points)
    assert_figures_written(tmp_path, "val", samples, y)


@pytest.mark.parametrize("num_points", [1, 7, 5000])
def test_a_constant_predictive_with_zero_std_still_draws(tmp_path: Path, num_points: int) -> None:
    # Every network predicts 2 with no noise: zero std, the PIT 0, 1 or nan, the std ranks all tied.
    f = torch.full((30, num_points), 2.0, dtype=torch.float64)
    samples = GaussianSamples(f=f, scale=torch.zeros_like(f), y=f.clone())
    y = torch.linspace(0.0, 2.0, num_points, dtype=torch.float64)  # the last equals the prediction: PIT 0/0
    assert_figures_written(tmp_path, "test", samples, y)


def test_targets_equal_to_a_constant_prediction_still_draw(tmp_path: Path) -> None:
    f = torch.ones(4, 3, dtype=torch.float64)
    samples = GaussianSamples(f=f, scale=torch.full_like(f, 1e-3), y=f.clone())
    assert_figures_written(tmp_path, "val", samples, torch.ones(3, dtype=torch.float64))


def test_rank_correlation_matches_a_hand_computation() -> None:
    # ranks of a: 0, 2, 1, 3.5, 3.5 -> 1, 3, 2, 4.5, 4.5 one-based; of b: 1, 2, 3, 4, 5.
    a = np.array([1.0, 5.0, 3.0, 7.0, 7.0])
    b = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    ra, rb = np.array([1, 3, 2, 4.5, 4.5]) - 3, np.array([1, 2, 3, 4, 5]) - 3
    expected = float((ra * rb).sum() / math.sqrt((ra * ra).sum() * (rb * rb).sum()))  # 8.5 / sqrt(9.5 * 10)
    assert expected == pytest.approx(8.5 / math.sqrt(95))
    assert plots.rank_correlation(a, b) == pytest.approx(expected)
    assert plots.rank_correlation(b, -(b**3)) == pytest.approx(-1.0)  # monotone, whatever the shape
    assert math.isnan(plots.rank_correlation(np.zeros(4), b[:4]))


def test_binned_means_follow_the_sort_by_std() -> None:
    std = np.array([4.0, 1.0, 3.0, 2.0])
    error = np.array([40.0, 10.0, 30.0, 20.0])
    bin_std, bin_error = plots.binned_means(std, error, 2)
    np.testing.assert_allclose(bin_std, [1.5, 3.5])
    np.testing.assert_allclose(bin_error, [15.0, 35.0])
