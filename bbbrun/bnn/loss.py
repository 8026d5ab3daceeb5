"""The negative ELBO: the likelihood's data term plus the weighted KL, kept apart from the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bbbrun.bnn.likelihoods import Likelihood
from bbbrun.bnn.network import Output
from bbbrun.config import KLWeighting


@dataclass
class LossParts:
    total: torch.Tensor  # what backward() is called on
    nll: torch.Tensor  # summed negative log-likelihood of the batch (unscaled)
    kl: torch.Tensor  # the KL estimate (unweighted)


def negative_elbo(
    likelihood: Likelihood, out: Output, y: torch.Tensor, num_train: int, kl_weight: float, num_batches: int = 1
) -> LossParts:
    """Step i's loss: (n / B_i) NLL(batch i) + M pi_i KL, for M batches of sizes B_i and KL weights pi_i.

    Over an epoch the steps' mean is (1/M) sum_i (n / B_i) NLL_i + sum_i pi_i KL. Its KL part is the whole
    KL exactly, since the weights sum to one; its data part is the full-data NLL in expectation over the
    shuffle, since a batch of B_i random rows holds B_i / n of the NLL on average. So every epoch's expected
    loss is the full-data negative ELBO whatever the batch sizes, a ragged last batch included. (Scaling
    NLL_i + pi_i KL by n / B_i instead weights the KL by (n / M^2) sum_i 1 / B_i, above 1 when the last
    batch is smaller.) With equal batches and uniform weights this is Blundell et al.'s kl_weight * KL +
    NLL(batch) scaled by n / B; full batch, it is NLL + KL.
    """
    nll = likelihood.nll(out.raw, y)
    total = nll * (num_train / y.shape[0]) + (num_batches * kl_weight) * out.kl
    return LossParts(total=total, nll=nll, kl=out.kl)


def kl_weights(num_batches: int, scheme: KLWeighting) -> list[float]:
    """Per-minibatch KL weights of one epoch; they sum to one.

    `blundell` is the paper's 2^(M-i) / (2^M - 1), i = 1..M, written as
    2^-i / (1 - 2^-M) so that large M does not overflow.
    """
    if scheme is KLWeighting.BLUNDELL:
        norm = -math.expm1(-num_batches * math.log(2.0))
        return [math.ldexp(1.0, -i) / norm for i in range(1, num_batches + 1)]
    return [1.0 / num_batches] * num_batches
