"""Runs trained as batched groups, each into its own run directory with the files a single run writes.

Which runs can share a group is decided on the built sessions (`fit.group.signature`:
the same shapes, architecture, schedule and device); a group is capped so its
activations fit in memory, and a run that fits no group trains alone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from bbbrun.config import ModelType
from bbbrun.fit.group import MemberCallbacks, fit_group, signature
from bbbrun.fit.loop import Callbacks
from bbbrun.runs.layout import RunDir
from bbbrun.runs.runner import RunResult, begin_run, finish_run, run_training
from bbbrun.runs.session import Session

# A group's training tensors may use at most this share of the machine's memory (or of a GPU's).
MEMORY_SHARE = 0.25
DEFAULT_MAX_MEMBERS = 64


def run_all(sessions: list[Session], run_dirs: list[RunDir], callbacks: list[Callbacks],
            should_stop: Callable[[], int | None] = lambda: None,
            max_members: int = DEFAULT_MAX_MEMBERS) -> dict[int, RunResult]:
    """Train every session, in batched groups where they can share one; results by session index.

    After a user's stop, the sessions not yet started have no result.
    """
    results: dict[int, RunResult] = {}
    for members in plan_groups(sessions, max_members):
        picked = [sessions[i] for i in members]
        if len(members) == 1:
            i = members[0]
            calls = dataclasses.replace(callbacks[i], should_stop=should_stop)
            results[i] = run_training(sessions[i], run_dirs[i], calls)
        else:
            done = run_group(picked, [run_dirs[i] for i in members], [callbacks[i] for i in members], should_stop)
            results.update(zip(members, done, strict=True))
        if any(r.status == "interrupted" for r in results.values()):
            break  # the user stopped: the rest stays to do, as in a sweep
    return results


def run_group(sessions: list[Session], run_dirs: list[RunDir], callbacks: list[Callbacks],
              should_stop: Callable[[], int | None] = lambda: None) -> list[RunResult]:
    """Train the sessions as one batched model, then finish each run on its own."""
    savers = [begin_run(s, d) for s, d in zip(sessions, run_dirs, strict=True)]
    member_calls = [dataclasses.replace(c, on_checkpoint=saver.wrap(c.on_checkpoint))
                    for c, saver in zip(callbacks, savers, strict=True)]
    states = fit_group([s.trainee for s in sessions], MemberCallbacks(member_calls, should_stop))
    return [finish_run(s, d, state, saver, c)
            for s, d, state, saver, c in zip(sessions, run_dirs, states, savers, callbacks, strict=True)]


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
