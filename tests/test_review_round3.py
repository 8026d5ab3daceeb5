"""Outputs that must never replace a run's files, and messages that must say what is wrong (a new user's
review of sweeps, reports and the API)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_config
from typer.testing import CliRunner

import bbbrun
from bbbrun.cli import app
from bbbrun.errors import ConfigError
from bbbrun.sweeps.grid import parse_range


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    config = write_config(root / "tiny.yaml")
    for seed in (0, 1):
        result = CliRunner().invoke(app, ["train", str(config), f"seed={seed}", "--out", str(root / "out")])
        assert result.exit_code == 0, result.output
    return sorted((root / "out" / "tiny").iterdir())


def one_line_exit_2(args: list[str], expect: str) -> None:
    result = CliRunner().invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and expect in lines[0], lines


@pytest.mark.parametrize("victim", ["checkpoint.pt", "metrics.json", "config.yaml", "run.json", "new.html"])
@pytest.mark.parametrize("whose", ["own", "other"])
def test_a_report_never_replaces_a_runs_files(two_runs: list[Path], victim: str, whose: str) -> None:
    run = two_runs[0]
    into = run if whose == "own" else two_runs[1]
    before = {p.name: p.read_bytes() for p in into.iterdir() if p.is_file()}
    one_line_exit_2(["report", str(run), "--out", str(into / victim)], "a directory bbbrun made")
    assert {p.name: p.read_bytes() for p in into.iterdir() if p.is_file()} == before


def test_a_report_may_go_to_its_own_report_html_or_anywhere_else(two_runs: list[Path], tmp_path: Path) -> None:
    run = two_runs[0]
    for out in (run / "report.html", tmp_path / "new" / "r.html"):
        result = CliRunner().invoke(app, ["report", str(run), "--out", str(out)])
        assert result.exit_code == 0 and out.read_text().startswith("<!DOCTYPE html>"), result.output
    os.symlink(tmp_path / "elsewhere.html", tmp_path / "link.html")
    one_line_exit_2(["report", str(run), "--out", str(tmp_path / "link.html")], "is a symbolic link")
    assert not (tmp_path / "elsewhere.html").exists()


def test_compare_refuses_the_same_run_twice_and_figures_inside_a_run(two_runs: list[Path], tmp_path: Path) -> None:
    a, b = two_runs
    one_line_exit_2(["compare", str(a), str(a)], "is named twice")
    one_line_exit_2(["compare", str(a), str(b), "--out", str(b)], "a directory bbbrun made")
    one_line_exit_2(["compare", str(a), str(b), "--out", str(a / "figs")], "a directory bbbrun made")
    assert not (a / "figs").exists() and not (b / "compare_loss.png").exists()
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0 and (tmp_path / "cmp" / "compare_loss.png").is_file(), result.output


def test_load_model_takes_a_string(two_runs: list[Path]) -> None:
    trained = bbbrun.load_model(str(two_runs[0]))
    assert trained.model.in_dim == 1


@pytest.mark.parametrize(("value", "expect"), [
    ("99999999999", "more runs than one sweep takes"),
    ("10001", "more runs than one sweep takes"),
    ("0", "whole number of seeds >= 1"),
    ("x", "whole number of seeds >= 1"),
])
def test_seeds_messages_say_what_is_wrong(tiny_config: Path, value: str, expect: str) -> None:
    one_line_exit_2(["train", str(tiny_config), f"seeds={value}"], expect)


def test_range_bounds_in_exponent_notation_are_numbers() -> None:
    assert parse_range("seed", "0,3e0") == [0, 1, 2]
    with pytest.raises(ConfigError, match="has more than 10,000 values"):
        parse_range("optim.lr", "0,1e9")
    with pytest.raises(ConfigError, match="write range"):
        parse_range("seed", "0,abc")
