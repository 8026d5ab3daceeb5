"""Predictive-quality metrics: plain functions on tensors.

Coverage and calibration use the probability integral transform of the
Monte Carlo mixture, u = mean_s Phi((y - f_s) / scale_s): a target lies in
the central interval of level L exactly when |u - 1/2| <= L / 2. This is
exact for the sampled mixture and needs no quantile estimates.
"""

from __future__ import annotations

import math

import torch

from bbbrun.layers import LOG_SQRT_2PI
from bbbrun.predict import PredictiveSamples, PredictiveSummary, compact, quantiles

COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95)
CALIBRATION_LEVELS = tuple(round(0.05 + 0.1 * i, 2) for i in range(10))  # 0.05 ... 0.95


def rmse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    return float((prediction - target).square().mean().sqrt())


def mixture_nll(samples: PredictiveSamples, y: torch.Tensor) -> float:
    """Mean over points of -log (1/S) sum_s N(y; f_s, scale_s^2), by log-sum-exp."""
    scale = compact(samples.scale)  # (1, 1) when homoscedastic: one log, not S * N
    log_p = standardized_residuals(samples, y).square_().mul_(-0.5).sub_(torch.log(scale) + LOG_SQRT_2PI)
    log_mix = torch.logsumexp(log_p, dim=0) - math.log(samples.f.shape[0])
    return float(-log_mix.mean())


def pit(samples: PredictiveSamples, y: torch.Tensor) -> torch.Tensor:
    """(N,) predictive CDF of each target under the sampled mixture."""
    z = standardized_residuals(samples, y)
    return z.mul_(-1.0 / math.sqrt(2.0)).erfc_().mean(0).mul_(0.5)


def standardized_residuals(samples: PredictiveSamples, y: torch.Tensor) -> torch.Tensor:
    """(S, N) (y - f_s) / scale_s in one fresh buffer that the callers overwrite in place."""
    return (y - samples.f).div_(compact(samples.scale))


def coverage(u: torch.Tensor, level: float) -> float:
    """Fraction of targets inside the central `level` interval, from their PIT values."""
    return float(((u - 0.5).abs() <= level / 2).float().mean())


def calibration_curve(u: torch.Tensor) -> list[tuple[float, float]]:
    return [(level, coverage(u, level)) for level in CALIBRATION_LEVELS]


def evaluate(
    samples: PredictiveSamples, summary: PredictiveSummary, y: torch.Tensor, f_true: torch.Tensor | None
) -> dict[str, object]:
    """Every metric of one split; y and f_true are (N,)."""
    u = pit(samples, y)
    curve = calibration_curve(u)
    metrics: dict[str, object] = {
        "rmse": rmse(summary.mean, y),
        "nll": mixture_nll(samples, y),
    }
    if f_true is not None:
        metrics["rmse_true"] = rmse(summary.mean, f_true)
    for level in COVERAGE_LEVELS:
        metrics[f"coverage_{round(level * 100)}"] = coverage(u, level)
    lower, upper = quantiles(samples.y, (0.05, 0.95))
    metrics["interval_width_90"] = float((upper - lower).mean())
    metrics["calibration_error"] = sum(abs(obs - nom) for nom, obs in curve) / len(curve)
    metrics["calibration"] = [{"nominal": nom, "observed": obs} for nom, obs in curve]
    metrics["epistemic_std_mean"] = float(summary.epistemic_std.mean())
    metrics["aleatoric_std_mean"] = float(summary.aleatoric_std.mean())
    return metrics

