"""`bbbrun runs`: every run under a root, newest first, filtered, as a table or JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.runs.catalog import Filter, list_runs


def runs_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["runs", *args])
    return result.exit_code, result.stdout, result.stderr


def test_runs_lists_every_run_newest_first_with_its_metrics(two_runs: list[Path]) -> None:
    root = two_runs[0].parent.parent
    code, out, _ = runs_cli(str(root), "--json")
    assert code == 0
    records = json.loads(out)
    assert [r["directory"] for r in records] == [str(two_runs[1]), str(two_runs[0])]
    metrics = json.loads((two_runs[1] / "metrics.json").read_text())
    newest = records[0]
    assert newest["status"] == "completed" and newest["epochs"] == 30 and newest["name"] == "tiny"
    assert newest["val_rmse"] == metrics["val_rmse"] and newest["model.hidden_dim"] == 16


def test_runs_table_shows_name_status_metrics_and_directory(two_runs: list[Path]) -> None:
    code, out, _ = runs_cli(str(two_runs[0].parent.parent))
    assert code == 0
    for text in ("2 runs under", "name", "status", "val_rmse", "val_coverage_90", "completed", two_runs[0].name,
                 two_runs[1].name):
        assert text in out, text
    assert out.index(two_runs[1].name) < out.index(two_runs[0].name)  # newest first


def test_filter_matches_config_keys_metrics_and_status(two_runs: list[Path]) -> None:
    root = two_runs[0].parent.parent
    assert [r["directory"] for r in list_runs(root, [Filter.parse("model.hidden_dim=8")])] == [str(two_runs[0])]
    assert len(list_runs(root, [Filter.parse("status=completed"), Filter.parse("optim.lr=1e-2")])) == 2
    assert list_runs(root, [Filter.parse("status=failed")]) == []
    code, out, _ = runs_cli(str(root), "--filter", "model.hidden_dim=16", "--json")
    assert code == 0 and [r["directory"] for r in json.loads(out)] == [str(two_runs[1])]


def test_a_run_without_run_json_is_still_listed_from_its_metrics(two_runs: list[Path], tmp_path: Path) -> None:
    old = tmp_path / "tiny" / "old"
    shutil.copytree(two_runs[0], old)
    (old / "run.json").unlink()
    (record,) = list_runs(tmp_path)
    assert record["status"] == "completed" and record["directory"] == str(old)


def test_bad_root_and_bad_filter_are_one_line_errors(tmp_path: Path) -> None:
    code, _, err = runs_cli(str(tmp_path / "missing"))
    assert code == 2 and "is not a directory" in err and len(err.strip().splitlines()) == 1
    code, _, err = runs_cli(str(tmp_path), "--filter", "status")
    assert code == 2 and "key=value" in err


def test_a_run_whose_process_was_killed_outright_says_so(two_runs: list[Path], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    killed = tmp_path / "tiny" / "killed"
    shutil.copytree(two_runs[0], killed)
    (killed / "metrics.json").unlink()
    record = json.loads((killed / "run.json").read_text())
    record.update(status="running", pid=int(done.stdout), ended_at=None)  # a process that has exited
    (killed / "run.json").write_text(json.dumps(record))
    (listed,) = list_runs(tmp_path)
    assert listed["status"] == "running (process gone)"
    record["pid"] = os.getpid()  # alive: this test's own process
    (killed / "run.json").write_text(json.dumps(record))
    assert list_runs(tmp_path)[0]["status"] == "running"
