"""bbbrun sweep: the grid grammar, failures that do not stop a sweep, resume (real clusters: test_dask, test_slurm)."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest
import yaml
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.errors import ConfigError
from bbbrun.sweeps.grid import SweepPlan, expand, parse_sweep_override, read_spec
from bbbrun.sweeps.ranking import Goal, Metric
from bbbrun.sweeps.summary import group_by_setting, rank

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def sweep_root(out: Path) -> Path:
    (root,) = (out / "sweeps").glob("*/*")
    return root


def summary_rows(root: Path) -> dict[str, dict[str, str]]:
    with (root / "summary.csv").open() as handle:
        return {row["run"]: row for row in csv.DictReader(handle)}


# ------------------------------------------------------------- the grammar


@pytest.mark.parametrize(("item", "values"), [
    ("optim.lr=0.01,0.003", (0.01, 0.003)),
    ("seed=range(0,4)", (0, 1, 2, 3)),
    ("seed=range(3)", (0, 1, 2)),
    ("optim.lr=range(0.1, 0.4, 0.1)", (0.1, 0.2, 0.3)),
    ("train.batch_size=null,1000", (None, 1000)),
    ("predict.interval=[0.05,0.95],[0.1,0.9]", ([0.05, 0.95], [0.1, 0.9])),
])
def test_swept_values_parse_as_yaml(item: str, values: tuple) -> None:
    key, _, axis = parse_sweep_override(item)
    assert axis is not None and axis.key == key == item.partition("=")[0]
    assert axis.values == values


def test_plain_override_fixes_a_key_even_with_commas_inside_brackets() -> None:
    assert parse_sweep_override("predict.interval=[0.05,0.95]") == ("predict.interval", [0.05, 0.95], None)
    assert parse_sweep_override("train.epochs=7") == ("train.epochs", 7, None)


@pytest.mark.parametrize("item", ["seed=range(a,b)", "seed=range(4,0)", "seed=range(0,4,0)"])
def test_bad_range_is_a_config_error(item: str) -> None:
    with pytest.raises(ConfigError, match="range"):
        parse_sweep_override(item)


@pytest.mark.parametrize(("overrides", "message"), [
    (["optim.lr=0.01,0.03", "optim.lr=0.1,0.2"], "optim.lr is given twice"),
    (["optim.lr=0.1", "optim.lr=0.2,0.3"], "optim.lr is given twice"),
    (["optim.lr=0.01,,0.03"], "value 2 is empty"),
    (["optim.lr=0.01,"], "value 2 is empty"),
    (["optim.lr=0.01,0.01"], "optim.lr sweeps 0.01 twice"),
    (["optim.lr=0.01,1e-2"], "optim.lr sweeps 1e-2 twice"),
    (["predict.interval=[0.1,0.9],[0.1,0.9]"], "predict.interval sweeps"),
])
def test_a_grid_mistake_is_one_line_before_anything_is_created(tmp_path: Path, overrides: list[str],
                                                               message: str) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = runner.invoke(app, ["sweep", str(config), *overrides, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_sweep_file_axis_with_a_repeated_value_is_refused(tmp_path: Path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"config": str(write_config(tmp_path / "c.yaml")),
                                     "parameters": {"seed": {"values": [0, 1, 0]}}}))
    with pytest.raises(ConfigError, match=r"parameters\.seed sweeps 0 twice"):
        read_spec([sweep], [])


def test_grid_is_the_cartesian_product_with_configs_first(tmp_path: Path) -> None:
    a = write_config(tmp_path / "a.yaml", name="a")
    b = write_config(tmp_path / "b.yaml", name="b")
    plan = expand(read_spec([a, b], ["optim.lr=0.01,0.003", "seed=range(0,2)", "train.epochs=7"]))
    assert plan.swept_keys == ["config", "optim.lr", "seed"]
    assert len(plan.runs) == 2 * 2 * 2
    assert [r.swept for r in plan.runs[:3]] == [
        {"config": "a", "optim.lr": 0.01, "seed": 0}, {"config": "a", "optim.lr": 0.01, "seed": 1},
        {"config": "a", "optim.lr": 0.003, "seed": 0}]
    assert all(r.config["train"]["epochs"] == 7 for r in plan.runs)
    assert [r.config["name"] for r in plan.runs] == ["a"] * 4 + ["b"] * 4
    assert plan.runs[5].dir_name == "005_config=b,optim.lr=0.01,seed=1"


def test_invalid_combination_is_planned_as_failed_and_a_typo_stops_everything(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", model={"prior": "scale_mixture", "sigma_1": 1.0})
    plan = expand(read_spec([config], ["model.sigma_2=0.01,2"]))
    assert [r.error is None for r in plan.runs] == [True, False]
    assert "sigma_2 must be < model.sigma_1" in (plan.runs[1].error or "")
    with pytest.raises(ConfigError, match="did you mean 'optim'"):
        expand(read_spec([config], ["optm.lr=0.1,0.2"]))
    with pytest.raises(ConfigError, match="no run of this sweep is valid"):
        expand(read_spec([config], ["model.sigma_2=2,3"]))


def test_shipped_prior_grid_is_the_papers_grid() -> None:
    plan = expand(read_spec([REPO / "sweeps" / "prior_grid.yaml"], []))
    assert plan.metric == Metric("val_nll", Goal.MINIMIZE)
    assert len(plan.runs) == 27 and all(r.error is None for r in plan.runs)
    grid = {key: sorted({r.swept[key] for r in plan.runs}) for key in plan.swept_keys}
    assert grid["model.mixture_weight"] == [0.25, 0.5, 0.75]
    assert grid["model.sigma_1"] == pytest.approx(sorted(math.exp(-k) for k in (0, 1, 2)), rel=1e-6)
    assert grid["model.sigma_2"] == pytest.approx(sorted(math.exp(-k) for k in (6, 7, 8)), rel=1e-4)
    assert all(r.config["model"]["prior"] == "scale_mixture" for r in plan.runs)


def test_command_line_overrides_a_sweep_file_axis(tmp_path: Path) -> None:
    plan = expand(read_spec([REPO / "sweeps" / "prior_grid.yaml"], ["model.sigma_1=1.0", "seed=0,1"]))
    assert plan.swept_keys == ["model.mixture_weight", "model.sigma_2", "seed"]
    assert len(plan.runs) == 3 * 3 * 2


def test_ranking_and_seed_statistics() -> None:
    plan = SweepPlan("s", ["optim.lr", "seed"], [], Metric("val_nll", Goal.MAXIMIZE))
    records = [
        {"index": 0, "optim.lr": 0.1, "seed": 0, "status": "completed", "val_nll": 1.0},
        {"index": 1, "optim.lr": 0.1, "seed": 1, "status": "completed", "val_nll": 3.0},
        {"index": 2, "optim.lr": 0.2, "seed": 0, "status": "failed", "error": "boom"},
        {"index": 3, "optim.lr": 0.2, "seed": 1, "status": "completed", "val_nll": 2.5},
    ]
    assert [r["index"] for r in rank(records, plan)] == [1, 3, 0, 2]  # maximize; failed last
    best, other = group_by_setting(records, plan)  # means over the completed seeds: 2.5 and (1 + 3) / 2
    assert (best["optim.lr"], best["runs"], best["completed"], best["val_nll_mean"]) == ("0.2", 2, 1, 2.5)
    assert best["val_nll_std"] is None
    assert (other["optim.lr"], other["val_nll_mean"], other["val_nll_std"]) == ("0.1", 2.0, math.sqrt(2.0))


def test_dry_run_lists_runs_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = runner.invoke(app, ["sweep", str(config), "optim.lr=0.01,0.003", "seed=range(0,2)", "--dry-run",
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 + 4 and lines[-1] == "003  optim.lr=0.003 seed=1"
    assert not (tmp_path / "out").exists()


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sweep", str(tmp_path / "missing.yaml"), "--dry-run"])
    assert result.exit_code == 2 and "config file not found" in result.stderr
    config = write_config(tmp_path / "c.yaml")
    result = runner.invoke(app, ["sweep", str(config), "--executor", "dask", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--scheduler" in result.stderr and "Traceback" not in result.output


# ------------------------------------------------------------- running


def test_local_sweep_finishes_the_others_when_runs_fail(tmp_path: Path) -> None:
    """One run fails at start (no cuda:99), one is an invalid combination; the rest finish and rank."""
    config = write_config(tmp_path / "c.yaml", model={"prior": "scale_mixture", "sigma_1": 1.0})
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(config), "device=cpu,cuda:99", "model.sigma_2=0.01,2", "seed=0,1",
                                 "--workers", "2", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "6 of 8 runs failed" in result.stderr and "001_device=cpu,model.sigma_2=0.01,seed=1" not in result.stderr
    root = sweep_root(out)
    rows = summary_rows(root)
    assert [r["status"] for r in rows.values()] == ["completed"] * 2 + ["failed"] * 6
    assert "cuda" in rows["004_device=cuda_99,model.sigma_2=0.01,seed=0"]["error"].lower()
    assert "sigma_2 must be <" in rows["002_device=cpu,model.sigma_2=2,seed=0"]["error"]
    for name in ("config.yaml", "checkpoint.pt", "history.csv", "metrics.json", "val.png"):
        assert (root / "000_device=cpu,model.sigma_2=0.01,seed=0" / name).is_file()
    assert {"sweep.yaml", "summary.csv", "summary.json", "comparison.png"} <= {p.name for p in root.iterdir()}
    # The seed statistics agree with the runs' own metrics.json files.
    nll = [json.loads((root / n / "metrics.json").read_text())["val_nll"] for n in list(rows)[:2]]
    settings = json.loads((root / "summary.json").read_text())["settings"]
    assert settings[0]["val_nll_mean"] == pytest.approx(statistics.fmean(nll))
    assert settings[0]["val_nll_std"] == pytest.approx(statistics.stdev(nll))
    assert "mean ± standard error across seeds" in result.output


def test_resume_reruns_only_what_did_not_complete(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(config), "seed=0,1", "--executor", "serial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = sweep_root(out)
    first, second = sorted(p for p in root.iterdir() if p.is_dir())
    (second / "metrics.json").unlink()  # as if killed mid-run
    stamps = {p: p.joinpath("checkpoint.pt").stat().st_mtime_ns for p in (first, second)}
    result = runner.invoke(app, ["sweep", "--resume", str(root), "--executor", "serial"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines() if line.startswith("done")] == [
        f"done    {second.name}"]
    assert first.joinpath("checkpoint.pt").stat().st_mtime_ns == stamps[first]
    assert second.joinpath("checkpoint.pt").stat().st_mtime_ns != stamps[second]
    assert [r["status"] for r in summary_rows(root).values()] == ["completed"] * 2


# ------------------------------------------------------------- clusters


def test_slurm_executor_through_submitit_local(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    sweep_file = tmp_path / "grid.yaml"
    write_config(tmp_path / "c.yaml")
    sweep_file.write_text(yaml.safe_dump({
        "name": "slurmy", "config": "c.yaml", "parameters": {"seed": {"values": [3]}},
        "metric": {"name": "val_rmse", "goal": "minimize"}, "slurm": {"cluster": "local", "time_min": 5},
    }))
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(sweep_file), "--executor", "slurm", "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = sweep_root(out)
    assert root.parent.name == "slurmy"
    assert [r["status"] for r in summary_rows(root).values()] == ["completed"]
    assert any((root / "slurm").iterdir())  # submitit's job files and logs


def test_train_seeds_from_a_given_seed_is_not_a_key_given_twice(tmp_path: Path) -> None:
    from bbbrun.sweeps.sweep import plan_from_args, seeds_request

    config = write_config(tmp_path / "c.yaml")
    request = seeds_request(config, ["seed=5", "optim.lr=0.02"], 2, 5)
    plan = plan_from_args(list(request.sources))
    assert [(r.swept["seed"], r.config["optim"]["lr"]) for r in plan.runs] == [(5, 0.02), (6, 0.02)]
