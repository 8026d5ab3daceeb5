"""Classification predictives: their summary (averaged probabilities, uncertainties) and quality metrics.

The predictive is the average of the S sampled softmax probabilities,
p(y | x) = (1/S) sum_s p_s(y | x). Its entropy (total uncertainty) splits
into the expected entropy of the sampled networks (aleatoric) and the mutual
information between the label and the weights (epistemic; the BALD score):

    H[mean_s p_s] = mean_s H[p_s] + MI.

Every metric scores the averaged probabilities; the arithmetic is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bbbrun.bnn.likelihoods import ClassProbabilities

NUM_BINS = 15  # equal-width confidence bins of the expected calibration error
MIN_PROBABILITY = 1e-12  # an averaged probability of exactly 0 scores as this, not as an infinite NLL
SUMMARY_CHUNK_ELEMENTS = 2**22  # probabilities summarised at once (32 MB in float64)
REJECTION_FRACTIONS = tuple(i / 20 for i in range(20))  # 0, 0.05, ..., 0.95 of the points rejected


@dataclass
class ClassSummary:
    """Per point: the averaged probabilities (N, C) and the three uncertainties (N,), in nats."""

    probs: torch.Tensor
    entropy: torch.Tensor  # total: H[mean_s p_s]
    expected_entropy: torch.Tensor  # aleatoric: mean_s H[p_s]
    mutual_information: torch.Tensor  # epistemic: entropy - expected_entropy

    @property
    def predicted(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> torch.Tensor:
        return self.probs.amax(1)

    def uncertainty(self, name: str) -> torch.Tensor:
        """(N,) one of UNCERTAINTIES by name."""
        return 1.0 - self.confidence if name == "1 - max probability" else getattr(self, name)

    @classmethod
    def concat(cls, parts: list[ClassSummary]) -> ClassSummary:
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in
                     ("probs", "entropy", "expected_entropy", "mutual_information")))


UNCERTAINTIES = ("entropy", "mutual_information", "1 - max probability")


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats over the last axis, 0 log 0 taken as 0."""
    return -torch.special.xlogy(p, p).sum(-1)


def summarize_classes(samples: ClassProbabilities) -> ClassSummary:
    """Per point summaries, float64, computed a chunk of points at a time (a float64 copy of all S * N * C
    probabilities would double the predictive's memory)."""
    num_samples, num_points, num_classes = samples.probs.shape
    step = max(1, SUMMARY_CHUNK_ELEMENTS // max(1, num_samples * num_classes))
    parts = [summarize_chunk(samples.probs[:, p : p + step]) for p in range(0, num_points, step)]
    if not parts:
        return summarize_chunk(samples.probs)
    return ClassSummary.concat(parts)


def summarize_chunk(probs: torch.Tensor) -> ClassSummary:
    probs = probs.double()  # (S, n, C)
    mean = probs.mean(0)
    total, expected = entropy(mean), entropy(probs).mean(0)
    # The split is exact; rounding can leave a mutual information of -1e-17.
    return ClassSummary(mean, total, expected, (total - expected).clamp_min(0.0))


def accuracy(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float((probs.argmax(1) == y).double().mean())


def nll(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over points of -log p(y_n | x_n) under the averaged probabilities."""
    picked = probs.gather(1, y[:, None]).squeeze(1)
    return float(-picked.clamp_min(MIN_PROBABILITY).log().mean())


def brier(probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over points of sum_c (p_c - [y = c])^2: 0 is perfect, 2 the worst (Brier 1950's multi-class form)."""
    onehot = torch.nn.functional.one_hot(y, probs.shape[1]).to(probs)
    return float((probs - onehot).square().sum(1).mean())


def bin_index(confidence: torch.Tensor, num_bins: int) -> torch.Tensor:
    """The equal-width bin of each confidence: bin b holds (b / B, (b + 1) / B], bin 0 also 0."""
    return (torch.ceil(confidence * num_bins).long() - 1).clamp(0, num_bins - 1)


def reliability(confidence: torch.Tensor, correct: torch.Tensor,
                num_bins: int = NUM_BINS) -> list[dict[str, float | None]]:
    """Per bin: its edges, how many points, their mean confidence and their accuracy (None when empty: JSON
    has no nan)."""
    index = bin_index(confidence, num_bins)
    counts = torch.bincount(index, minlength=num_bins).double()
    conf_sum = torch.bincount(index, weights=confidence.double(), minlength=num_bins)
    right_sum = torch.bincount(index, weights=correct.double(), minlength=num_bins)
    rows = []
    for b in range(num_bins):
        n = float(counts[b])
        rows.append({"lower": b / num_bins, "upper": (b + 1) / num_bins, "count": n,
                     "confidence": float(conf_sum[b]) / n if n else None,
                     "accuracy": float(right_sum[b]) / n if n else None})
    return rows


def calibration_gap(confidence: torch.Tensor, correct: torch.Tensor, num_bins: int = NUM_BINS) -> float:
    """sum_b (n_b / N) |accuracy_b - confidence_b| over equal-width confidence bins."""
    total = len(confidence)
    gaps = [(row["count"], row["accuracy"], row["confidence"]) for row in reliability(confidence, correct, num_bins)]
    return sum(n / total * abs(acc - conf) for n, acc, conf in gaps if n and acc is not None and conf is not None)


def ece(probs: torch.Tensor, y: torch.Tensor, num_bins: int = NUM_BINS) -> float:
    """Expected calibration error of the top-label confidence (Guo et al. 2017), NUM_BINS equal-width bins."""
    return calibration_gap(probs.amax(1), probs.argmax(1) == y, num_bins)


def classwise_ece(probs: torch.Tensor, y: torch.Tensor, num_bins: int = NUM_BINS) -> float:
    """Mean over classes c of the calibration error of p_c against [y = c] (Kull et al. 2019)."""
    return sum(calibration_gap(probs[:, c], y == c, num_bins) for c in range(probs.shape[1])) / probs.shape[1]


def average_ranks(a: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a, tied values sharing the mean of their ranks."""
    _, inverse, counts = torch.unique(a, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    return (ends - (counts.double() - 1) / 2)[inverse]


def auroc(score: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve of `score` for the positive points (Mann-Whitney U / (n+ n-)); nan with one kind."""
    num_pos = int(positive.sum())
    num_neg = len(positive) - num_pos
    if num_pos == 0 or num_neg == 0:
        return math.nan
    rank_sum = float(average_ranks(score)[positive].sum())
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)


def rejection_curve(uncertainty: torch.Tensor, correct: torch.Tensor,
                    fractions: tuple[float, ...] = REJECTION_FRACTIONS) -> list[tuple[float, float]]:
    """(fraction rejected, accuracy of the rest) when the most uncertain points are rejected first."""
    order = torch.argsort(uncertainty, stable=True)  # most certain first
    kept_correct = correct.double()[order]
    total = len(order)
    return [(f, float(kept_correct[: total - round(f * total)].mean())) for f in fractions if round(f * total) < total]


def confusion_matrix(predicted: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) counts: row = true class, column = predicted class."""
    return torch.bincount(y * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_metrics(summary: ClassSummary, y: torch.Tensor) -> dict[str, object]:
    """Every metric of one split: y (N,) class codes. auroc only for two classes (class 1 positive)."""
    y = y.long()
    probs = summary.probs
    metrics: dict[str, object] = {
        "accuracy": accuracy(probs, y), "nll": nll(probs, y), "brier": brier(probs, y), "ece": ece(probs, y),
        "ece_classwise": classwise_ece(probs, y),
    }
    if probs.shape[1] == 2:
        area = auroc(probs[:, 1], y == 1)
        metrics["auroc"] = None if math.isnan(area) else area  # one class present: undefined
    metrics["entropy_mean"] = float(summary.entropy.mean())
    metrics["expected_entropy_mean"] = float(summary.expected_entropy.mean())
    metrics["mutual_information_mean"] = float(summary.mutual_information.mean())
    correct = summary.predicted == y
    metrics["reliability"] = reliability(summary.confidence, correct)
    metrics["rejection"] = {name: [{"rejected": f, "accuracy": a} for f, a in
                                   rejection_curve(summary.uncertainty(name), correct)] for name in UNCERTAINTIES}
    metrics["confusion"] = confusion_matrix(summary.predicted, y, probs.shape[1]).tolist()
    return metrics
