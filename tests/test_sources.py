"""Data from files and benchmark folders: what loads, how it splits, and every way a file can be wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.config import DataConfig, Function, Source
from bbbrun.data import make_dataset
from bbbrun.data.functions import blundell_toy, true_function
from bbbrun.errors import DataError

UCI = Path(__file__).resolve().parents[2] / "shared" / "uci"


def csv_config(path: Path, **data: object) -> DataConfig:
    return DataConfig(source=Source.CSV, path=str(path), target="y", val_fraction=0.25, **data)  # type: ignore[arg-type]


def write_table(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def plane_csv(path: Path, rows: int = 60, delimiter: str = ",") -> Path:
    rng = np.random.RandomState(0)
    lines = [delimiter.join(["a", "b", "colour", "y"])]
    for i in range(rows):
        a, b = rng.uniform(-1, 1, 2)
        colour = ("red", "green", "blue")[i % 3]
        lines.append(delimiter.join([f"{a:.4f}", f"{b:.4f}", colour, f"{2 * a - b + (colour == 'red'):.4f}"]))
    return write_table(path, "\n".join(lines) + "\n")


# ------------------------------------------------------------------ CSV


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiters_give_the_same_data(tmp_path: Path, delimiter: str) -> None:
    plain = make_dataset(csv_config(plane_csv(tmp_path / "a.csv"), categorical=("colour",)), 0)
    other = make_dataset(csv_config(plane_csv(tmp_path / "b.csv", delimiter=delimiter), categorical=("colour",)), 0)
    assert np.array_equal(plain.x_train, other.x_train) and np.array_equal(plain.y_val, other.y_val)


def test_csv_with_bom_quotes_and_column_order(tmp_path: Path) -> None:
    text = '\ufeff"y","note, quoted","b","a"\n' + "".join(f'{i * 0.5},"x, {i}",{i % 4},{i}\n' for i in range(40))
    ds = make_dataset(csv_config(write_table(tmp_path / "q.csv", text), features=("a", "b")), 0)
    assert ds.feature_names == ("a", "b") and ds.target_name == "y"
    rows = np.concatenate([ds.rows["train"], ds.rows["val"]])
    assert np.array_equal(np.sort(rows), np.arange(40))
    # Each row's inputs are its own a and b, the target its own y, whatever the split.
    for x, y in zip(ds.x_train, ds.y_train.ravel(), strict=True):
        assert y == pytest.approx(x[0] * 0.5) and x[1] == x[0] % 4


def test_csv_one_hot_uses_the_training_rows_categories(tmp_path: Path) -> None:
    ds = make_dataset(csv_config(plane_csv(tmp_path / "a.csv"), categorical=("colour",)), 0)
    assert ds.categories == {"colour": ("blue", "green", "red")}
    assert ds.x_train.shape[1] == 2 + 3 and ds.input_dim == 5
    assert np.all(ds.x_train[:, 2:].sum(axis=1) == 1)


def test_test_fraction_holds_out_disjoint_rows(tmp_path: Path) -> None:
    ds = make_dataset(csv_config(plane_csv(tmp_path / "a.csv", rows=100), categorical=("colour",),
                                 test_fraction=0.2), 0)
    assert len(ds.rows["test"]) == 20 and ds.x_test is not None and len(ds.x_test) == 20
    parts = [set(ds.rows[k]) for k in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[1]) == 20 and len(parts[0]) == 60


def test_a_constant_input_is_a_warning_not_a_division_by_zero(tmp_path: Path) -> None:
    text = "a,k,y\n" + "".join(f"{i},7,{2 * i}\n" for i in range(30))
    ds = make_dataset(csv_config(write_table(tmp_path / "k.csv", text)), 0)
    assert any("'k' is constant" in w for w in ds.warnings)


BAD_CSV = [
    ("no-header", "1,2,3\n4,5,6\n", {}, "no header row"),
    ("empty", "", {}, "is empty"),
    ("unknown-target", "a,b\n1,2\n3,4\n", {}, "no column named 'y'"),
    ("unknown-feature", "a,y\n1,2\n3,4\n", {"features": ("zz",)}, "no column named 'zz'"),
    ("text-column", "a,c,y\n1,u,2\n3,v,4\n5,w,6\n", {}, "'c' hold text"),
    ("empty-cell", "a,y\n1,2\n,4\n5,6\n", {}, "data row 2, column 'a': the cell is empty"),
    ("non-numeric-target", "a,y\n1,2\n3,x\n5,6\n", {}, "data row 2, column 'y'"),
    ("ragged-row", "a,y\n1,2\n3\n", {}, "data row 2: 1 fields"),
    ("duplicate-header", "a,a,y\n1,2,3\n", {}, "names column 'a' twice"),
    ("constant-target", "a,y\n1,5\n2,5\n3,5\n4,5\n5,5\n", {}, "constant"),
    ("too-few-rows", "a,y\n1,2\n", {}, "training rows cannot"),
    ("target-as-feature", "a,y\n1,2\n3,4\n", {"features": ("a", "y")}, "also listed in data.features"),
    ("not-utf8", "a,y\n1,2\n", {}, None),
    ("nan", "a,y\n1,2\nnan,3\n4,5\n", {}, "expected a finite number"),
    ("beyond-float32", "a,y\n1,2\n1e39,3\n4,5\n", {}, "beyond the range"),
]


@pytest.mark.parametrize(("name", "text", "extra", "expect"), BAD_CSV, ids=[b[0] for b in BAD_CSV])
def test_bad_csv_is_one_line_exit_2_and_no_run(tmp_path: Path, name: str, text: str, extra: dict,
                                               expect: str | None) -> None:
    path = tmp_path / "bad.csv"
    if name == "not-utf8":
        path.write_bytes("a,y\n1,2\n\xe9,3\n".encode("latin-1"))
        expect = "not UTF-8"
    else:
        write_table(path, text)
    overrides = ["data.source=csv", f"data.path={path}", "data.target=y"]
    overrides += [f"data.{k}=[{','.join(v)}]" for k, v in extra.items()]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), *overrides, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], lines
    assert not out.exists()


def test_missing_path_and_directory_are_one_line(tmp_path: Path) -> None:
    for path, expect in ((tmp_path / "nope.csv", "not found"), (tmp_path, "is a directory")):
        result = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=csv",
                                          f"data.path={path}", "data.target=y", "--out", str(tmp_path / "o")])
        assert result.exit_code == 2 and expect in result.stderr
    no_target = CliRunner().invoke(app, ["train", str(write_config(tmp_path / "c.yaml")), "data.source=csv",
                                         f"data.path={tmp_path / 'x.csv'}"])
    assert no_target.exit_code == 2 and "needs data.target" in no_target.stderr


def test_a_csv_run_records_its_splits_and_scores_test_rows(tmp_path: Path) -> None:
    data = plane_csv(tmp_path / "a.csv", rows=120)
    config = write_config(tmp_path / "c.yaml", model={"likelihood": "learned"}, data={"standardize": True})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}",
                                      "data.target=y", "data.categorical=[colour]", "data.test_fraction=0.25",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    splits = json.loads((run_dir / "splits.json").read_text())
    assert len(splits["test"]) == 30 and len(splits["train"]) + len(splits["val"]) == 90
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test_rmse", "test_nll", "val_rmse", "val_nll"} <= set(metrics)
    assert "val_rmse_true" not in metrics and "test_rmse_true" not in metrics
    resolved = (run_dir / "config.yaml").read_text()
    assert f"path: {data}" in resolved  # absolute, so the run finds its data from anywhere


# ------------------------------------------------------------------ NPZ


@pytest.mark.parametrize(("x_shape", "y_shape"), [((50,), (50,)), ((50, 3), (50, 1)), ((50, 2), (50,))])
def test_npz_shapes(tmp_path: Path, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=x_shape), y=rng.normal(size=y_shape))
    ds = make_dataset(DataConfig(source=Source.NPZ, path=str(tmp_path / "d.npz")), 0)
    width = 1 if len(x_shape) == 1 else x_shape[1]
    assert ds.input_dim == width and ds.y_train.shape[1] == 1 and len(ds.y_train) + len(ds.y_val) == 50
    assert ds.feature_names == tuple(f"x{j}" for j in range(width))


@pytest.mark.parametrize(("arrays", "expect"), [
    ({"x": np.zeros((5, 2))}, "no array 'y'"),
    ({"x": np.zeros((5, 2)), "y": np.zeros(4)}, "same n"),
    ({"x": np.array([["a", "b"]] * 5), "y": np.zeros(5)}, "numeric"),
    ({"x": np.array([1.0, np.inf, 2, 3, 4]), "y": np.arange(5.0)}, "inputs must be finite"),
    ({"x": np.array([object()] * 5), "y": np.zeros(5)}, "pickled Python objects, which bbbrun never loads"),
    ({"x": np.zeros((5, 0)), "y": np.zeros(5)}, "d > 0"),
    ({"x": np.array([1.0, 1e39, 2, 3, 4]), "y": np.arange(5.0)}, "not finite in float32"),
])
def test_bad_npz_is_refused(tmp_path: Path, arrays: dict, expect: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=expect):
        make_dataset(DataConfig(source=Source.NPZ, path=str(tmp_path / "d.npz")), 0)


def test_a_file_that_is_not_npz_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_text("not a zip")
    np.save(tmp_path / "a.npy", np.zeros((5, 2)))
    for path in (tmp_path / "d.npz", tmp_path / "a.npy"):
        with pytest.raises(DataError, match="is not an NPZ file"):
            make_dataset(DataConfig(source=Source.NPZ, path=str(path)), 0)


# ------------------------------------------------------------------ UCI folders


def uci_config(folder: Path, split: int = 0) -> DataConfig:
    return DataConfig(source=Source.UCI, path=str(folder), split=split)


@pytest.mark.skipif(not (UCI / "yacht").is_dir(), reason="../shared/uci is not beside this checkout")
def test_a_uci_split_is_its_index_files(tmp_path: Path) -> None:
    ds = make_dataset(uci_config(UCI / "yacht", split=2), 0)
    test_rows = np.loadtxt(UCI / "yacht" / "index_test_2.txt", dtype=int)
    assert np.array_equal(ds.rows["test"], np.sort(test_rows))
    assert len(ds.rows["train"]) + len(ds.rows["val"]) == 308 - len(test_rows)
    table = np.loadtxt(UCI / "yacht" / "data.txt")
    assert np.allclose(ds.y_test.ravel(), table[np.sort(test_rows), -1])  # type: ignore[union-attr]
    assert ds.input_dim == 6


def small_uci(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.RandomState(0)
    np.savetxt(folder / "data.txt", rng.normal(size=(20, 4)))
    (folder / "index_features.txt").write_text("0\n1\n2\n")
    (folder / "index_target.txt").write_text("3\n")
    (folder / "index_train_0.txt").write_text("\n".join(map(str, range(16))) + "\n")
    (folder / "index_test_0.txt").write_text("\n".join(map(str, range(16, 20))) + "\n")
    return folder


@pytest.mark.parametrize(("breakage", "expect"), [
    (lambda f: (f / "data.txt").unlink(), "has no data.txt"),
    (lambda f: (f / "index_target.txt").unlink(), "has no index_target.txt"),
    (lambda f: (f / "index_test_0.txt").write_text("16\n17\n99\n"), "out of range"),
    (lambda f: (f / "index_test_0.txt").write_text("16\n16\n"), "twice"),
    (lambda f: (f / "index_test_0.txt").write_text("15\n16\n"), "overlap"),
    (lambda f: (f / "index_features.txt").write_text("0\n3\n"), "also an input"),
    (lambda f: (f / "index_train_0.txt").write_text("1.5\n"), "whole number"),
    (lambda f: (f / "data.txt").write_text("1 2 x 4\n"), "not a table of numbers"),
])
def test_broken_uci_folders_are_refused(tmp_path: Path, breakage: object, expect: str) -> None:
    folder = small_uci(tmp_path / "set")
    breakage(folder)  # type: ignore[operator]
    with pytest.raises(DataError, match=expect):
        make_dataset(uci_config(folder), 0)


def test_a_split_past_the_last_is_refused(tmp_path: Path) -> None:
    folder = small_uci(tmp_path / "set")
    with pytest.raises(DataError, match="has 1 splits"):
        make_dataset(uci_config(folder, split=1), 0)
    shutil.rmtree(folder)
    with pytest.raises(DataError, match="not a folder"):
        make_dataset(uci_config(folder), 0)


# ------------------------------------------------------------------ Blundell's toy


def test_blundell_toy_is_the_papers_formula() -> None:
    cfg = DataConfig(function=Function.BLUNDELL_TOY, num_points=2000, x_min=0.0, x_max=0.5, noise_std=0.02)
    ds = make_dataset(cfg, 0)
    x = np.concatenate([ds.x_train, ds.x_val]).ravel()
    assert x.min() >= 0.0 and x.max() <= 0.5 and 0.2 < x.mean() < 0.3  # uniform on [0, 0.5]
    xs = np.array([0.0, 0.1, 0.25])
    expected = xs + 0.3 * np.sin(2 * np.pi * xs) + 0.3 * np.sin(4 * np.pi * xs)
    assert np.allclose(true_function(Function.BLUNDELL_TOY, xs), expected)
    assert blundell_toy(np.array([0.1]), np.array([0.01]))[0] == pytest.approx(
        0.1 + 0.3 * np.sin(2 * np.pi * 0.11) + 0.3 * np.sin(4 * np.pi * 0.11) + 0.01)
    residual = np.concatenate([ds.y_train - ds.f_train, ds.y_val - ds.f_val]).ravel()  # type: ignore[operator]
    assert 0.02 < residual.std() < 0.1  # the noise also moves the sines' phase
