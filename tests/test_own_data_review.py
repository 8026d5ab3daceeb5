"""Own-data paths a new user's review found wanting: lost split files, typos in number columns,
keys that a source would silently ignore, empty categories, plots of models with several inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_config
from test_benchmark import FAST, run_benchmark, toy_folder
from test_sources import plane_csv, small_uci, uci_config, write_table
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.data import make_dataset
from bbbrun.errors import DataError


def one_line_exit_2(result: object, expect: str) -> None:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert len(lines) == 1 and expect in lines[0], lines


# ------------------------------------------------------------------ benchmark folders with a lost file


@pytest.mark.parametrize("lost", ["index_test_1.txt", "index_train_1.txt", "index_test_0.txt"])
@pytest.mark.parametrize("declared", [True, False])
def test_a_lost_split_file_is_an_error_not_fewer_splits(tmp_path: Path, lost: str, declared: bool) -> None:
    folder = toy_folder(tmp_path / "toyset", splits=3)
    if declared:
        (folder / "n_splits.txt").write_text("3\n")
    (folder / lost).unlink()
    code, _, err = run_benchmark([str(folder), *FAST, "--out", str(tmp_path / "out")])
    assert code == 2 and f"has no {lost}" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match=f"has no {lost}"):
        make_dataset(uci_config(folder, split=2), 0)


def test_n_splits_must_be_a_number_and_bounds_the_splits(tmp_path: Path) -> None:
    folder = small_uci(tmp_path / "set")
    (folder / "n_splits.txt").write_text("two\n")
    with pytest.raises(DataError, match="must hold one whole number"):
        make_dataset(uci_config(folder), 0)
    (folder / "n_splits.txt").write_text("1\n")
    (folder / "index_train_7.txt").write_text("0\n")  # a stray file past n_splits is not a split
    with pytest.raises(DataError, match="has 1 splits"):
        make_dataset(uci_config(folder, split=7), 0)
    assert len(make_dataset(uci_config(folder), 0).rows["test"]) == 4


# ------------------------------------------------------------------ CSV cells and keys


@pytest.mark.parametrize(("text", "expect"), [
    ("a,c,y\n1,2,2\n3,abc,4\n5,6,6\n7,8,1\n", "data row 2, column 'c': expected a finite number, got 'abc'"),
    ("a,c,y\n1,2,2\n3,4,4\n5,6,6\n7,1..5,1\n", "data row 4, column 'c'"),
    ("a,c,y\n1,u,2\n3,v,4\n5,6,6\n", "'c' hold text"),  # mostly words: a text column, the categorical hint
])
def test_a_typo_in_a_number_column_names_its_cell(tmp_path: Path, text: str, expect: str) -> None:
    path = write_table(tmp_path / "t.csv", text)
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=csv",
                                      f"data.path={path}", "data.target=y", "--out", str(tmp_path / "out")])
    one_line_exit_2(result, expect)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("overrides", "expect"), [
    (["data.categorical=[y]"], "data.target 'y' is listed in data.categorical"),
    (["data.categorical=[nothing]"], "no column named 'nothing'"),
    (["data.features=[a,b]", "data.categorical=[colour]"], "data.categorical names 'colour', which is not an input"),
])
def test_categorical_must_name_inputs(tmp_path: Path, overrides: list[str], expect: str) -> None:
    path = plane_csv(tmp_path / "p.csv")
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=csv",
                                      f"data.path={path}", "data.target=y", *overrides, "--out", str(tmp_path / "o")])
    one_line_exit_2(result, expect)


def test_an_empty_category_is_refused_like_an_empty_number(tmp_path: Path) -> None:
    lines = plane_csv(tmp_path / "p.csv").read_text().splitlines()
    cells = lines[5].split(",")
    lines[5] = ",".join([cells[0], cells[1], "", cells[3]])
    path = write_table(tmp_path / "p.csv", "\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=csv",
                                      f"data.path={path}", "data.target=y", "data.categorical=[colour]",
                                      "--out", str(tmp_path / "o")])
    one_line_exit_2(result, "data row 5, column 'colour': the cell is empty")


@pytest.mark.parametrize("source", ["npz", "uci", "function"])
@pytest.mark.parametrize("key", ["data.target=y", "data.features=[a]", "data.categorical=[a]"])
def test_csv_column_keys_with_another_source_are_refused(tmp_path: Path, source: str, key: str) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 2)), y=np.arange(20.0))
    path = {"npz": [f"data.path={tmp_path / 'd.npz'}"], "uci": [f"data.path={tmp_path}"], "function": []}[source]
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), f"data.source={source}",
                                      *path, key, "--out", str(tmp_path / "o")])
    one_line_exit_2(result, "applies only to data.source=csv")
    assert not (tmp_path / "o").exists()


def test_a_csv_given_as_npz_says_what_it_is(tmp_path: Path) -> None:
    path = plane_csv(tmp_path / "p.csv")
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=npz",
                                      f"data.path={path}", "--out", str(tmp_path / "o")])
    one_line_exit_2(result, "is not an NPZ file (a zip archive of arrays")


def test_a_csv_config_benchmarks_a_folder(tmp_path: Path) -> None:
    """A CSV config's column names mean nothing to a benchmark folder, which names its own columns."""
    config = write_config(tmp_path / "c.yaml", data={"source": "csv", "path": "x.csv", "target": "price",
                                                     "categorical": ["district"]})
    result = CliRunner().invoke(app, ["benchmark", "uci", str(toy_folder(tmp_path / "toyset")), "--config",
                                      str(config), "--splits", "1", *FAST, "--executor", "serial",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ plot and predict with several inputs


@pytest.fixture(scope="module")
def plane_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("plane")
    data = plane_csv(root / "p.csv", rows=80)
    config = write_config(root / "c.yaml", model={"likelihood": "learned"}, predict={"num_samples": 20})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=y",
                                      "data.categorical=[colour]", "data.test_fraction=0.25",
                                      "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    assert "val_rmse" in result.output and "test_rmse" in result.output  # the last line shows held-out rows too
    (run_dir,) = (root / "out" / "tiny").iterdir()
    return run_dir, data


def test_plot_redraws_the_figures_of_a_model_of_several_inputs(plane_run: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    run_dir, _ = plane_run
    result = CliRunner().invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert names == {f"{s}_{k}.png" for s in ("val", "test") for k in ("predicted", "errors", "pit", "calibration")}
    for path in (tmp_path / "figs").iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    bands = CliRunner().invoke(app, ["plot", str(run_dir), "--x-min", "0", "--x-max", "1"])
    one_line_exit_2(bands, "--x-min/--x-max draw bands over one input")


def test_predict_names_a_missing_input_as_an_input(plane_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, data = plane_run
    lines = data.read_text().splitlines()
    without_b = "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != 1) for line in lines) + "\n"
    path = write_table(tmp_path / "no_b.csv", without_b)
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(path)])
    one_line_exit_2(result, "has no column named 'b' (an input the model was trained on)")
    no_target = write_table(tmp_path / "no_y.csv", "\n".join(",".join(line.split(",")[:3]) for line in lines) + "\n")
    predicted = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(no_target)])
    assert predicted.exit_code == 0, predicted.output  # predicting needs no target
    scored = CliRunner().invoke(app, ["evaluate", str(run_dir), "--input", str(no_target)])
    one_line_exit_2(scored, "has no column named 'y' (the target, which scoring needs)")
    assert json.loads((run_dir / "metrics.json").read_text())["test_rmse"] > 0
