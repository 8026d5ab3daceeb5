"""The batched Monte Carlo predictive: S sampled networks evaluated at once, in chunks.

Every random number (weights, then the likelihood's own noise) is drawn up
front from one CPU generator, so the result does not depend on the chunk size
or device. The likelihood decides what is kept of each chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bbbrun.allocator import retain_freed_memory
from bbbrun.bnn.likelihoods import ClassProbabilities, RegressionSamples
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.config import PredictConfig

# Points are cut into tiles of a fixed size: BLAS may round a product of a
# different width differently (in the last bit), so a fixed tiling keeps the
# result independent of the chunk size. Samples are chunked to about 2M
# activations (8 MB): measured on 2 cores, 2^18 left the threads waiting on
# Python between short ops and 2^23 ran out of cache; 2^21 was fastest.
# Points are also padded with zero rows to a multiple of POINT_ALIGN: on this
# CPU a product of ragged width rounds a column differently in the last bit
# than one of a multiple of 16 (measured), so without it a point's prediction
# would depend on how many points share its tile.
POINT_TILE = 4096
POINT_ALIGN = 64
CACHE_ELEMENTS = 2**21


def sample_predictive(
    model: BayesianNetwork, x: torch.Tensor, num_samples: int, seed: int, chunk_elements: int = 8_000_000
) -> RegressionSamples:
    """A regression model's predictive at x (N, d); see sample_outputs."""
    samples = sample_outputs(model, x, num_samples, seed, chunk_elements)
    if not isinstance(samples, RegressionSamples):
        raise TypeError("sample_predictive needs a regression likelihood; a classifier's is sample_probabilities")
    return samples


def sample_probabilities(
    model: BayesianNetwork, x: torch.Tensor, num_samples: int, seed: int, chunk_elements: int = 8_000_000
) -> ClassProbabilities:
    """A classifier's S sampled class probabilities at x (N, d); see sample_outputs."""
    samples = sample_outputs(model, x, num_samples, seed, chunk_elements)
    if not isinstance(samples, ClassProbabilities):
        raise TypeError("sample_probabilities needs model.likelihood=categorical")
    return samples


@torch.no_grad()
def sample_outputs(
    model: BayesianNetwork, x: torch.Tensor, num_samples: int, seed: int, chunk_elements: int = 8_000_000
) -> object:
    """Evaluate `num_samples` weight draws at x (N, d), holding at most ~chunk_elements activations; what is
    kept of them is the likelihood's (its SampleBuffer).

    The bound never goes below one sample on one tile of POINT_TILE points.
    """
    retain_freed_memory()
    generator = torch.Generator().manual_seed(seed)
    w = model.sample_weights(num_samples, generator)  # (S, P)
    num_points = x.shape[0]
    buffer = model.likelihood.new_samples(num_samples, num_points, generator, x.device)
    padded = pad_rows(x, POINT_ALIGN)  # (N', d)
    width = max(model.cfg.hidden_dim, model.in_dim)
    point_chunk, sample_chunk = chunk_shape(padded.shape[0], num_samples, width, chunk_elements)

    def run_chunk(chunk: tuple[int, int]) -> None:
        p0, samples = chunk[0], slice(chunk[1], chunk[1] + sample_chunk)
        kept = min(point_chunk, num_points - p0)  # the tile's real points; the rest is padding
        raw = model.run_samples(padded[p0 : p0 + point_chunk], w[samples])
        buffer.put(samples, slice(p0, p0 + kept), raw[:, :kept])

    chunks = [(p0, s0) for p0 in range(0, num_points, point_chunk) for s0 in range(0, num_samples, sample_chunk)]
    run_in_parallel(run_chunk, chunks, x.device)
    return buffer.finish()


def pad_rows(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """x with zero rows appended up to a multiple of `multiple` rows (x itself when it has that already)."""
    missing = -x.shape[0] % multiple
    return x if missing == 0 else torch.cat([x, x.new_zeros(missing, *x.shape[1:])])


def predictive_at(model: BayesianNetwork, x: np.ndarray, cfg: PredictConfig, seed: int) -> RegressionSamples:
    """The predictive at x (N, d) in data units; the same seed and inputs give the same draws."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(model.mu.device)
    return sample_predictive(model, xt, cfg.num_samples, seed, cfg.chunk_elements)


def probabilities_at(model: BayesianNetwork, x: np.ndarray, cfg: PredictConfig, seed: int) -> ClassProbabilities:
    """A classifier's sampled probabilities at x (N, d); the same seed and inputs give the same draws."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(model.mu.device)
    return sample_probabilities(model, xt, cfg.num_samples, seed, cfg.chunk_elements)


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
    pool = ThreadPoolExecutor(workers)
    try:
        list(pool.map(work, chunks))
    finally:
        # On an interrupt the chunks not yet started are dropped, so Ctrl-C stops within one chunk.
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(workers)


def chunk_shape(num_points: int, num_samples: int, hidden_dim: int, chunk_elements: int) -> tuple[int, int]:
    """(points, samples) per chunk: one point tile, and as many samples as the budget allows (at least one)."""
    point_chunk = max(1, min(num_points, POINT_TILE))
    budget = min(chunk_elements, CACHE_ELEMENTS)
    sample_chunk = max(1, min(num_samples, budget // (point_chunk * max(hidden_dim, 2))))
    return point_chunk, sample_chunk
