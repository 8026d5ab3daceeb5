"""The batched Monte Carlo predictive: S sampled networks evaluated at once, in chunks.

Every random number (weights, observation noise) is drawn up front from one
CPU generator, so the result does not depend on the chunk size or device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bbbrun.model import BayesianRegressor


@dataclass
class PredictiveSamples:
    """Per-sample predictive means and noise scales at N inputs, and draws of y."""

    f: torch.Tensor  # (S, N) sampled network means
    scale: torch.Tensor  # (S, N) likelihood scale of each sample
    y: torch.Tensor  # (S, N) f + scale * noise: draws from the predictive


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


@torch.no_grad()
def sample_predictive(
    model: BayesianRegressor, x: torch.Tensor, num_samples: int, seed: int, chunk_elements: int = 8_000_000
) -> PredictiveSamples:
    """Evaluate `num_samples` weight draws at x (N, 1), holding at most ~chunk_elements activations."""
    generator = torch.Generator().manual_seed(seed)
    w = model.sample_weights(num_samples, generator)  # (S, P)
    noise = torch.randn(num_samples, x.shape[0], generator=generator).to(x.device)  # (S, N)
    width = max(model.cfg.hidden_dim, 2)
    point_chunk = max(1, min(x.shape[0], chunk_elements // width))
    sample_chunk = max(1, chunk_elements // (point_chunk * width))
    f = torch.empty(num_samples, x.shape[0], device=x.device)
    scale = torch.empty_like(f)
    for p0 in range(0, x.shape[0], point_chunk):
        xs = x[p0 : p0 + point_chunk]
        for s0 in range(0, num_samples, sample_chunk):
            out = model.run_samples(xs, w[s0 : s0 + sample_chunk])
            f[s0 : s0 + sample_chunk, p0 : p0 + point_chunk] = out.mean.squeeze(-1)
            scale[s0 : s0 + sample_chunk, p0 : p0 + point_chunk] = out.scale.squeeze(-1)
    return PredictiveSamples(f=f, scale=scale, y=f + scale * noise)


def summarize(samples: PredictiveSamples, interval: tuple[float, float]) -> PredictiveSummary:
    """Moments by the law of total variance; intervals as empirical quantiles over samples."""
    f = samples.f
    epistemic = f.std(0, unbiased=False)
    aleatoric = samples.scale.square().mean(0).sqrt()
    lower, upper = quantiles(samples.y, interval)
    epi_lower, epi_upper = quantiles(f, interval)
    return PredictiveSummary(
        mean=f.mean(0), epistemic_std=epistemic, aleatoric_std=aleatoric,
        std=(epistemic.square() + aleatoric.square()).sqrt(),
        lower=lower, upper=upper, epistemic_lower=epi_lower, epistemic_upper=epi_upper,
    )


def quantiles(samples: torch.Tensor, levels: tuple[float, ...]) -> list[torch.Tensor]:
    """Per-column quantiles of (S, N) samples, interpolated linearly as numpy does.

    torch.quantile refuses inputs over 2^24 elements; one sort serves every level.
    """
    ordered = samples.sort(dim=0).values  # (S, N)
    last = ordered.shape[0] - 1
    result = []
    for level in levels:
        pos = level * last
        lo = int(pos)
        hi = min(lo + 1, last)
        frac = pos - lo
        result.append(ordered[lo] + frac * (ordered[hi] - ordered[lo]))
    return result
