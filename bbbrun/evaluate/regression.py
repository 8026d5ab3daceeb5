"""Regression predictives: their summary (moments, intervals) and quality metrics, on tensors.

Coverage and calibration use the probability integral transform of the
Monte Carlo mixture, u = mean_s F_s(y), F_s the CDF of sample s: a target lies in
the central interval of level L exactly when |u - 1/2| <= L / 2. This is
exact for the sampled mixture and needs no quantile estimates.

Intervals come two ways. The empirical quantiles of the draws y are fast but
depend on the noise drawn for every point predicted alongside (one generator
fills the (N, S) block). The exact quantiles of the mixture solve
mean_s F_s(q) = level per point by bisection, and depend on that point's
sampled networks alone. The metrics' interval widths use the exact ones.

The CRPS scores the whole predictive at once from the draws y (see `crps`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from bbbrun.bnn.likelihoods import RegressionSamples


@dataclass
class PredictiveSummary:
    mean: torch.Tensor  # (N,)
    epistemic_std: torch.Tensor  # spread of the sampled means
    aleatoric_std: torch.Tensor  # the likelihood scale (root mean square over samples)
    std: torch.Tensor  # total: sqrt(epistemic^2 + aleatoric^2)
    lower: torch.Tensor  # interval of the predictive, observation noise included
    upper: torch.Tensor
    epistemic_lower: torch.Tensor  # the same quantiles of the sampled means alone
    epistemic_upper: torch.Tensor


def summarize(samples: RegressionSamples, interval: tuple[float, float], exact: bool = False) -> PredictiveSummary:
    """Moments by the law of total variance; intervals as empirical quantiles over samples, or with
    `exact` as the quantiles of the sampled mixture (slower, and independent of the other points)."""
    f = samples.f
    epistemic = f.std(0, unbiased=False)
    aleatoric = samples.aleatoric_std()
    if exact:
        lower, upper = mixture_quantiles(samples, interval)
        epi_lower, epi_upper = quantiles(f, interval)
    else:
        (lower, upper), (epi_lower, epi_upper) = both_quantiles(samples.y, f, interval)
    return PredictiveSummary(
        mean=f.mean(0), epistemic_std=epistemic, aleatoric_std=aleatoric,
        std=(epistemic.square() + aleatoric.square()).sqrt(),
        lower=lower, upper=upper, epistemic_lower=epi_lower, epistemic_upper=epi_upper,
    )


def both_quantiles(
    y: torch.Tensor, f: torch.Tensor, levels: tuple[float, ...]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Quantiles of the draws and of the sampled means; on the CPU the two sorts run on two threads
    (numpy releases the GIL while sorting)."""
    if y.device.type != "cpu" or torch.get_num_threads() < 2:
        return quantiles(y, levels), quantiles(f, levels)
    with ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(quantiles, t, levels) for t in (y, f)]
        return pending[0].result(), pending[1].result()


def quantiles(samples: torch.Tensor, levels: tuple[float, ...]) -> list[torch.Tensor]:
    """Per-column quantiles of (S, N) samples, interpolated linearly as numpy does.

    One sort serves every level. On the CPU numpy sorts each point's samples
    (contiguous rows of the (N, S) transpose) with its vectorised sort, over
    ten times faster than torch.sort; torch.quantile refuses over 2^24 elements.
    """
    ordered = sorted_rows(samples)
    last = ordered.shape[1] - 1
    result = []
    for level in levels:
        pos = level * last
        lo = int(pos)
        hi = min(lo + 1, last)
        frac = pos - lo
        result.append(ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo]))
    return result


def sorted_rows(samples: torch.Tensor) -> torch.Tensor:
    """(N, S) each point's samples in ascending order, from (S, N) samples."""
    rows = samples.mT  # (N, S)
    if rows.device.type == "cpu":
        return torch.from_numpy(np.sort(rows.contiguous().numpy(), axis=1))
    return rows.sort(dim=1).values


# The mixture's quantiles: each point's bracket starts at its sampled means' range
# widened by BRACKET_STDS (aleatoric + epistemic) stds, doubles until the
# mixture CDF brackets the level, then halves BISECTION_STEPS times to
# QUANTILE_TOL of its width: some 1e-5 of a std, far below the Monte Carlo
# error. (A mixture whose scales differ by orders of magnitude gets less in
# CDF terms: the width follows the root mean square scale.) A point's steps
# depend on its own values only, so never on the others in its chunk.
MIXTURE_CHUNK_ELEMENTS = 2**20  # (S, points) per CDF evaluation: 8 MB in float64
BRACKET_STDS = 6.0
MAX_EXPANSIONS = 20
QUANTILE_TOL = 1e-6
BISECTION_STEPS = math.ceil(math.log2(1 / QUANTILE_TOL))  # 20


def mixture_quantiles(samples: RegressionSamples, levels: tuple[float, ...]) -> list[torch.Tensor]:
    """(N,) quantiles q of the Monte Carlo mixture, mean_s F_s(q) = level, one tensor per level.

    Points are solved in chunks, so memory stays O(S * chunk); the arithmetic is
    float64 so that rounding cannot tip a bisection step either way.
    """
    num_samples, num_points = samples.f.shape
    step = max(1, MIXTURE_CHUNK_ELEMENTS // num_samples)
    aleatoric = samples.aleatoric_std()
    parts = [
        chunk_quantiles(samples.points(slice(p, p + step), torch.float64), aleatoric[p : p + step], levels)
        for p in range(0, num_points, step)
    ]
    return [
        torch.cat([part[i] for part in parts]).to(samples.f.dtype) if parts else samples.f.new_empty(0)
        for i in range(len(levels))
    ]


def chunk_quantiles(part: RegressionSamples, aleatoric: torch.Tensor, levels: tuple[float, ...]) -> list[torch.Tensor]:
    """(n,) quantiles per level of a chunk of points, from a bracket around the sampled means."""
    f = part.f  # (S, n)
    spread = BRACKET_STDS * (aleatoric.to(f) + f.std(0, unbiased=False))
    spread = torch.maximum(spread, torch.finfo(torch.float32).eps * (1 + f.abs().amax(0)))  # never empty
    lower, upper = f.amin(0) - spread, f.amax(0) + spread
    return [bisect(part, *expand_bracket(part, lower, upper, level), level) for level in levels]


def mixture_cdf(part: RegressionSamples, y: torch.Tensor) -> torch.Tensor:
    return part.cdf(y).mean(0)  # (n,)


def expand_bracket(
    part: RegressionSamples, lower: torch.Tensor, upper: torch.Tensor, level: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Double each point's bracket outwards until mixture_cdf(lower) <= level <= mixture_cdf(upper)."""
    for _ in range(MAX_EXPANSIONS):
        too_high = mixture_cdf(part, lower) > level
        too_low = mixture_cdf(part, upper) < level
        if not bool((too_high | too_low).any()):
            return lower, upper
        width = upper - lower
        lower = torch.where(too_high, lower - width, lower)
        upper = torch.where(too_low, upper + width, upper)
    raise ValueError(
        f"the predictive's CDF does not reach {level} within 2^{MAX_EXPANSIONS} brackets: "
        "are its means or scales finite?"
    )


def bisect(part: RegressionSamples, lower: torch.Tensor, upper: torch.Tensor, level: float) -> torch.Tensor:
    """The midpoint of a bracket halved BISECTION_STEPS times towards mixture_cdf = level."""
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (lower + upper)
        below = mixture_cdf(part, middle) < level
        lower = torch.where(below, middle, lower)
        upper = torch.where(below, upper, middle)
    return 0.5 * (lower + upper)


COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
CALIBRATION_LEVELS = tuple(round(0.05 + 0.1 * i, 2) for i in range(10))  # 0.05 ... 0.95


def rmse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return float((prediction - target).square().mean().sqrt())


def mixture_nll(samples: RegressionSamples, y: torch.Tensor) -> float:
    """Mean over points of -log (1/S) sum_s p(y | sample s), by log-sum-exp."""
    log_p = samples.log_density(y)
    log_mix = torch.logsumexp(log_p, dim=0) - math.log(samples.f.shape[0])
    return float(-log_mix.mean())


def pit(samples: RegressionSamples, y: torch.Tensor) -> torch.Tensor:
    """(N,) predictive CDF of each target under the sampled mixture."""
    return samples.cdf(y).mean(0)


def coverage(u: torch.Tensor, level: float) -> float:
    """Fraction of targets inside the central `level` interval, from their PIT values."""
    return float(((u - 0.5).abs() <= level / 2).float().mean())


def calibration_error(curve: list[tuple[float, float]]) -> float:
    """Mean absolute gap between observed and nominal coverage over the curve's (nominal, observed) levels."""
    return sum(abs(observed - nominal) for nominal, observed in curve) / len(curve)


def calibration_curve(u: torch.Tensor) -> list[tuple[float, float]]:
    return [(level, coverage(u, level)) for level in CALIBRATION_LEVELS]


def crps(samples: RegressionSamples, y: torch.Tensor) -> float:
    """Mean over points of the continuous ranked probability score of the sampled mixture, lower is better.

    Estimated per point from its S draws x_s (samples.y) by CRPS = E|Y - y| - 0.5 E|Y - Y'|:
    the first term as mean_s |x_s - y|, the second over the S(S - 1) pairs s != t, which are
    independent draws of the mixture, so the estimate is unbiased (the "fair" CRPS; the
    empirical CDF's CRPS divides by S^2 and is too high by E|Y - Y'| / 2S). On sorted draws
    sum_{s<t} (x_(t) - x_(s)) = sum_i (2i - S - 1) x_(i), i = 1..S: O(S log S) per point,
    in chunks of points. One draw (S = 1) has no pairs: its CRPS is |x - y|.
    """
    num_samples, num_points = samples.y.shape
    step = max(1, MIXTURE_CHUNK_ELEMENTS // num_samples)
    weights = torch.arange(1 - num_samples, num_samples, 2, dtype=torch.float64, device=y.device)  # 2i - S - 1
    pairs = max(1, num_samples * (num_samples - 1))
    total = 0.0
    for p in range(0, num_points, step):
        ordered = sorted_rows(samples.y[:, p : p + step]).to(y.device, torch.float64)  # (n, S)
        target = y[p : p + step].double()
        to_target = (ordered - target[:, None]).abs().mean(1)
        between = 2 * (ordered @ weights) / pairs  # E|Y - Y'|
        total += float((to_target - 0.5 * between).sum())
    return total / num_points if num_points else math.nan


def interval_widths(samples: RegressionSamples, levels: tuple[float, ...]) -> dict[str, float]:
    """Mean width of each central interval, from the exact quantiles of the mixture."""
    bounds = tuple(b for level in levels for b in ((1 - level) / 2, (1 + level) / 2))
    q = mixture_quantiles(samples, bounds)
    return {f"interval_width_{round(level * 100)}": float((q[2 * i + 1] - q[2 * i]).mean())
            for i, level in enumerate(levels)}


def metric_names() -> tuple[str, ...]:
    """The scalar metrics `evaluate` returns for a split (rmse_true only for generated data)."""
    levels = [round(level * 100) for level in COVERAGE_LEVELS]
    return ("rmse", "nll", "ll", "rmse_true", *(f"coverage_{p}" for p in levels),
            *(f"interval_width_{p}" for p in levels), "crps", "calibration_error", "epistemic_std_mean",
            "aleatoric_std_mean")


def evaluate(
    samples: RegressionSamples, summary: PredictiveSummary, y: torch.Tensor, f_true: torch.Tensor | None
) -> dict[str, object]:
    """Every metric of one split; y and f_true are (N,). nll and ll score the sampled mixture's density
    (ll = -nll, the UCI benchmark's test log-likelihood); interval widths use its exact quantiles."""
    u = pit(samples, y)
    curve = calibration_curve(u)
    nll = mixture_nll(samples, y)
    metrics: dict[str, object] = {"rmse": rmse(summary.mean, y), "nll": nll, "ll": -nll}
    if f_true is not None:
        metrics["rmse_true"] = rmse(summary.mean, f_true)
    for level in COVERAGE_LEVELS:
        metrics[f"coverage_{round(level * 100)}"] = coverage(u, level)
    metrics.update(interval_widths(samples, COVERAGE_LEVELS))
    metrics["crps"] = crps(samples, y)
    metrics["calibration_error"] = calibration_error(curve)
    metrics["calibration"] = [{"nominal": nom, "observed": obs} for nom, obs in curve]
    metrics["epistemic_std_mean"] = float(summary.epistemic_std.mean())
    metrics["aleatoric_std_mean"] = float(summary.aleatoric_std.mean())
    return metrics
