"""Per-feature standardisation: the affine map between the data's units and the network's, from training rows."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Standardizer:
    """x_net = (x - x_shift) / x_scale per feature; y_net = (y - y_shift) / y_scale."""

    x_shift: tuple[float, ...] = (0.0,)
    x_scale: tuple[float, ...] = (1.0,)
    y_shift: float = 0.0
    y_scale: float = 1.0

    @classmethod
    def identity(cls, input_dim: int) -> Standardizer:
        return cls(x_shift=(0.0,) * input_dim, x_scale=(1.0,) * input_dim)

    @property
    def input_dim(self) -> int:
        return len(self.x_shift)


def fit_standardizer(x: torch.Tensor, y: torch.Tensor, enabled: bool) -> Standardizer:
    """The training rows' means and standard deviations (x: (N, d), y: (N, 1)); identity when disabled.

    A constant column keeps scale 1, so it is shifted to zero, never divided by zero.
    """
    if not enabled:
        return Standardizer.identity(x.shape[1])
    x_std = [float(s) or 1.0 for s in x.std(0)]
    return Standardizer(
        x_shift=tuple(float(m) for m in x.mean(0)), x_scale=tuple(x_std),
        y_shift=float(y.mean()), y_scale=float(y.std()) or 1.0,
    )
