"""Exact quantiles of the Monte Carlo mixture: checked against the mixture CDF in float64, closed forms, and
`bbbrun predict` giving a point the same interval whatever else is predicted with it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from statistics import NormalDist

import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.bnn.likelihoods.gaussian import GaussianSamples
from bbbrun.cli import app
from bbbrun.config import load_config
from bbbrun.evaluate import regression
from bbbrun.evaluate.regression import mixture_quantiles, quantiles, summarize
from bbbrun.runs import runner
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import start_session

LEVELS = (0.001, 0.05, 0.3, 0.5, 0.9, 0.999)


def mixture_cdf(q: float, f: list[float], scale: list[float]) -> float:
    """mean_s Phi((q - f_s) / scale_s), one point, in float64."""
    return sum(0.5 * (1 + math.erf((q - m) / (s * math.sqrt(2)))) for m, s in zip(f, scale, strict=True)) / len(f)


def assert_solves_the_mixture_cdf(samples: GaussianSamples, levels: tuple[float, ...]) -> None:
    got = mixture_quantiles(samples, levels)
    for level, q in zip(levels, got, strict=True):
        assert q.dtype == samples.f.dtype and q.shape == (samples.f.shape[1],)
        for n in range(samples.f.shape[1]):
            f, scale = samples.f[:, n].tolist(), samples.scale[:, n].tolist()
            assert mixture_cdf(float(q[n]), f, scale) == pytest.approx(level, abs=1e-5), (level, n)


def random_samples(num_samples: int, num_points: int, seed: int) -> GaussianSamples:
    """Spread-out means and a scale per sample and point, in float32 as the predictive gives them."""
    g = torch.Generator().manual_seed(seed)
    f = 3.0 * torch.randn(num_samples, num_points, generator=g)
    scale = 0.05 + 2.0 * torch.rand(num_samples, num_points, generator=g)
    return GaussianSamples(f=f, scale=scale, y=f + scale * torch.randn(f.shape, generator=g))


def test_quantiles_solve_the_mixture_cdf() -> None:
    assert_solves_the_mixture_cdf(random_samples(7, 5, seed=0), LEVELS)


def test_two_far_modes_and_a_wide_component() -> None:
    # Point 0: means at -10 and 10, so the median sits in the gap. Point 1: 99 unit components and
    # one of scale 10, whose tails hold the extreme quantiles; they lie beyond the first bracket
    # (6 root-mean-square scales, 8.5), which has to grow to reach them.
    f = torch.zeros(100, 2)
    f[:50, 0], f[50:, 0] = -10.0, 10.0
    scale = torch.ones(100, 2)
    scale[0, 1] = 10.0
    samples = GaussianSamples(f=f, scale=scale, y=f.clone())
    assert_solves_the_mixture_cdf(samples, LEVELS)
    lowest, highest = mixture_quantiles(samples, (0.001, 0.999))
    assert float(lowest[1]) < -12 and float(highest[1]) > 12  # 0.01 * Phi(q / 10) = 0.001 near q = -12.8


@pytest.mark.parametrize("level", [0.01, 0.1, 0.5, 0.8, 0.975])
def test_one_sample_gives_the_gaussian_quantile(level: float) -> None:
    mean = torch.tensor([[-3.0, 0.0, 2.5, 1e3]])
    scale = torch.tensor(0.7).expand(1, 4)  # one shared scale, an expanded view as the predictive keeps it
    (q,) = mixture_quantiles(GaussianSamples(f=mean, scale=scale, y=mean.clone()), (level,))
    z = NormalDist().inv_cdf(level)
    for n in range(4):
        assert float(q[n]) == pytest.approx(float(mean[0, n]) + z * 0.7, abs=1e-5 * (1 + abs(float(mean[0, n]))))


def test_heteroscedastic_scales_give_each_point_its_own_width() -> None:
    g = torch.Generator().manual_seed(1)
    point_scale = torch.tensor([0.01, 0.1, 1.0, 10.0, 100.0])
    f = 0.1 * torch.randn(50, 5, generator=g)
    scale = point_scale * (1 + 0.2 * torch.rand(50, 5, generator=g))  # (S, N): per point and per sample
    samples = GaussianSamples(f=f, scale=scale, y=f.clone())
    assert_solves_the_mixture_cdf(samples, (0.05, 0.95))
    lower, upper = mixture_quantiles(samples, (0.05, 0.95))
    width = (upper - lower) / point_scale
    # Noise dominates the spread of the means from the third point on: width ~ 2 * 1.645 * ~1.1 scales.
    torch.testing.assert_close(width[2:], torch.full((3,), 3.6), rtol=0.1, atol=0.0)


def test_chunks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = random_samples(40, 23, seed=2)
    whole = mixture_quantiles(samples, (0.1, 0.9))
    monkeypatch.setattr(regression, "MIXTURE_CHUNK_ELEMENTS", 40 * 4)  # chunks of 4 points, the last of 3
    chunked = mixture_quantiles(samples, (0.1, 0.9))
    point = GaussianSamples(samples.f[:, 9:10], samples.scale[:, 9:10], samples.y[:, 9:10])
    alone = mixture_quantiles(point, (0.1, 0.9))
    for a, b, c in zip(whole, chunked, alone, strict=True):
        assert torch.equal(a, b) and torch.equal(c[0], a[9])


def test_exact_summary_changes_only_the_predictive_interval() -> None:
    samples = random_samples(30, 6, seed=3)
    empirical, exact = summarize(samples, (0.05, 0.95)), summarize(samples, (0.05, 0.95), exact=True)
    lower, upper = mixture_quantiles(samples, (0.05, 0.95))
    assert torch.equal(exact.lower, lower) and torch.equal(exact.upper, upper)
    for name in ("mean", "std", "epistemic_std", "aleatoric_std", "epistemic_lower", "epistemic_upper"):
        assert torch.equal(getattr(exact, name), getattr(empirical, name)), name
    assert torch.equal(exact.epistemic_lower, quantiles(samples.f, (0.05,))[0])


# ------------------------------------------------------------------ bbbrun predict


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixture")
    model = {
        "hidden_dim": 8,
        "num_layers": 3,
        "likelihood": "heteroscedastic",
        "likelihood_std": 1.0,
        "activation": "silu",
        "init_mu_std": None,
        "init_rho_mean": -3.0,
        "bias_rho_init": -3.0,
    }
    config = write_config(root / "tiny.yaml", model=model, optim={"lr": 0.02})
    (root / "run").mkdir()
    result = runner.run_training(start_session(load_config(config, [])), RunDir(root / "run"))
    assert result.status == "completed"
    return root / "run"


def predict_rows(run: Path, xs: list[float], tmp_path: Path) -> list[dict[str, float]]:
    source = tmp_path / f"x{len(xs)}.csv"
    source.write_text("x\n" + "".join(f"{x}\n" for x in xs))
    result = CliRunner().invoke(app, ["predict", str(run), "--input", str(source), "--samples", "300"])
    assert result.exit_code == 0, result.output
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(result.stdout))]


def test_a_points_interval_does_not_depend_on_the_other_points(run_dir: Path, tmp_path: Path) -> None:
    others = [-3.0 + 6.0 * i / 49 for i in range(50)]
    (alone,) = predict_rows(run_dir, [0.7], tmp_path)
    together = predict_rows(run_dir, [*others[:25], 0.7, *others[25:]], tmp_path)[25]
    assert together["x"] == alone["x"] == 0.7
    # The sampled networks are the same; only float32 rounding of a wider matrix product may differ
    # (a millionth of a std), where the draws' noise used to move the interval by a tenth.
    for name in ("mean", "std", "epistemic_std", "lower", "upper"):
        assert together[name] == pytest.approx(alone[name], abs=1e-5 * alone["std"]), name
    assert alone["lower"] < alone["mean"] < alone["upper"]
