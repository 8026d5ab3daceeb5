"""Training K runs of one architecture at once, as one batched model.

Each member is a whole run (`Trainee`): its own data, random streams,
learning-rate schedule, prior settings, Adam state and progress. The group
stacks their tensors along a leading member axis, so a step is a few batched
products (`bmm`) instead of K small ones, and hands every member back its
slice whenever a checkpoint, a log row or the end needs it. A member draws
its shuffles and noise from its own streams in the order it would alone, so
it trains to the run it would be alone (to rounding; tests/test_group.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

from bbbrun.bnn import layers
from bbbrun.bnn.loss import kl_weights
from bbbrun.bnn.network import BayesianNetwork, Output, sampled_pass
from bbbrun.config import Config, Prior
from bbbrun.fit.loop import (
    Callbacks,
    Trainee,
    TrainState,
    batches_per_epoch,
    intra_op_threads,
    learning_rate,
    log_row,
    planned_epochs,
    training_threads,
)
from bbbrun.fit.stacked_adam import StackedAdam

# Settings a group's members may differ in; anything else that shapes the computation must agree.
# (Data settings may differ too, as long as the arrays come out the same shape.)
MEMBER_SETTINGS = (
    "name", "seed", "optim.lr", "optim.lr_final_factor", "optim.weight_decay", "model.prior_std",
    "model.sigma_1", "model.sigma_2", "model.mixture_weight", "model.init_rho_mean", "model.init_rho_std",
    "model.init_mu_std", "model.bias_mu_init", "model.bias_rho_init", "model.likelihood_std",
    "train.kl_weighting", "predict", "data",
)


@dataclass
class MemberCallbacks:
    """The group's view of its members' callbacks: per member, and one stop check for all."""

    members: list[Callbacks]
    should_stop: Callable[[], int | None] = lambda: None


def signature(cfg: Config, trainee: Trainee) -> tuple[object, ...]:
    """What must agree for runs to train as one group: shapes, architecture, schedule length, device."""
    data = trainee.data
    m, t = cfg.model, cfg.train
    return (
        tuple(data.x_train.shape), tuple(data.x_val.shape), str(data.x_train.device), data.x_train.dtype,
        m.num_layers, m.hidden_dim, m.activation, m.estimator, m.kl, m.likelihood, m.prior, m.type,
        trainee.model.likelihood.output_width,
        t.batch_size, planned_epochs(t, data.num_train), t.log_every, t.checkpoint_every, cfg.optim.betas,
        trainee.state.epoch, len(trainee.optimizer.state) == 0,
    )


class Group:
    """K trainees' tensors stacked along a leading member axis; the members keep their own objects."""

    def __init__(self, members: list[Trainee]) -> None:
        if len({signature(t.cfg, t) for t in members}) != 1:
            raise ValueError("runs of one group must share shapes, architecture, schedule and progress")
        self.members = members
        self.template: BayesianNetwork = members[0].model
        self.names = [name for name, _ in self.template.named_parameters()]
        self.params = self._stack_params()
        self.buffers = {name: torch.stack([dict(t.model.named_buffers())[name] for t in members])
                        for name, _ in self.template.named_buffers()}
        self.x_train = torch.stack([t.data.x_train for t in members])
        self.y_train = torch.stack([t.data.y_train for t in members])
        self.prior = stacked_prior(members)
        self._member_constants()
        self.optimizer = StackedAdam(list(self.params.values()), members[0].cfg.optim.betas)
        if members[0].optimizer.state:
            self._restore_moments()

    def _restore_moments(self) -> None:
        """Resumed members (all at the same epoch) bring their Adam moments and step count."""
        states = []
        for t in self.members:
            params = dict(t.model.named_parameters())
            states.append([t.optimizer.state[params[name]] for name in self.names])
        opt = self.optimizer
        opt.step_count = int(states[0][0]["step"])
        opt.exp_avg = [torch.stack([s[j]["exp_avg"] for s in states]) for j in range(len(self.names))]
        opt.exp_avg_sq = [torch.stack([s[j]["exp_avg_sq"] for s in states]) for j in range(len(self.names))]

    def _member_constants(self) -> None:
        """Each member's KL weight per step of an epoch (lists for its log rows, (K, M) for the loss) and
        weight decay ((K,), None when every member has none): fixed for the whole training."""
        first, like = self.members[0], self.template.mu
        num_batches = batches_per_epoch(first.cfg.train, first.data.num_train)
        self.weight_lists = [kl_weights(num_batches, t.cfg.train.kl_weighting) for t in self.members]
        self.kl_weights = torch.tensor(self.weight_lists, dtype=like.dtype, device=like.device)
        decay = [t.cfg.optim.weight_decay for t in self.members]
        self.weight_decay = torch.tensor(decay, dtype=like.dtype, device=like.device) if any(decay) else None

    def _stack_params(self) -> dict[str, torch.Tensor]:
        per_member = [dict(t.model.named_parameters()) for t in self.members]
        return {name: torch.stack([p[name].detach() for p in per_member]).requires_grad_()
                for name in self.names}

    @property
    def size(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor, noise: list[torch.Tensor]) -> Output:
        """x (K, B, d) -> raw (K, B, out) and per-member KL (K,)."""
        h = ((x - self.buffers["x_shift"].unsqueeze(1)) / self.buffers["x_scale"].unsqueeze(1)).mT
        return sampled_pass(self.template, h, self.params["mu"], self.params["rho"], noise, self.prior)

    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-member summed NLL (K,): each member's own likelihood, mapped over the member axis."""
        likelihood = self.template.likelihood
        state = {name.removeprefix("likelihood."): value for name, value in {**self.params, **self.buffers}.items()
                 if name.startswith("likelihood.")}

        def one(member_state: dict[str, torch.Tensor], r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return functional_call(likelihood, member_state, (r, t))

        return vmap(one)(state, raw, y)

    def draw_noise(self, num_points: int) -> list[torch.Tensor]:
        """Each member's draws from its own stream, stacked: (K, ...) per draw."""
        draws = [t.model.draw_noise(num_points, t.noise) for t in self.members]
        return [torch.stack(parts) for parts in zip(*draws, strict=True)]

    def write_back(self, index: int, lr: float) -> None:
        """Member `index`'s slice into its own model and optimiser, as if it had trained alone."""
        trainee = self.members[index]
        own = dict(trainee.model.named_parameters())
        opt = self.optimizer
        with torch.no_grad():
            for name, m, v in zip(self.names, opt.exp_avg, opt.exp_avg_sq, strict=True):
                param = own[name]
                param.copy_(self.params[name][index])
                trainee.optimizer.state[param] = {
                    "step": torch.tensor(float(opt.step_count)),
                    "exp_avg": m[index].clone(), "exp_avg_sq": v[index].clone(),
                }
        for group in trainee.optimizer.param_groups:
            group["lr"] = lr

    def keep(self, index: list[int]) -> None:
        """Go on with the members at `index` only (the others diverged)."""
        at = torch.tensor(index, device=self.x_train.device)
        self.members = [self.members[i] for i in index]
        self.params = {name: p.detach()[at].requires_grad_() for name, p in self.params.items()}
        self.buffers = {name: b[at] for name, b in self.buffers.items()}
        self.x_train, self.y_train = self.x_train[at], self.y_train[at]
        self.prior = stacked_prior(self.members)
        self._member_constants()
        self.optimizer.select(at, list(self.params.values()))


def stacked_prior(members: list[Trainee]) -> layers.Prior:
    """The members' prior settings as (K, 1) tensors, broadcasting over their weights."""
    like = members[0].model.mu

    def column(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).unsqueeze(1)

    cfgs = [t.cfg.model for t in members]
    if cfgs[0].prior is Prior.SCALE_MIXTURE:
        return layers.ScaleMixturePrior(column([c.mixture_weight for c in cfgs]),
                                        column([c.sigma_1 for c in cfgs]), column([c.sigma_2 for c in cfgs]))
    return layers.GaussianPrior(column([c.prior_std for c in cfgs]))


# ------------------------------------------------------------------ the loop


def fit_group(members: list[Trainee], callbacks: MemberCallbacks) -> list[TrainState]:
    """Train every member to its planned epochs, as `fit` trains one; a member that diverges drops out."""
    group = Group(members)
    cfg, data = members[0].cfg, members[0].data
    batch_size = cfg.train.batch_size if cfg.train.batch_size and cfg.train.batch_size < data.num_train else None
    elements = group.size * (batch_size or data.num_train) * cfg.model.hidden_dim
    with intra_op_threads(training_threads(cfg, data.x_train.device, elements)):
        _fit_group(group, dict(enumerate(callbacks.members)), callbacks.should_stop, batch_size)
    return [t.state for t in members]


def _fit_group(group: Group, calls: dict[int, Callbacks], should_stop: Callable[[], int | None],
               batch_size: int | None) -> None:
    first = group.members[0]
    cfg, n = first.cfg, first.data.num_train
    epochs = planned_epochs(cfg.train, n)
    ids = list(range(group.size))  # each live member's index among the callbacks
    report_every = max(1, min(cfg.train.log_every, epochs // 100 or 1))
    on_cpu = first.data.x_train.device.type == "cpu"
    started = time.perf_counter()
    before = [t.state.train_seconds for t in group.members]
    if first.state.epoch >= epochs:  # resumed after training ended (its results were stopped): nothing to train
        for t in group.members:
            t.state.status = "completed"
        return
    for t in group.members:
        t.state.status = "running"
    for epoch in range(first.state.epoch + 1, epochs + 1):
        lrs = [learning_rate(t.cfg.optim, epoch, epochs) for t in group.members]
        is_log = epoch % cfg.train.log_every == 0 or epoch == epochs
        track = is_log or epoch % report_every == 0
        sums = run_group_epoch(group, lrs, batch_size, track)
        if on_cpu or track or epoch % cfg.train.checkpoint_every == 0:
            finite = torch.isfinite(sums[2]).tolist()
            if not all(finite):
                for i, ok in enumerate(finite):
                    if not ok:
                        group.members[i].state.status = "diverged"
                        group.members[i].state.diverged_epoch = epoch
                alive = [i for i, ok in enumerate(finite) if ok]
                ids = [ids[i] for i in alive]
                sums = tuple(s[alive] for s in sums)  # type: ignore[assignment]
                lrs = [lrs[i] for i in alive]
                before = [before[i] for i in alive]
                group.keep(alive)
                if not alive:
                    return
        seconds = time.perf_counter() - started
        for i, t in enumerate(group.members):
            t.state.epoch = epoch
            t.state.train_seconds = before[i] + seconds
        if track:
            report(group, ids, calls, epoch, sums, lrs, is_log)
        if epoch % cfg.train.checkpoint_every == 0:
            for i, t in enumerate(group.members):
                group.write_back(i, lrs[i])
                calls[ids[i]].on_checkpoint(t.state)
        signum = should_stop()
        if signum is not None:
            for i, t in enumerate(group.members):
                group.write_back(i, lrs[i])
                t.state.status, t.state.stop_signal = "interrupted", signum
            return
    for i, t in enumerate(group.members):
        group.write_back(i, lrs[i])
        t.state.status = "completed"


def report(group: Group, ids: list[int], calls: dict[int, Callbacks], epoch: int,
           sums: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lrs: list[float], is_log: bool) -> None:
    """Progress for every member, and on log epochs its history row (a validation pass from its own stream)."""
    n = group.members[0].data.num_train
    per_point = ((sums[0] + sums[1]) / n).tolist()
    for i, t in enumerate(group.members):
        if is_log:
            group.write_back(i, lrs[i])
            member_sums = (sums[0][i], sums[1][i], sums[2][i])
            row = log_row(t.model, t.data, t.noise, epoch, member_sums, group.weight_lists[i], lrs[i],
                          t.state.train_seconds)
            t.state.history.append(row)
            calls[ids[i]].on_log(row)
        calls[ids[i]].on_progress(epoch, per_point[i])


def run_group_epoch(group: Group, lrs: list[float], batch_size: int | None,
                    track: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass of every member over its data; (K,) summed NLL, weighted KL and last loss, detached."""
    members, like = group.members, group.params["mu"]
    n = members[0].data.num_train
    lr = torch.tensor(lrs, dtype=like.dtype, device=like.device)
    weights = group.kl_weights  # (K, M)
    num_batches = weights.shape[1]
    order = None
    if batch_size:
        order = torch.stack([torch.randperm(n, generator=t.shuffle) for t in members]).to(like.device)
    nll_sum = kl_sum = last = torch.zeros(group.size, dtype=like.dtype, device=like.device)
    rows = torch.arange(group.size, device=like.device).unsqueeze(1)
    for i in range(num_batches):
        if order is None:
            x, y = group.x_train, group.y_train
        else:
            idx = order[:, i * batch_size : (i + 1) * batch_size]  # type: ignore[operator]
            x, y = group.x_train[rows, idx], group.y_train[rows, idx]
        out = group.forward(x, group.draw_noise(x.shape[1]))
        nll = group.nll(out.raw, y)
        # Each member's step loss, as `negative_elbo` writes it for one run.
        total = nll * (n / y.shape[1]) + (num_batches * weights[:, i]) * out.kl
        group.optimizer.zero_grad()
        total.sum().backward()
        group.optimizer.step(lr, group.weight_decay)
        last = total.detach()
        if track:
            nll_sum = nll_sum + nll.detach()
            kl_sum = kl_sum + weights[:, i] * out.kl.detach()
    return nll_sum, kl_sum, last

