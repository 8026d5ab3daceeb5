"""Gaussian likelihoods: a fixed noise scale (the tutorial's), a learned one, or one per input.

Targets are modelled in standardised units, y_net = (y - y_shift) / y_scale,
and reported in the data's: the network's first output is the mean, and the
heteroscedastic likelihood's second output is the noise scale before softplus.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bbbrun.bnn.layers import LOG_SQRT_2PI
from bbbrun.bnn.likelihoods.base import Likelihood, RegressionSamples, SampleBuffer
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import ModelConfig

MIN_SCALE = 1e-4  # floor on a predicted noise scale, in standardised units


def inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


def gaussian_nll(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Sum over points of -log N(y; mean, scale^2)."""
    z = (y - mean) / scale
    log_norm = torch.log(scale) + LOG_SQRT_2PI
    if scale.dim() == 0:  # one scale for every point: one log, not N
        return 0.5 * z.square().sum() + z.numel() * log_norm
    return (0.5 * z.square() + log_norm).sum()


def compact(t: torch.Tensor) -> torch.Tensor:
    """The smallest view that broadcasts back to t: size 1 along every expanded (stride 0) axis."""
    index = tuple(slice(0, 1) if stride == 0 else slice(None) for stride in t.stride())
    return t[index]


def converted(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """t in dtype, an expanded (stride 0) axis kept expanded rather than copied out."""
    return t if dtype is None else compact(t).to(dtype).expand_as(t)


class GaussianSamples(RegressionSamples):
    """Per-sample means f and scales; `scale` is an expanded (S, N) view when one scale serves every point."""

    def __init__(self, f: torch.Tensor, scale: torch.Tensor, y: torch.Tensor) -> None:
        self.f, self.scale, self.y = f, scale, y

    def standardized_residuals(self, y: torch.Tensor) -> torch.Tensor:
        """(S, N) (y - f_s) / scale_s in one fresh buffer that the callers overwrite in place."""
        return (y - self.f).div_(compact(self.scale))

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        scale = compact(self.scale)  # (1, 1) when homoscedastic: one log, not S * N
        return self.standardized_residuals(y).square_().mul_(-0.5).sub_(torch.log(scale) + LOG_SQRT_2PI)

    def cdf(self, y: torch.Tensor) -> torch.Tensor:
        return self.standardized_residuals(y).mul_(-1.0 / math.sqrt(2.0)).erfc_().mul_(0.5)

    def aleatoric_std(self) -> torch.Tensor:
        num_points = self.f.shape[1]
        return compact(self.scale).square().mean(0).sqrt().expand(num_points).contiguous()

    def points(self, index: slice, dtype: torch.dtype | None = None) -> GaussianSamples:
        return GaussianSamples(*(converted(t[:, index], dtype) for t in (self.f, self.scale, self.y)))


class GaussianSampleBuffer(SampleBuffer):
    def __init__(self, likelihood: GaussianLikelihood, num_samples: int, num_points: int,
                 generator: torch.Generator, device: torch.device) -> None:
        self.likelihood, self.shape = likelihood, (num_samples, num_points)
        self.noise = torch.randn(num_points, num_samples, generator=generator).to(device).mT  # (S, N)
        self.f = torch.empty(num_points, num_samples, device=device).mT  # (S, N) view of (N, S)
        shared = likelihood.shared_scale()
        # Homoscedastic: one scale, never an (S, N) array.
        self.scale = shared.detach() if shared is not None else torch.empty_like(self.f.mT).mT
        self.varies = shared is None

    def put(self, samples: slice, points: slice, raw: torch.Tensor) -> None:
        mean, scale = self.likelihood.mean_and_scale(raw)
        self.f[samples, points] = mean.squeeze(-1)
        if self.varies:
            self.scale[samples, points] = scale.squeeze(-1)

    def finish(self) -> GaussianSamples:
        scale = self.scale.expand(*self.shape)
        return GaussianSamples(f=self.f, scale=scale, y=torch.addcmul(self.f, scale, self.noise))


class GaussianLikelihood(Likelihood):
    """y ~ N(mean, scale^2); subclasses say where the scale comes from."""

    history_columns: ClassVar[tuple[str, ...]] = ("noise_std",)
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "val_rmse", "val_rmse_true", "val_nll", "val_coverage_90", "val_calibration_error", "noise_std",
    )
    table_metrics: ClassVar[tuple[str, ...]] = ("val_nll", "val_rmse", "val_coverage_90")
    output_width = 1

    y_shift: torch.Tensor
    y_scale: torch.Tensor

    def __init__(self, cfg: ModelConfig, std: Standardizer) -> None:
        super().__init__()
        self.register_buffer("y_shift", torch.tensor(float(std.y_shift)))
        self.register_buffer("y_scale", torch.tensor(float(std.y_scale)))

    def shared_scale(self) -> torch.Tensor | None:
        """The one noise scale (a 0-d tensor, data units), or None when it varies with the input."""
        return None

    def mean_and_scale(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 1) means and a scale broadcastable to them, in data units."""
        mean = raw[..., :1] * self.y_scale + self.y_shift
        shared = self.shared_scale()
        return mean, shared if shared is not None else self._scale_head(raw)

    def _scale_head(self, raw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean, scale = self.mean_and_scale(raw)
        return gaussian_nll(y, mean, scale)

    def noise_std(self) -> float | None:
        """The homoscedastic noise scale in data units, or None when it varies with x."""
        shared = self.shared_scale()
        return None if shared is None else float(shared.detach())

    def log_values(self, raw: torch.Tensor) -> dict[str, float]:
        noise = self.noise_std()
        return {"noise_std": float(self.mean_and_scale(raw)[1].mean()) if noise is None else noise}

    def final_values(self) -> dict[str, Any]:
        return {"noise_std": self.noise_std()}

    def new_samples(self, num_samples: int, num_points: int, generator: torch.Generator,
                    device: torch.device) -> GaussianSampleBuffer:
        return GaussianSampleBuffer(self, num_samples, num_points, generator, device)


class FixedGaussian(GaussianLikelihood):
    """`likelihood: fixed`: the scale is `likelihood_std`, as the tutorial's 0.1."""

    fixed_noise_std: torch.Tensor

    def __init__(self, cfg: ModelConfig, std: Standardizer) -> None:
        super().__init__(cfg, std)
        self.register_buffer("fixed_noise_std", torch.tensor(cfg.likelihood_std))

    def shared_scale(self) -> torch.Tensor:
        return self.fixed_noise_std


class LearnedGaussian(GaussianLikelihood):
    """`likelihood: learned`: one scale, a point estimate trained with the weights, starting at `likelihood_std`."""

    def __init__(self, cfg: ModelConfig, std: Standardizer) -> None:
        super().__init__(cfg, std)
        self.noise_rho = torch.nn.Parameter(torch.tensor(inverse_softplus(cfg.likelihood_std / std.y_scale)))

    def shared_scale(self) -> torch.Tensor:
        return F.softplus(self.noise_rho) * self.y_scale


class HeteroscedasticGaussian(GaussianLikelihood):
    """`likelihood: heteroscedastic`: the network's second output sets each point's scale."""

    output_width = 2

    def _scale_head(self, raw: torch.Tensor) -> torch.Tensor:
        return (F.softplus(raw[..., 1:]) + MIN_SCALE) * self.y_scale

    def scale_floor(self) -> float:
        """The smallest scale the head can predict, in data units."""
        return MIN_SCALE * float(self.y_scale)
