"""Requests for more memory or time than is sane are refused before allocation, naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from refusal import refused, refused_in_child, train_tiny, tree
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.data.table import MAX_TABLE_BYTES

CONFIG_LIMITS = [
    ("hidden-dim", ["model.hidden_dim=90000"], ["model.hidden_dim", "GiB"]),
    ("layers-and-width", ["model.hidden_dim=20000", "model.num_layers=200"], ["model.hidden_dim", "GiB"]),
    ("width-bound", ["model.hidden_dim=1000000"], ["model.hidden_dim", "<="]),
    ("samples", ["model.hidden_dim=1000", "predict.num_samples=9000000"], ["predict.num_samples", "GiB"]),
    ("num-points", ["data.num_points=900000000"], ["data.num_points", "GiB"]),
    ("activations", ["data.num_points=100000000", "model.hidden_dim=5000"], ["memory"]),
    ("time", ["model.hidden_dim=200", "data.num_points=1000000", "train.epochs=10000000", "train.batch_size=1000"],
     ["floating-point operations"]),
    ("epochs-inf", ["train.epochs=.inf"], ["train.epochs", "integer"]),
    ("epochs-huge", ["train.epochs=10000000000"], ["train.epochs", "<="]),
    ("seed-huge", ["seed=18446744073709551616"], ["seed", "<="]),
    ("split-seed-negative", ["data.split_seed=-5"], ["data.split_seed"]),
    ("likelihood-scale", ["model.likelihood_std=1.0e-46"], ["model.likelihood_std", ">="]),
    ("inputs-1e300", ["data.x_min=-1.0e+300"], ["data.x_min"]),
    ("inputs-1e39", ["data.x_max=1.0e+39"], ["data.x_max"]),
    ("noise-huge", ["data.noise_std=1.0e+200"], ["data.noise_std"]),
    ("chunk", ["predict.chunk_elements=1.0e+12"], ["predict.chunk_elements"]),
]


@pytest.mark.parametrize(("overrides", "expect"), [c[1:] for c in CONFIG_LIMITS], ids=[c[0] for c in CONFIG_LIMITS])
def test_insane_settings_are_refused_before_anything_runs(tiny_config: Path, tmp_path: Path,
                                                          overrides: list[str], expect: list[str]) -> None:
    refused(["train", str(tiny_config), *overrides, "--out", str(tmp_path / "out")], expect)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("limits"), train={"epochs": 3, "log_every": 3, "checkpoint_every": 3},
                      predict={"num_samples": 10})


FLAGS = [
    ("predict-samples", ["predict", "{run}", "--x-min", "0", "--x-max", "1", "--samples", "100000000"],
     ["--samples", "memory"]),
    ("plot-samples", ["plot", "{run}", "--samples", "100000000"], ["--samples"]),
    ("evaluate-samples", ["evaluate", "{run}", "--input", "{csv}", "--samples", "100000000"], ["--samples"]),
    ("num-points", ["predict", "{run}", "--x-min", "0", "--x-max", "1", "--num-points", "1000000000000"],
     ["--num-points"]),
    ("x-range-inf", ["predict", "{run}", "--x-min", "-inf", "--x-max", "1"], ["finite"]),
    ("x-range-nan", ["predict", "{run}", "--x-min", "nan", "--x-max", "1"], ["finite"]),
    ("level", ["predict", "{run}", "--x-min", "0", "--x-max", "1", "--level", "1.5"], ["--level"]),
]


@pytest.mark.parametrize(("args", "expect"), [c[1:] for c in FLAGS], ids=[c[0] for c in FLAGS])
def test_insane_flags_are_refused(run: Path, tmp_path: Path, args: list[str], expect: list[str]) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text("x,y\n0.5,1\n")
    before = tree(run)
    refused([a.format(run=run, csv=csv) for a in args], expect)
    assert tree(run) == before


def test_a_large_grid_streams_in_chunks(run: Path, tmp_path: Path) -> None:
    """50,000 grid points (more than one chunk) come out as in one piece, row for row."""
    out = tmp_path / "grid.csv"
    result = CliRunner().invoke(app, ["predict", str(run), "--x-min", "-2", "--x-max", "2", "--num-points", "50000",
                                      "--samples", "5", "--output", str(out)])
    assert result.exit_code == 0, result.output
    x = np.loadtxt(out, delimiter=",", skiprows=1, usecols=0)
    assert len(x) == 50_000 and x[0] == -2 and x[-1] == 2
    expected = np.linspace(-2, 2, 50_000, dtype=np.float32)
    assert np.allclose(x, expected, atol=1e-5)


SWEEPS = [
    ("grid-1e8", ["seed=range(10000)", "train.epochs=range(1,10001)"], ["100,000,000 runs"]),
    ("range-inf", ["seed=range(0,.inf)"], ["finite"]),
    ("range-huge", ["seed=range(0,1000000000000)"], ["more than"]),
    ("range-nan-step", ["optim.lr=range(0.1,0.2,.nan)"], ["finite"]),
    ("unknown-metric", [], []),
]


@pytest.mark.parametrize(("overrides", "expect"), [c[1:] for c in SWEEPS[:4]], ids=[c[0] for c in SWEEPS[:4]])
def test_sweeps_too_large_to_run_are_refused_before_expansion(tiny_config: Path, tmp_path: Path,
                                                              overrides: list[str], expect: list[str]) -> None:
    refused_in_child(["sweep", str(tiny_config), *overrides, "--dry-run"], expect, timeout=60)


def test_a_training_table_too_large_for_memory_is_refused_unread(tiny_config: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:  # sparse: no disk used, nothing to read
        handle.write(b"x,y\n")
        handle.truncate(MAX_TABLE_BYTES + 2**20)
    refused_in_child(["train", str(tiny_config), "data.source=csv", f"data.path={big}", "data.target=y",
                      "--out", str(tmp_path / "out")], ["GiB", "streams"], timeout=60)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ["one-huge-line", "nul-bytes"])
def test_a_csv_input_without_line_ends_is_refused_without_reading_it_whole(run: Path, tmp_path: Path,
                                                                          content: str) -> None:
    path = tmp_path / "in.csv"
    with path.open("wb") as handle:
        handle.write(b"x\n" if content == "nul-bytes" else b"x")
        handle.truncate(200 * 2**20)  # zeros, no newline: one 200 MiB "line"
    line = refused_in_child(["predict", str(run), "--input", str(path)], timeout=60)
    assert "line longer" in line or "NUL" in line or "not a readable CSV" in line, line


@pytest.mark.parametrize(("text", "expect"), [("x,y\n1e30,1\n2,3\n1,1\n4,4\n5,5\n3,2\n", ["1e+30", "rescale"]),
                                               ("x,y\n1,1e20\n2,3\n1,1\n4,4\n5,5\n3,2\n", ["target", "rescale"]),
                                               ("x,y\n1e39,1\n2,3\n1,1\n4,4\n5,5\n3,2\n", ["3.4e38"])],
                         ids=["input-1e30", "target-1e20", "input-1e39"])
def test_data_too_large_for_float32_training_is_refused(tiny_config: Path, tmp_path: Path, text: str,
                                                        expect: list[str]) -> None:
    data = tmp_path / "d.csv"
    data.write_text(text)
    refused(["train", str(tiny_config), "data.source=csv", f"data.path={data}", "data.target=y",
             "data.val_fraction=0.34", "--out", str(tmp_path / "out")], expect)
    assert not (tmp_path / "out").exists()


def test_a_csv_with_a_byte_order_mark_is_read(tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "bom.csv"
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{x:.3f},{2 * x + rng.normal():.3f}" for x in rng.uniform(-1, 1, 60))
    data.write_bytes(b"\xef\xbb\xbf" + f"x,y\n{rows}\n".encode())
    result = CliRunner().invoke(app, ["train", str(tiny_config), "data.source=csv", f"data.path={data}",
                                      "data.target=y", "train.epochs=3", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / "out" / "tiny")
