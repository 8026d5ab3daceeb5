"""`likelihood: categorical`: the network's C outputs are the logits of p(y = c | x) = softmax(outputs)_c.

Two classes work the same way (two logits). The targets are class codes
0..C-1 held as floats in the (N, 1) target column; the class names live
with the data and the checkpoint, never here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bbbrun.bnn.likelihoods.base import Likelihood, SampleBuffer
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import ModelConfig
from bbbrun.errors import ConfigError


class ClassProbabilities:
    """The class probabilities of S sampled networks at N points: probs (S, N, C)."""

    def __init__(self, probs: torch.Tensor) -> None:
        self.probs = probs

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[-1])

    def mean(self) -> torch.Tensor:
        """(N, C) the predictive: the average of the sampled softmax probabilities."""
        return self.probs.mean(0)

    def points(self, index: slice, dtype: torch.dtype | None = None) -> ClassProbabilities:
        part = self.probs[:, index]
        return ClassProbabilities(part if dtype is None else part.to(dtype))


class ProbabilityBuffer(SampleBuffer):
    """Each chunk's softmax probabilities, written into their (samples, points) block."""

    def __init__(self, num_samples: int, num_points: int, num_classes: int, device: torch.device) -> None:
        self.probs = torch.empty(num_samples, num_points, num_classes, device=device)

    def put(self, samples: slice, points: slice, raw: torch.Tensor) -> None:
        self.probs[samples, points] = torch.softmax(raw, dim=-1)  # (s, n, C)

    def finish(self) -> ClassProbabilities:
        return ClassProbabilities(self.probs)


class Categorical(Likelihood):
    task: ClassVar[str] = "classification"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "val_accuracy", "val_nll", "val_brier", "val_ece", "val_mutual_information_mean",
    )
    table_metrics: ClassVar[tuple[str, ...]] = ("val_nll", "val_accuracy", "val_ece")

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.output_width = num_classes

    @classmethod
    def build(cls, cfg: ModelConfig, std: Standardizer, classes: tuple[str, ...] = ()) -> Categorical:
        if len(classes) < 2:
            raise ConfigError("model.likelihood=categorical needs class labels with at least two classes; "
                              f"got {len(classes)}")
        return cls(len(classes))

    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(raw, y.reshape(-1).long(), reduction="sum")

    def log_values(self, raw: torch.Tensor) -> dict[str, float]:
        return {}

    def final_values(self) -> dict[str, Any]:
        return {"num_classes": self.output_width}

    def new_samples(self, num_samples: int, num_points: int, generator: torch.Generator,
                    device: torch.device) -> ProbabilityBuffer:
        return ProbabilityBuffer(num_samples, num_points, self.output_width, device)
