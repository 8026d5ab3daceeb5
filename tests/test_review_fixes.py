"""Problems a new-user review of the merged tool found, each pinned down."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.api import as_text
from bbbrun.cli import app
from bbbrun.errors import SweepFailed
from bbbrun.runs import marker
from bbbrun.runs.layout import RunDir, SweepDir
from bbbrun.sweeps.sweep import raise_for_failures, stopped_reason

cli = CliRunner()


@pytest.mark.parametrize("args", [
    ["seed=4294967296"], ["seed=9223372036854775807"], ["data.split_seed=4294967296"],
    ["seeds=2", "seed=4294967295"], ["seeds=2", "seeds=3"], ["seeds=99999999999999999999"],
])
def test_seeds_numpy_cannot_take_are_one_line_before_anything_is_made(tmp_path: Path, args: list[str]) -> None:
    config = write_config(tmp_path / "c.yaml")
    result = cli.invoke(app, ["train", str(config), *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "seed" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_stopped_sweeps_run_with_a_checkpoint_is_not_reported_as_never_run(tmp_path: Path) -> None:
    trained, untouched = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    for run in (trained, untouched):
        run.path.mkdir()
        marker.mark(run.path, marker.RUN)
    trained.checkpoint.write_bytes(b"a checkpoint")
    assert "checkpoint is kept" in stopped_reason(trained) and "--resume goes on" in stopped_reason(trained)
    assert "did not run" in stopped_reason(untouched)


def test_a_benchmark_names_its_own_resume_command(tmp_path: Path) -> None:
    records = [{"run": "000_config=yacht,data.split=0", "status": "failed", "error": "boom"}]
    with pytest.raises(SweepFailed, match="bbbrun benchmark uci --resume"):
        raise_for_failures(records, SweepDir(tmp_path), "bbbrun benchmark uci")


@pytest.mark.parametrize(("value", "text"), [(None, "null"), (True, "true"), (0.000123456789, "0.000123456789"),
                                             (3, "3"), ("relu", "relu"), ([0.8, 0.99], "[0.8, 0.99]")])
def test_python_values_become_the_overrides_they_mean(value: object, text: str) -> None:
    assert as_text(value) == text
