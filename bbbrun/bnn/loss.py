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


def negative_elbo(likelihood: Likelihood, out: Output, y: torch.Tensor, num_train: int, kl_weight: float) -> LossParts:
    """Minibatch estimate of the full-data negative ELBO.

    Blundell et al.'s minibatch objective is kl_weight * KL + NLL(batch); over
    an epoch those add up to the full-data negative ELBO. Scaling it by
    num_train / batch size puts every step on the full-data scale: with
    uniform weights each step is an unbiased estimate of it. (Scaling the NLL
    alone would shrink the KL's share by the number of batches.)
    """
    nll = likelihood.nll(out.raw, y)
    total = (nll + kl_weight * out.kl) * (num_train / y.shape[0])
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
