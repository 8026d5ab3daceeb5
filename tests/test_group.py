"""Runs trained as one batched group: each member is the run it would be alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from bbbrun.config import config_from_dict
from bbbrun.fit.group import MemberCallbacks, fit_group
from bbbrun.fit.loop import Callbacks, TrainData, TrainState, fit
from bbbrun.runs.session import Session, start_session

BASE: dict[str, Any] = {
    "name": "member", "seed": 0, "device": "cpu",
    "data": {"num_points": 120, "noise_std": 1.5},
    "model": {"hidden_dim": 6, "num_layers": 3, "likelihood": "learned"},
    "train": {"epochs": 40, "log_every": 20, "checkpoint_every": 1000},
    "predict": {"num_samples": 20},
}


def session_in_float64(raw: dict[str, Any]) -> Session:
    session = start_session(config_from_dict(raw))
    trainee = session.trainee
    trainee.model.double()
    d = trainee.data
    trainee.data = TrainData(d.x_train.double(), d.y_train.double(), d.x_val.double(), d.y_val.double())
    return session


def alone_and_grouped(raws: list[dict[str, Any]]) -> tuple[list[Session], list[Session], list[TrainState]]:
    """Each config trained alone, and all of them trained as one group, in float64."""
    alone = []
    for raw in raws:
        session = session_in_float64(raw)
        fit(session.trainee)
        alone.append(session)
    grouped = [session_in_float64(raw) for raw in raws]
    states = fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    return alone, grouped, states


def assert_same_parameters(one: Session, member: Session) -> None:
    for name, value in params_of(one).items():
        torch.testing.assert_close(params_of(member)[name], value, rtol=0, atol=1e-10)


def with_changes(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            raw[section][key] = value
        else:
            raw[section] = value
    return raw


def params_of(session: Session) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in session.model.named_parameters()}


VARIANTS = [
    pytest.param({}, id="reparam-mc-fullbatch"),
    pytest.param({"model__kl": "closed_form"}, id="reparam-closed"),
    pytest.param({"model__estimator": "local_reparameterization"}, id="local-mc"),
    pytest.param({"model__estimator": "local_reparameterization", "model__kl": "closed_form",
                  "train__batch_size": 25}, id="local-closed-ragged-minibatch"),
    pytest.param({"train__batch_size": 32, "model__likelihood": "heteroscedastic"}, id="minibatch-hetero"),
    pytest.param({"model__prior": "scale_mixture", "train__batch_size": 50}, id="scale-mixture"),
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_member_trains_as_it_would_alone(variant: dict[str, Any]) -> None:
    """Several seeds, learning rates, schedules, priors and KL weightings in one group, in float64."""
    member_changes = [
        {"seed": 0, "optim": {"lr": 0.01}},
        {"seed": 1, "optim": {"lr": 0.003, "lr_final_factor": 0.1}},
        {"seed": 2, "optim": {"lr": 0.02, "weight_decay": 1e-3}, "train__kl_weighting": "blundell"},
    ]
    raws = []
    for i, change in enumerate(member_changes):
        raw = with_changes(**variant)
        raw["seed"] = change["seed"]
        raw.setdefault("optim", {}).update(change["optim"])
        if "train__kl_weighting" in change:
            raw["train"]["kl_weighting"] = change["train__kl_weighting"]
        if raw["model"].get("prior") == "scale_mixture":
            raw["model"]["sigma_1"] = 1.0 + 0.5 * i
        elif raw["model"].get("kl") == "closed_form" or i:
            raw["model"]["prior_std"] = 1.0 - 0.2 * i
        raws.append(raw)
    alone, grouped, states = alone_and_grouped(raws)
    for one, member, state in zip(alone, grouped, states, strict=True):
        assert state.status == "completed" and state.epoch == one.state.epoch
        assert_same_parameters(one, member)
        # The history (loss terms and the validation pass from the member's own stream) matches too.
        for row_alone, row_member in zip(one.state.history, state.history, strict=True):
            for key in ("loss", "nll", "kl", "val_nll_1sample", "noise_std"):
                assert row_member[key] == pytest.approx(row_alone[key], rel=1e-9, abs=1e-12)


def test_a_member_that_diverges_drops_out_and_the_others_finish() -> None:
    good = with_changes()
    bad = with_changes(optim={"lr": 1e9})
    bad["seed"] = 5
    grouped = [session_in_float64(r) for r in (good, bad, good | {"seed": 3})]
    states = fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    assert [s.status for s in states] == ["completed", "diverged", "completed"]
    assert states[1].diverged_epoch is not None and states[1].diverged_epoch < 40
    alone = session_in_float64(good | {"seed": 3})
    fit(alone.trainee)
    torch.testing.assert_close(grouped[2].model.mu.detach(), alone.model.mu.detach(), rtol=0, atol=1e-10)


def test_an_interrupted_member_resumes_alone_to_the_run_it_would_have_been() -> None:
    raws = [with_changes(train={**BASE["train"], "batch_size": 32}) | {"seed": s} for s in (0, 1)]
    grouped = [session_in_float64(r) for r in raws]
    epochs_seen: list[int] = []
    calls = MemberCallbacks([Callbacks(on_progress=lambda e, _: epochs_seen.append(e)) for _ in grouped],
                            should_stop=lambda: 2 if epochs_seen and epochs_seen[-1] >= 20 else None)
    states = fit_group([s.trainee for s in grouped], calls)
    assert [(s.status, s.epoch, s.stop_signal) for s in states] == [("interrupted", 20, 2)] * 2
    # Each member's own model and optimiser hold its state, so it goes on alone (or is checkpointed).
    for raw, member in zip(raws, grouped, strict=True):
        assert fit(member.trainee).status == "completed"
        alone = session_in_float64(raw)
        fit(alone.trainee)
        for name, value in params_of(alone).items():
            torch.testing.assert_close(params_of(member)[name], value, rtol=0, atol=1e-10)


def test_members_resumed_together_go_on_as_they_would_alone() -> None:
    """Interrupted members (their state written back, as a checkpoint holds it) regroup and finish."""
    raws = [with_changes(train={**BASE["train"], "batch_size": 50}) | {"seed": s} for s in (0, 1)]
    grouped = [session_in_float64(r) for r in raws]
    seen: list[int] = []
    calls = MemberCallbacks([Callbacks(on_progress=lambda e, _: seen.append(e)) for _ in grouped],
                            should_stop=lambda: 2 if seen and seen[-1] >= 15 else None)
    fit_group([s.trainee for s in grouped], calls)
    states = fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    assert [s.status for s in states] == ["completed"] * 2
    for raw, member in zip(raws, grouped, strict=True):
        alone = session_in_float64(raw)
        fit(alone.trainee)
        for name, value in params_of(alone).items():
            torch.testing.assert_close(params_of(member)[name], value, rtol=0, atol=1e-10)


def test_members_resumed_after_training_ended_finish_without_training() -> None:
    """Runs stopped while writing their results regroup on resume with nothing left to train, as `fit` would."""
    raws = [with_changes() | {"seed": s} for s in (0, 1)]
    grouped = [session_in_float64(r) for r in raws]
    fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    trained = [params_of(s) for s in grouped]
    states = fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    assert [(s.status, s.epoch) for s in states] == [("completed", BASE["train"]["epochs"])] * 2
    for before, member in zip(trained, grouped, strict=True):
        for name, value in before.items():
            torch.testing.assert_close(params_of(member)[name], value, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_group_on_the_gpu_trains_each_member_as_alone() -> None:
    raws = [with_changes(device="cuda", train={**BASE["train"], "batch_size": 32}) | {"seed": s} for s in (0, 1)]
    alone = []
    for raw in raws:
        session = start_session(config_from_dict(raw))
        fit(session.trainee)
        alone.append(session)
    grouped = [start_session(config_from_dict(raw)) for raw in raws]
    states = fit_group([s.trainee for s in grouped], MemberCallbacks([Callbacks() for _ in grouped]))
    assert [s.status for s in states] == ["completed"] * 2
    for one, member in zip(alone, grouped, strict=True):
        assert member.model.mu.device.type == "cuda"
        torch.testing.assert_close(member.model.mu, one.model.mu, rtol=1e-3, atol=1e-4)


def test_threads_must_be_positive() -> None:
    from bbbrun.errors import ConfigError

    with pytest.raises(ConfigError, match="threads"):
        config_from_dict(with_changes(threads=0))
    assert config_from_dict(with_changes(threads=2)).threads == 2
