"""Which of a sweep's runs travel to a worker together, and how such a group job runs there.

Runs whose configs differ only in settings a batched group can hold per member
(`fit.group.MEMBER_SETTINGS`: seeds, data, learning rates, prior scales, ...)
go out as one job. On the worker, `runs.batched` checks the built sessions
(shapes, device) and trains them as one model; each keeps its own directory.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import traceback
from pathlib import Path
from typing import Any, TextIO

from bbbrun.fit.group import MEMBER_SETTINGS
from bbbrun.runs.layout import RunDir
from bbbrun.sweeps.executors.base import RunJob, make_run_dir, summarize_metrics


def group_key(config: dict[str, Any]) -> str:
    """The config with every per-member setting removed: runs with equal keys may batch."""
    shared = copy.deepcopy(config)
    for dotted in MEMBER_SETTINGS:
        section, _, key = dotted.partition(".")
        if key and isinstance(shared.get(section), dict):
            shared[section].pop(key, None)
        elif not key:
            shared.pop(section, None)
    return json.dumps(shared, sort_keys=True, default=str)


def batch_jobs(jobs: list[RunJob], max_members: int, workers: int) -> list[RunJob]:
    """Jobs as they go to the executor: groups of batchable runs (at most max_members each), the rest alone.

    A group is split so that every worker gets one when there are fewer groups than workers.
    """
    if max_members <= 1:
        return jobs
    by_key: dict[str, list[RunJob]] = {}
    for job in jobs:
        by_key.setdefault(group_key(job.config), []).append(job)
    parts = max(1, math.ceil(workers / len(by_key))) if by_key else 1
    batched = []
    for members in by_key.values():
        size = min(max_members, max(1, math.ceil(len(members) / parts)))
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            batched.append(chunk[0] if len(chunk) == 1 else dataclasses.replace(chunk[0], members=tuple(chunk)))
    return sorted(batched, key=lambda job: job.index)


def member_indices(job: RunJob) -> list[int]:
    return [m.index for m in job.members] if job.members else [job.index]


def execute_group(job: RunJob) -> dict[str, Any]:
    """Train a group job's runs (batched where they can be); never raises: failures are per run."""
    members = list(job.members)
    summaries: dict[int, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        todo: list[tuple[RunJob, RunDir, TextIO | None]] = []
        for member in members:
            run_dir = RunDir(Path(member.run_dir))
            if run_dir.is_completed():
                summaries[member.index] = summarize_metrics(member.index, run_dir.read_metrics() or {})
                continue
            make_run_dir(run_dir)
            log = stack.enter_context(open(run_dir.log, "a")) if job.capture_output else None
            todo.append((member, run_dir, log))
        if todo and todo[0][2] is not None:
            # What the group itself prints (a traceback) goes to its first run's log.
            stack.enter_context(contextlib.redirect_stdout(todo[0][2]))
            stack.enter_context(contextlib.redirect_stderr(todo[0][2]))
        summaries.update(train_members(todo))
    return {"index": job.index, "members": [summaries[m.index] for m in members]}


def train_members(todo: list[tuple[RunJob, RunDir, TextIO | None]]) -> dict[int, dict[str, Any]]:
    from bbbrun.runs.batched import Origin, run_all
    from bbbrun.runs.session import sweep_session

    summaries: dict[int, dict[str, Any]] = {}
    started = []
    for member, run_dir, log in todo:
        try:
            started.append((member, run_dir, log, sweep_session(member.config, run_dir)))
        except Exception as err:  # this run's failure, not the group's
            traceback.print_exc()
            failed = run_dir.write_failure(f"{type(err).__name__}: {err}")
            summaries[member.index] = summarize_metrics(member.index, failed)
    if not started:
        return summaries
    try:
        results = run_all([s for *_, s in started], [d for _, d, _, _ in started],
                          [log_to(log) for _, _, log, _ in started], max_members=len(started),
                          origins=[Origin(m.invocation, m.tracking_parent) for m, *_ in started])
    except Exception as err:  # the group failed as a whole: every run in it is marked with why
        traceback.print_exc()
        for member, run_dir, _, _ in started:
            summaries[member.index] = summarize_metrics(
                member.index, run_dir.write_failure(f"{type(err).__name__} (batched group): {err}"))
        return summaries
    for i, result in results.items():
        member = started[i][0]
        summaries[member.index] = summarize_metrics(member.index, result.metrics)
    return summaries


def log_to(log: TextIO | None) -> Any:
    """Callbacks writing a member's training log to its own run.log (or stdout when not captured)."""
    from bbbrun.fit.logline import format_log_line
    from bbbrun.fit.loop import Callbacks

    def write(line: str) -> None:
        print(line, file=log, flush=True)

    return Callbacks(on_log=lambda row: write(format_log_line(row)), on_stage=write)
