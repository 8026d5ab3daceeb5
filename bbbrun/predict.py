"""The batched Monte Carlo predictive: S sampled networks evaluated at once, in chunks.

Every random number (weights, observation noise) is drawn up front from one
CPU generator, so the result does not depend on the chunk size or device.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from bbbrun.allocator import retain_freed_memory
from bbbrun.model import BayesianRegressor


@dataclass
class PredictiveSamples:
    """Per-sample predictive means and noise scales at N inputs, and draws of y."""

    f: torch.Tensor  # (S, N) sampled network means
    scale: torch.Tensor  # (S, N) likelihood scale of each sample; an expanded view when homoscedastic
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


# Points are cut into tiles of a fixed size: BLAS may round a product of a
# different width differently (in the last bit), so a fixed tiling keeps the
# result independent of the chunk size. Samples are chunked to about 2M
# activations (8 MB): measured on 2 cores, 2^18 left the threads waiting on
# Python between short ops and 2^23 ran out of cache; 2^21 was fastest.
POINT_TILE = 4096
CACHE_ELEMENTS = 2**21

@torch.no_grad()
def sample_predictive(
    model: BayesianRegressor, x: torch.Tensor, num_samples: int, seed: int, chunk_elements: int = 8_000_000
) -> PredictiveSamples:
    """Evaluate `num_samples` weight draws at x (N, 1), holding at most ~chunk_elements activations.

    The bound never goes below one sample on one tile of POINT_TILE points.
    The (S, N) results are transposed views of (N, S) buffers, so that each
    point's S samples are contiguous for the per-point sort of `quantiles`.
    """
    retain_freed_memory()
    generator = torch.Generator().manual_seed(seed)
    w = model.sample_weights(num_samples, generator)  # (S, P)
    noise = torch.randn(x.shape[0], num_samples, generator=generator).to(x.device).mT  # (S, N)
    point_chunk, sample_chunk = chunk_shape(x.shape[0], num_samples, model.cfg.hidden_dim, chunk_elements)
    f = torch.empty(x.shape[0], num_samples, device=x.device).mT  # (S, N) view of (N, S)
    # Homoscedastic: one scale, never an (S, N) array.
    fixed = model.noise_std() is not None
    scale = model.run_samples(x[:1], w[:1]).scale if fixed else torch.empty_like(f.mT).mT

    def run_chunk(chunk: tuple[int, int]) -> None:
        points, samples = slice(chunk[0], chunk[0] + point_chunk), slice(chunk[1], chunk[1] + sample_chunk)
        out = model.run_samples(x[points], w[samples])
        f[samples, points] = out.mean.squeeze(-1)
        if not fixed:
            scale[samples, points] = out.scale.squeeze(-1)

    chunks = [(p0, s0) for p0 in range(0, x.shape[0], point_chunk) for s0 in range(0, num_samples, sample_chunk)]
    run_in_parallel(run_chunk, chunks, x.device)
    scale = scale.expand(num_samples, x.shape[0])
    return PredictiveSamples(f=f, scale=scale, y=torch.addcmul(f, scale, noise))


def run_in_parallel(
    work: Callable[[tuple[int, int]], None], chunks: list[tuple[int, int]], device: torch.device
) -> None:
    """Run the chunks on the CPU's cores, each chunk single-threaded; in order elsewhere.

    Splitting each op across threads ends every op in a barrier, and when
    another process holds a core that barrier waits a whole scheduler slice
    (milliseconds per op: ten times slower overall, measured). Whole chunks
    per thread need no barriers, and the chunks write disjoint slices, so the
    result is the same in any order.
    """
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            work(chunk)
        return
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, chunks))
    finally:
        torch.set_num_threads(workers)


def chunk_shape(num_points: int, num_samples: int, hidden_dim: int, chunk_elements: int) -> tuple[int, int]:
    """(points, samples) per chunk: one point tile, and as many samples as the budget allows (at least one)."""
    point_chunk = max(1, min(num_points, POINT_TILE))
    budget = min(chunk_elements, CACHE_ELEMENTS)
    sample_chunk = max(1, min(num_samples, budget // (point_chunk * max(hidden_dim, 2))))
    return point_chunk, sample_chunk


def compact(t: torch.Tensor) -> torch.Tensor:
    """The smallest view that broadcasts back to t: size 1 along every expanded (stride 0) axis."""
    index = tuple(slice(0, 1) if stride == 0 else slice(None) for stride in t.stride())
    return t[index]


def summarize(samples: PredictiveSamples, interval: tuple[float, float]) -> PredictiveSummary:
    """Moments by the law of total variance; intervals as empirical quantiles over samples."""
    f = samples.f
    epistemic = f.std(0, unbiased=False)
    scale = compact(samples.scale)
    aleatoric = scale.square().mean(0).sqrt().expand_as(epistemic).contiguous()
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
    rows = samples.mT  # (N, S)
    if rows.device.type == "cpu":
        ordered = torch.from_numpy(np.sort(rows.contiguous().numpy(), axis=1))
    else:
        ordered = rows.sort(dim=1).values
    last = ordered.shape[1] - 1
    result = []
    for level in levels:
        pos = level * last
        lo = int(pos)
        hi = min(lo + 1, last)
        frac = pos - lo
        result.append(ordered[:, lo] + frac * (ordered[:, hi] - ordered[:, lo]))
    return result
