"""Classification metrics against hand computations and naive loops on tiny arrays."""

from __future__ import annotations

import math

import pytest
import torch

from bbbrun.bnn.likelihoods import ClassProbabilities
from bbbrun.evaluate import classification as cm

PROBS = torch.tensor([[0.9, 0.1], [0.65, 0.35], [0.3, 0.7], [0.15, 0.85]], dtype=torch.float64)
Y = torch.tensor([0, 1, 1, 0])


def naive_ece(confidence: list[float], correct: list[bool], num_bins: int = 15) -> float:
    """ECE by a loop over explicit bin edges (lower, upper]."""
    total, n = 0.0, len(confidence)
    for b in range(num_bins):
        lower, upper = b / num_bins, (b + 1) / num_bins
        members = [i for i, c in enumerate(confidence) if lower < c <= upper or (b == 0 and c == 0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


def test_accuracy_nll_brier_by_hand() -> None:
    assert cm.accuracy(PROBS, Y) == 0.5
    assert cm.nll(PROBS, Y) == pytest.approx(-(math.log(0.9) + math.log(0.35) + math.log(0.7) + math.log(0.15)) / 4)
    # (0.1^2 * 2 + 0.65^2 * 2 + 0.3^2 * 2 + 0.85^2 * 2) / 4
    assert cm.brier(PROBS, Y) == pytest.approx((0.02 + 0.845 + 0.18 + 1.445) / 4)


def test_ece_one_point_per_bin_is_the_mean_gap() -> None:
    # Confidences 0.9, 0.65, 0.7, 0.85 fall in four different bins; correct: yes, no, yes, no.
    assert cm.ece(PROBS, Y) == pytest.approx((0.1 + 0.65 + 0.3 + 0.85) / 4)


def test_ece_and_classwise_ece_match_a_naive_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(200, 4, generator=gen, dtype=torch.float64), 1)
    y = torch.randint(0, 4, (200,), generator=gen)
    conf, pred = probs.amax(1).tolist(), probs.argmax(1)
    assert cm.ece(probs, y) == pytest.approx(naive_ece(conf, (pred == y).tolist()))
    classwise = sum(naive_ece(probs[:, c].tolist(), (y == c).tolist()) for c in range(4)) / 4
    assert cm.classwise_ece(probs, y) == pytest.approx(classwise)
    # Two points in one bin: |accuracy 0.5 - mean confidence 0.92| weighted 2/2.
    pair = torch.tensor([[0.91, 0.09], [0.93, 0.07]], dtype=torch.float64)
    assert cm.ece(pair, torch.tensor([0, 1])) == pytest.approx(0.42)


def test_reliability_bins_count_every_point_once() -> None:
    bins = cm.reliability(PROBS.amax(1), PROBS.argmax(1) == Y)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 4
    assert all(b["accuracy"] is None and b["confidence"] is None for b in bins if not b["count"])
    filled = [b for b in bins if b["count"]]
    assert [round(float(b["confidence"] or 0), 6) for b in filled] == [0.65, 0.7, 0.85, 0.9]


def test_entropy_splits_into_aleatoric_and_epistemic() -> None:
    disagree = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (S=2, N=1, C=2): each sample certain, opposite
    unsure = torch.full((2, 1, 2), 0.5)  # both samples 50/50
    a, b = cm.summarize_classes(ClassProbabilities(disagree)), cm.summarize_classes(ClassProbabilities(unsure))
    assert float(a.entropy[0]) == pytest.approx(math.log(2))
    assert float(a.expected_entropy[0]) == pytest.approx(0.0)
    assert float(a.mutual_information[0]) == pytest.approx(math.log(2))
    assert float(b.expected_entropy[0]) == pytest.approx(math.log(2))
    assert float(b.mutual_information[0]) == pytest.approx(0.0)
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(7, 5, 3, generator=gen), -1)
    s = cm.summarize_classes(ClassProbabilities(probs))
    torch.testing.assert_close(s.entropy, s.expected_entropy + s.mutual_information)


def test_auroc_equals_the_pairwise_count_with_ties() -> None:
    score = torch.tensor([0.1, 0.4, 0.4, 0.8, 0.3, 0.4, 0.9])
    positive = torch.tensor([False, True, False, True, False, True, True])
    pairs = [(p, n) for p in score[positive].tolist() for n in score[~positive].tolist()]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert cm.auroc(score, positive) == pytest.approx(expected)
    assert math.isnan(cm.auroc(score, torch.ones(7, dtype=torch.bool)))


def test_rejection_curve_drops_the_most_uncertain_first() -> None:
    uncertainty = torch.tensor([0.1, 0.5, 0.2, 0.9])
    correct = torch.tensor([True, False, True, False])
    curve = dict(cm.rejection_curve(uncertainty, correct, (0.0, 0.25, 0.5)))
    assert curve == {0.0: 0.5, 0.25: pytest.approx(2 / 3), 0.5: 1.0}


def test_confusion_rows_are_true_classes() -> None:
    matrix = cm.confusion_matrix(torch.tensor([0, 0, 1, 1]), Y, 2)
    assert matrix.tolist() == [[1, 1], [1, 1]]
    matrix = cm.confusion_matrix(torch.tensor([2, 2, 0]), torch.tensor([0, 2, 0]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 0, 1]]


def test_class_metrics_keys() -> None:
    two = cm.class_metrics(cm.summarize_classes(ClassProbabilities(PROBS[None].float())), Y)
    assert {"accuracy", "nll", "brier", "ece", "ece_classwise", "auroc", "mutual_information_mean"} <= set(two)
    three = torch.softmax(torch.randn(1, 6, 3), -1)
    assert "auroc" not in cm.class_metrics(cm.summarize_classes(ClassProbabilities(three)), torch.arange(6) % 3)
