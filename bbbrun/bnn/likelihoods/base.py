"""The likelihood interface: what the network's outputs mean and how targets are scored under them.

The network produces raw outputs (N, output_width) in its own units; a
likelihood turns them into a distribution over targets in the data's units.
It owns everything that depends on that distribution: the data term of the
loss, the columns it adds to the history, the predictive samples gathered
from S sampled networks, and which metrics the terminal and sweep tables show.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import ModelConfig


class RegressionSamples(ABC):
    """S sampled networks' predictive at N points, in data units.

    Buffers are (S, N) views of (N, S) storage, so each point's S samples are
    contiguous for the per-point sorts of the interval quantiles.
    """

    f: torch.Tensor  # (S, N) each sampled network's predictive mean
    y: torch.Tensor  # (S, N) one draw of the target from each sampled network

    @abstractmethod
    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        """(S, N) log p(y_n | sample s) for targets y (N,), in a fresh buffer."""

    @abstractmethod
    def cdf(self, y: torch.Tensor) -> torch.Tensor:
        """(S, N) P(Y <= y_n | sample s), in a fresh buffer."""

    @abstractmethod
    def aleatoric_std(self) -> torch.Tensor:
        """(N,) the noise's standard deviation, root mean square over samples."""

    @abstractmethod
    def points(self, index: slice, dtype: torch.dtype | None = None) -> RegressionSamples:
        """The predictive at a slice of the points, optionally in another dtype (no copy when neither changes)."""


class SampleBuffer(ABC):
    """Collects a predictive chunk by chunk; chunks write disjoint slices, so any order gives the same result."""

    @abstractmethod
    def put(self, samples: slice, points: slice, raw: torch.Tensor) -> None:
        """Store the raw outputs (s, n, output_width) of sampled networks `samples` at points `points`."""

    @abstractmethod
    def finish(self) -> object:
        """The whole predictive, once every chunk is in: RegressionSamples for a regression likelihood."""


class Likelihood(nn.Module, ABC):
    """p(y | network output): a module, since some likelihoods learn parameters (a noise scale)."""

    task: ClassVar[str] = "regression"
    # History columns this likelihood adds (after val_nll), and the metrics.json
    # keys the terminal and a sweep's table show first.
    history_columns: ClassVar[tuple[str, ...]] = ()
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    table_metrics: ClassVar[tuple[str, ...]] = ()
    output_width: int

    # Subclasses are built as cls(model_cfg, standardizer): the target's statistics live with the likelihood;
    # one that needs the class names says so in `build`.

    @classmethod
    def build(cls, cfg: ModelConfig, std: Standardizer, classes: tuple[str, ...] = ()) -> Likelihood:
        """This likelihood for a model config, the training targets' standardizer and their class names."""
        return cls(cfg, std)  # type: ignore[call-arg]

    @abstractmethod
    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum over points of -log p(y | raw); raw (N, output_width), y (N, 1) in data units."""

    def forward(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The module's call is its NLL, so torch.func can map it over stacked members' parameters."""
        return self.nll(raw, y)

    @abstractmethod
    def log_values(self, raw: torch.Tensor) -> dict[str, float]:
        """This likelihood's history columns for one pass with raw outputs (N, output_width)."""

    @abstractmethod
    def final_values(self) -> dict[str, Any]:
        """Entries for metrics.json that describe the fitted likelihood (e.g. the learned noise scale)."""

    @abstractmethod
    def new_samples(
        self, num_samples: int, num_points: int, generator: torch.Generator, device: torch.device
    ) -> SampleBuffer:
        """An empty predictive; any randomness of its own (observation noise) is drawn from `generator` now."""
