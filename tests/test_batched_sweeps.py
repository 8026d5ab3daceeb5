"""Sweeps, benchmarks and `train seeds=K` train batchable runs as groups; each run keeps its own directory."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY, write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.config import config_from_dict, config_to_dict, load_config
from bbbrun.fit.loop import Callbacks
from bbbrun.runs import runner as run_runner
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import start_session
from bbbrun.sweeps.batching import batch_jobs, group_key
from bbbrun.sweeps.executors import RunJob

cli = CliRunner()
RUN_FILES = ("config.yaml", "checkpoint.pt", "history.csv", "metrics.json", "val.png", "train.png", "run.log",
             "run.json")


def tiny_dict(**changes: Any) -> dict[str, Any]:
    raw = config_to_dict(config_from_dict(TINY))
    for dotted, value in changes.items():
        section, _, key = dotted.partition(".")
        if key:
            raw[section][key] = value
        else:
            raw[dotted] = value
    return raw


def job(index: int, **changes: Any) -> RunJob:
    return RunJob(index, f"/tmp/run{index}", tiny_dict(**changes))


def test_runs_differing_only_in_member_settings_share_a_group() -> None:
    same = [job(0), job(1, seed=3), job(2, **{"optim.lr": 0.1, "model.prior_std": 0.5}),
            job(3, **{"data.num_points": 500, "train.kl_weighting": "blundell", "name": "other"})]
    apart = [job(4, **{"model.hidden_dim": 9}), job(5, **{"train.batch_size": 50}),
             job(6, **{"model.likelihood": "learned"}), job(7, **{"optim.betas": [0.8, 0.9]})]
    assert len({group_key(j.config) for j in same}) == 1
    assert len({group_key(j.config) for j in same + apart}) == 5
    batched = batch_jobs(same + apart, max_members=64, workers=1)
    assert [j.index for j in batched] == [0, 4, 5, 6, 7]
    assert [m.index for m in batched[0].members] == [0, 1, 2, 3] and not batched[1].members
    # --batch-members caps a group; --no-batch (1) leaves every run alone.
    assert [len(j.members) for j in batch_jobs(same, max_members=3, workers=1)] == [3, 0]
    assert batch_jobs(same, max_members=1, workers=1) == same
    # Fewer groups than workers: a group is split so that every worker has one.
    assert [len(j.members) for j in batch_jobs(same, max_members=64, workers=2)] == [2, 2]


def read_metrics(root: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads((p / "metrics.json").read_text()) for p in sorted(root.iterdir()) if p.is_dir()}


def only_root(out: Path, kind: str) -> Path:
    (root,) = (out / kind).glob("*/*")
    return root


def test_a_batched_sweep_gives_each_run_what_it_gets_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    runs = {}
    for flag in ("--batch-members", "--no-batch"):
        out = tmp_path / flag.strip("-")
        args = ["sweep", str(config), "seed=0,1,2", "optim.lr=0.01,0.03", "--executor", "serial", "--out", str(out)]
        result = cli.invoke(app, [*args, *(["--batch-members", "4"] if flag == "--batch-members" else [flag])])
        assert result.exit_code == 0, result.output
        runs[flag] = read_metrics(only_root(out, "sweeps"))
    batched, alone = runs["--batch-members"], runs["--no-batch"]
    assert list(batched) == list(alone) and len(batched) == 6
    for name, metrics in batched.items():
        assert metrics["status"] == "completed"
        # float32: the batched products round differently, nothing more.
        for key in ("val_nll", "val_rmse", "train_rmse"):
            assert metrics[key] == pytest.approx(alone[name][key], rel=2e-3), (name, key)
    root = only_root(tmp_path / "batch-members", "sweeps")
    for run in (p for p in root.iterdir() if p.is_dir()):
        assert all((run / f).is_file() for f in RUN_FILES), run
        assert "epoch" in (run / "run.log").read_text()
        assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_a_diverging_member_fails_alone_and_the_sweep_names_it(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", model={**TINY["model"], "likelihood": "learned"})
    out = tmp_path / "out"
    result = cli.invoke(app, ["sweep", str(config), "optim.lr=0.01,1e12", "seed=0,1", "--executor", "serial",
                              "--out", str(out)])
    assert result.exit_code == 1
    with (only_root(out, "sweeps") / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    status = {r["run"]: r["status"] for r in rows}
    assert sorted(status.values()) == ["completed", "completed", "failed", "failed"]
    assert all(s == "failed" for name, s in status.items() if "1e+12" in name or "1e12" in name), status
    errors = {r["run"]: r["error"] for r in rows if r["status"] == "failed"}
    assert all("NaN or infinite" in e for e in errors.values()), errors
    assert "2 of 4 runs failed" in result.stderr


def test_train_seeds_trains_k_seeds_and_reports_mean_and_standard_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", seed=7)
    out = tmp_path / "out"
    result = cli.invoke(app, ["train", str(config), "seeds=3", "train.epochs=20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = only_root(out, "seeds")
    runs = read_metrics(root)
    assert [json.loads(json.dumps(m))["status"] for m in runs.values()] == ["completed"] * 3
    seeds = sorted(load_config(root / name / "config.yaml").seed for name in runs)
    assert seeds == [7, 8, 9]
    assert "mean ± standard error across seeds" in result.output
    settings = json.loads((root / "summary.json").read_text())["settings"]
    values = [m["val_nll"] for m in runs.values()]
    mean = sum(values) / 3
    se = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5 / 3**0.5
    assert settings[0]["val_nll_mean"] == pytest.approx(mean) and settings[0]["val_nll_se"] == pytest.approx(se)


@pytest.mark.parametrize("bad", ["seeds=0", "seeds=-2", "seeds=two", "seeds=1.5", "seeds="])
def test_a_bad_seed_count_is_one_line(tmp_path: Path, bad: str) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = cli.invoke(app, ["train", str(config), bad, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "seeds" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_resumed_sweep_continues_an_interrupted_run_from_its_checkpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", train={**TINY["train"], "epochs": 40})
    out = tmp_path / "out"
    result = cli.invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "serial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = only_root(out, "sweeps")
    first, second = sorted(p for p in root.iterdir() if p.is_dir())
    finished = {p: torch.load(p / "checkpoint.pt", weights_only=True)["model"]["mu"] for p in (first, second)}
    # Both runs stopped by their user at epoch 20, as a Ctrl-C in the sweep would leave them.
    for run in (first, second):
        session = start_session(load_config(run / "config.yaml"))
        stop = Callbacks(should_stop=lambda s=session: 2 if s.state.epoch >= 20 else None)
        assert run_runner.run_training(session, RunDir(run), stop).status == "interrupted"
    earlier = (first / "run.log").read_text()
    result = cli.invoke(app, ["sweep", "--resume", str(root), "--executor", "serial"])
    assert result.exit_code == 0, result.output
    assert (first / "run.log").read_text().startswith(earlier)  # the resumed session's lines come after
    for run in (first, second):
        payload = torch.load(run / "checkpoint.pt", weights_only=True)
        assert payload["epoch"] == 40 and [r["epoch"] for r in payload["history"]] == [10, 20, 30, 40]
        torch.testing.assert_close(payload["model"]["mu"], finished[run], rtol=0, atol=1e-6)
