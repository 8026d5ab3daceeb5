"""`model.type: deterministic`: the same network with point weights, the baseline a Bayesian net must beat.

The weights are the means mu alone: no sampling and no KL, so the loss is the
likelihood's NLL (plus optim.weight_decay, an L2 penalty, when set). rho is
kept, unused, so both kinds share one checkpoint layout and every tool that
reads one. Its "predictive" is the one network repeated: no epistemic spread.
Batched groups (`fit.group`) sample weights, so a deterministic run always trains alone.
"""

from __future__ import annotations

import torch

from bbbrun.bnn.likelihoods import Likelihood
from bbbrun.bnn.network import BayesianNetwork, Output
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import ModelConfig, ModelType


class DeterministicNetwork(BayesianNetwork):
    def forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None = None) -> Output:
        return Output(raw=self._run(self._standardize(x), self.mu), kl=self.mu.new_zeros(()))

    def draw_noise(self, num_points: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        return []  # nothing is sampled

    def sample_weights(self, num_samples: int, generator: torch.Generator) -> torch.Tensor:
        return self.mu.detach().expand(num_samples, -1)  # (S, P), every row the point weights


NETWORKS: dict[ModelType, type[BayesianNetwork]] = {
    ModelType.BAYESIAN: BayesianNetwork,
    ModelType.DETERMINISTIC: DeterministicNetwork,
}


def make_network(cfg: ModelConfig, standardizer: Standardizer | None = None, in_dim: int | None = None,
                 likelihood: Likelihood | None = None) -> BayesianNetwork:
    """The network `model.type` names, built as BayesianNetwork is."""
    return NETWORKS[cfg.type](cfg, standardizer, in_dim, likelihood)
