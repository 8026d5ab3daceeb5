"""Runs trained as batched groups, each into its own run directory with the files a single run writes.

Which runs can share a group is decided on the built sessions (`fit.group.signature`:
the same shapes, architecture, schedule and device); a group is capped so its
activations fit in memory, and a run that fits no group trains alone.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bbbrun.config import ModelType
from bbbrun.fit.group import MemberCallbacks, fit_group, signature
from bbbrun.fit.loop import Callbacks, TrainState
from bbbrun.runs.layout import RunDir
from bbbrun.runs.provenance import Invocation
from bbbrun.runs.runner import RunRecord, RunResult, Saver, begin_run, finish_run, run_training
from bbbrun.runs.session import Session

# A group's training tensors may use at most this share of the machine's memory (or of a GPU's).
MEMORY_SHARE = 0.25
DEFAULT_MAX_MEMBERS = 64


@dataclass(frozen=True)
class Origin:
    """Where a run came from, for its run.json, and its tracking parent (a sweep's run in MLflow)."""

    invocation: Invocation | None = None
    tracking_parent: str | None = None


def run_all(sessions: list[Session], run_dirs: list[RunDir], callbacks: list[Callbacks],
            should_stop: Callable[[], int | None] = lambda: None,
            max_members: int = DEFAULT_MAX_MEMBERS, origins: list[Origin] | None = None) -> dict[int, RunResult]:
    """Train every session, in batched groups where they can share one; results by session index.

    After a user's stop, the sessions not yet started have no result.
    """
    where = origins or [Origin() for _ in sessions]
    results: dict[int, RunResult] = {}
    for members in plan_groups(sessions, max_members):
        if len(members) == 1:
            i = members[0]
            calls = dataclasses.replace(callbacks[i], should_stop=should_stop)
            results[i] = run_training(sessions[i], run_dirs[i], calls, where[i].invocation, where[i].tracking_parent)
        else:
            done = run_group([sessions[i] for i in members], [run_dirs[i] for i in members],
                             [callbacks[i] for i in members], should_stop, [where[i] for i in members])
            results.update(zip(members, done, strict=True))
        if any(r.status == "interrupted" for r in results.values()):
            break  # the user stopped: the rest stays to do, as in a sweep
    return results


def run_group(sessions: list[Session], run_dirs: list[RunDir], callbacks: list[Callbacks],
              should_stop: Callable[[], int | None] = lambda: None,
              origins: list[Origin] | None = None) -> list[RunResult]:
    """Train the sessions as one batched model, then finish each run on its own.

    Each run has its own run.json and tracker, as when trained alone; an error
    in training fails every run of the group, one in a run's own metrics or
    figures fails that run only.
    """
    where = origins or [Origin() for _ in sessions]
    records: list[RunRecord] = []
    try:
        for s, d, o in zip(sessions, run_dirs, where, strict=True):
            records.append(RunRecord(s, d, o.invocation, o.tracking_parent))
        calls = [r.callbacks(c) for r, c in zip(records, callbacks, strict=True)]
        savers = [begin_run(s, d) for s, d in zip(sessions, run_dirs, strict=True)]
        member_calls = [dataclasses.replace(c, on_checkpoint=saver.wrap(c.on_checkpoint))
                        for c, saver in zip(calls, savers, strict=True)]
        states = fit_group([s.trainee for s in sessions], MemberCallbacks(member_calls, should_stop))
    except BaseException as err:
        for record in records:
            record.fail(err)
        raise
    return [finish_member(*parts) for parts in zip(sessions, run_dirs, states, savers, calls, records, strict=True)]


def finish_member(session: Session, run_dir: RunDir, state: TrainState, saver: Saver, calls: Callbacks,
                  record: RunRecord) -> RunResult:
    try:
        result = finish_run(session, run_dir, state, saver, calls)
    except Exception as err:  # this run's metrics or figures failed; the group's other runs go on
        traceback.print_exc()
        record.fail(err)
        metrics = run_dir.write_failure(f"{type(err).__name__}: {err}", epochs_completed=state.epoch)
        return RunResult(run_dir, "failed", state.epoch, metrics)
    return record.done(result)


def plan_groups(sessions: list[Session], max_members: int) -> list[list[int]]:
    """Indices of sessions that train together, in order of first appearance; singletons train alone."""
    by_signature: dict[tuple[object, ...], list[int]] = {}
    groups: list[list[int]] = []
    for i, session in enumerate(sessions):
        if session.cfg.model.type is not ModelType.BAYESIAN:
            groups.append([i])  # a group samples weights; point weights train alone
            continue
        by_signature.setdefault(signature(session.cfg, session.trainee), []).append(i)
    for members in by_signature.values():
        cap = max(1, min(max_members, memory_cap(sessions[members[0]])))
        groups.extend(members[start : start + cap] for start in range(0, len(members), cap))
    return sorted(groups, key=lambda g: g[0])


def memory_cap(session: Session) -> int:
    """How many members of this shape fit the memory share: data, weights, and a step's activations."""
    trainee = session.trainee
    data, cfg = trainee.data, trainee.cfg
    n, d = data.x_train.shape
    batch = min(cfg.train.batch_size or n, n)
    elements = n * (d + 1) + 8 * trainee.model.num_weights + 4 * batch * cfg.model.hidden_dim * cfg.model.num_layers
    per_member = elements * data.x_train.element_size()
    return int(MEMORY_SHARE * device_memory(session) // max(per_member, 1))


def device_memory(session: Session) -> int:
    if session.device.type == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(session.device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30
