"""Adam for K models stacked along a leading member axis, each with its own learning rate and weight decay.

It takes exactly the steps torch.optim.Adam (its default, single-tensor
form) takes for each member alone, and its moments convert to and from a
member's own optimiser state, so a member's checkpoint resumes as a run of
its own.
"""

from __future__ import annotations

import torch


class StackedAdam:
    """Adam over tensors shaped (K, ...); lr and weight decay are (K,) tensors, betas and eps shared."""

    def __init__(self, params: list[torch.Tensor], betas: tuple[float, float], eps: float = 1e-8) -> None:
        self.params = params
        self.betas, self.eps = betas, eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr: torch.Tensor, weight_decay: torch.Tensor | None) -> None:
        """One update; lr and weight_decay (K,) in the parameters' dtype and device."""
        beta1, beta2 = self.betas
        self.step_count += 1
        # Python floats, as torch's Adam computes its bias corrections.
        correction1 = 1 - beta1**self.step_count
        correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            assert p.grad is not None
            grad = p.grad if weight_decay is None else p.grad.addcmul(member_view(weight_decay, p), p)
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (v.sqrt() / correction2_sqrt).add_(self.eps)
            p.sub_(member_view(lr / correction1, p) * (m / denom))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def select(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Keep the members at `index`; `params` are the already-selected parameter tensors."""
        self.params = params
        self.exp_avg = [m[index] for m in self.exp_avg]
        self.exp_avg_sq = [v[index] for v in self.exp_avg_sq]


def member_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(K,) values shaped to broadcast over a (K, ...) tensor."""
    return values.view(-1, *([1] * (like.dim() - 1)))
