"""Weight pruning by signal-to-noise ratio (Blundell et al. 2015, sec. 5.1 and Table 2).

A weight's SNR is |mu| / sigma. Removing a fraction of the weights removes
those of lowest SNR: their mean is set to zero and their sigma to exactly
zero, so every sampled network holds them at 0. Biases are kept (the paper
counts weights), so a fraction is of the weight-matrix entries alone.
"""

from __future__ import annotations

import copy

import torch

from bbbrun.bnn import layers
from bbbrun.bnn.network import BayesianNetwork

# softplus(-200) underflows to exactly 0 in float32 (and float64): a removed weight has no noise left.
PRUNED_RHO = -200.0


def weight_positions(model: BayesianNetwork) -> torch.Tensor:
    """The flat indices of every weight-matrix entry (no biases), layer by layer."""
    return torch.cat([torch.arange(layer.weight.start, layer.weight.stop) for layer in model.layout])


def signal_to_noise(model: BayesianNetwork) -> torch.Tensor:
    """(num weights,) |mu| / sigma of each weight-matrix entry, in weight_positions order."""
    index = weight_positions(model).to(model.mu.device)
    mu, sigma = model.mu.detach()[index], layers.sigma_from_rho(model.rho.detach()[index])
    return mu.abs() / sigma


def removed_positions(model: BayesianNetwork, fraction: float) -> torch.Tensor:
    """The flat indices of the round(fraction * num weights) weights of lowest SNR (ties: lower index first)."""
    snr = signal_to_noise(model)
    count = round(fraction * len(snr))
    order = torch.argsort(snr.cpu(), stable=True)
    return weight_positions(model)[order[:count]]


def pruned(model: BayesianNetwork, fraction: float) -> BayesianNetwork:
    """A copy of the model with the lowest-SNR `fraction` of its weights removed."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"a pruning fraction must be in [0, 1), got {fraction}")
    copy_ = copy.deepcopy(model)
    index = removed_positions(model, fraction).to(model.mu.device)
    with torch.no_grad():
        copy_.mu[index] = 0.0
        copy_.rho[index] = PRUNED_RHO
    return copy_
