"""`bbbrun predict --input` and `bbbrun evaluate` on a run with named, categorical inputs, read in chunks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.data import inputs
from bbbrun.evaluate.regression import evaluate, summarize
from bbbrun.runs.inference import OUTPUT_COLUMNS, load_model, predictive_rows
from bbbrun.runs.scoring import MetricTotals

SAMPLES = "50"


def table_text(rng: np.random.Generator, num_rows: int, columns: tuple[str, ...]) -> str:
    """Rows of y = a - 2 b + colour effect + c / 10 + noise, with the requested columns in that order."""
    a, b, c = rng.uniform(-2, 2, num_rows), rng.normal(0, 1, num_rows), rng.uniform(0, 10, num_rows)
    colour = rng.choice(["red", "green", "blue"], num_rows)
    y = a - 2 * b + np.where(colour == "red", 1.5, 0.0) + c / 10 + rng.normal(0, 0.3, num_rows)
    values = {"a": a, "b": b, "c": c, "colour": colour, "y": y, "note": rng.choice(["p", "q"], num_rows)}
    lines = [",".join(columns)]
    lines += [",".join(str(values[k][i]) if k in ("colour", "note") else f"{values[k][i]:.5f}" for k in columns)
              for i in range(num_rows)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict_evaluate")
    data = root / "train.csv"
    data.write_text(table_text(np.random.default_rng(0), 300, ("a", "b", "c", "colour", "y")))
    model = {"hidden_dim": 16, "num_layers": 3, "likelihood": "learned", "activation": "silu",
             "init_mu_std": None, "init_rho_mean": -5.0, "bias_rho_init": -5.0}
    config = write_config(root / "tiny.yaml", model=model, data={"standardize": True}, optim={"lr": 0.02},
                          train={"epochs": 60, "batch_size": 50, "log_every": 20, "checkpoint_every": 20})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=y",
                                      "data.features=[a,b,c,colour]", "data.categorical=[colour]",
                                      "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "out" / "tiny").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def new_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Columns in another order, an extra column, a colour unseen in training, a semicolon and a BOM."""
    text = table_text(np.random.default_rng(1), 123, ("note", "colour", "y", "c", "b", "a"))
    text = text.replace(",", ";").replace("green;", "purple;", 5)
    path = tmp_path_factory.mktemp("rows") / "new.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return path


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------- predict


def test_predict_writes_the_inputs_then_the_predictive(run: Path, new_rows: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    code, _, stderr = invoke(["predict", str(run), "--input", str(new_rows), "--output", str(out),
                                   "--samples", SAMPLES])
    assert code == 0, stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["a", "b", "c", "colour", *OUTPUT_COLUMNS] and len(rows) == 123
    assert sum(r["colour"] == "purple" for r in rows) == 5  # unseen: encoded all zeros, still predicted
    source = list(csv.DictReader(io.StringIO(new_rows.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert [r["a"] for r in rows] == [r["a"] for r in source]
    for row in rows:
        got = {k: float(row[k]) for k in OUTPUT_COLUMNS}
        assert got["lower"] < got["mean"] < got["upper"]
        assert got["std"] == pytest.approx(np.hypot(got["epistemic_std"], got["aleatoric_std"]), rel=1e-4)
    # The model learnt y = a - 2 b + ...: the predicted means follow the targets.
    error = [float(r["mean"]) - float(s["y"]) for r, s in zip(rows, source, strict=True)]
    assert float(np.sqrt(np.mean(np.square(error)))) < 1.0


def test_predict_rows_do_not_depend_on_the_chunk_size(run: Path, new_rows: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = []
    for chunk_rows in (1, 7, 10**6):
        monkeypatch.setattr(inputs, "CHUNK_ROWS", chunk_rows)
        code, stdout, stderr = invoke(["predict", str(run), "--input", str(new_rows), "--samples", SAMPLES])
        assert code == 0, stderr
        outputs.append(stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 124


def test_predict_matches_the_predictive_computed_directly(run: Path, new_rows: Path) -> None:
    code, stdout, _ = invoke(["predict", str(run), "--input", str(new_rows), "--samples", SAMPLES,
                              "--level", "0.8"])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    trained = load_model(run)
    # The same encoding built by hand: numbers as they are, colours one-hot in the checkpoint's order.
    source = list(csv.DictReader(io.StringIO(new_rows.read_text(encoding="utf-8-sig")), delimiter=";"))
    order = trained.inputs.categories["colour"]
    x = np.array([[float(r["a"]), float(r["b"]), float(r["c"]), *(float(r["colour"] == k) for k in order)]
                  for r in source], np.float32)
    cfg = trained.cfg
    cfg = type(cfg)(**{**cfg.__dict__, "predict": type(cfg.predict)(**{**cfg.predict.__dict__, "num_samples": 50})})
    summary = summarize(predictive_rows(trained.model, x, cfg), (0.1, 0.9), exact=True)
    for name in OUTPUT_COLUMNS:
        got = torch.tensor([float(r[name]) for r in rows], dtype=torch.float64)
        torch.testing.assert_close(got, getattr(summary, name), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ evaluate


def test_evaluate_prints_and_writes_the_val_metric_names(run: Path, new_rows: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    code, stdout, stderr = invoke(["evaluate", str(run), "--input", str(new_rows), "--json", str(out),
                                   "--samples", SAMPLES])
    assert code == 0, stderr
    metrics = json.loads(out.read_text())
    val = json.loads((run / "metrics.json").read_text())
    for key in ("rmse", "nll", "ll", "coverage_90", "calibration_error", "crps", "n"):
        assert key in metrics and key in stdout
    assert metrics["n"] == 123
    names = {k.removeprefix("val_") for k, v in val.items() if k.startswith("val_") and not isinstance(v, list)}
    assert names - {"nll_1sample", "rmse_true"} <= set(metrics)
    # A sane fit on rows like its training rows: errors and coverage near the run's own validation.
    assert metrics["rmse"] < 2 * val["val_rmse"] + 0.2 and metrics["coverage_90"] > 0.6


def test_evaluate_in_chunks_equals_the_whole_file_at_once(run: Path, new_rows: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for chunk_rows in (10**6, 7, 1):
        monkeypatch.setattr(inputs, "CHUNK_ROWS", chunk_rows)
        out = new_rows.parent / f"m{chunk_rows}.json"
        code, _, stderr = invoke(["evaluate", str(run), "--input", str(new_rows), "--json", str(out),
                                  "--samples", SAMPLES])
        assert code == 0, stderr
        results.append(json.loads(out.read_text()))
    whole = results[0]
    for part in results[1:]:
        assert set(part) == set(whole)
        for key, value in whole.items():
            if key == "crps":  # from noise draws that depend on the rows predicted alongside
                assert part[key] == pytest.approx(value, rel=0.05)
            elif key != "calibration":
                assert part[key] == pytest.approx(value, abs=1e-6, rel=1e-6), key
        assert part["calibration"] == whole["calibration"]


def test_totals_combine_chunks_as_a_naive_loop_over_points() -> None:
    """Per-point metrics in one go versus the same points added in uneven chunks."""
    rng = torch.Generator().manual_seed(0)
    f, y = torch.randn(40, 30, generator=rng), torch.randn(30, generator=rng) * 2
    from bbbrun.bnn.likelihoods.gaussian import GaussianSamples

    def metrics_of(points: slice) -> dict[str, object]:
        part = GaussianSamples(f[:, points], torch.ones(1, 1).expand(40, f[:, points].shape[1]),
                               f[:, points])
        return evaluate(part, summarize(part, (0.05, 0.95)), y[points], None)

    totals = MetricTotals()
    for start, stop in ((0, 1), (1, 8), (8, 30)):
        totals.add(metrics_of(slice(start, stop)), stop - start)
    combined, whole = totals.result(), metrics_of(slice(0, 30))
    for key in ("rmse", "nll", "ll", "coverage_50", "coverage_90", "calibration_error", "interval_width_90",
                "epistemic_std_mean"):
        assert combined[key] == pytest.approx(whole[key], abs=1e-6), key
    assert combined["n"] == 30


# ----------------------------------------------------------------- bad input


BAD_FILES = [
    ("missing", None, "not found"),
    ("empty", "", "is empty"),
    ("no header", "1,2,3,4\n5,6,7,8\n", "no header"),
    ("missing column", "a,b,colour,y\n1,2,red,3\n", "no column named 'c'"),
    ("text cell", "a,b,c,colour,y\n1,2,3,red,4\n1,x,3,red,4\n", "data row 2, column 'b'"),
    ("empty cell", "a,b,c,colour,y\n1,2,3,red,4\n1,2,,red,4\n", "data row 2, column 'c'"),
    ("ragged row", "a,b,c,colour,y\n1,2,3,red\n", "data row 1"),
    ("not utf-8", b"a,b,c,colour,y\n\xff,2,3,red,4\n", "UTF-8"),
    ("header only", "a,b,c,colour,y\n", "no data rows"),
    ("directory", "dir", "is a directory"),
]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(("name", "content", "fragment"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_input_files_give_one_line_exit_2_and_no_file(
    run: Path, tmp_path: Path, command: str, name: str, content: str | bytes | None, fragment: str
) -> None:
    source = tmp_path / "input.csv"
    if content == "dir":
        source.mkdir()
    elif isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content)
    out = tmp_path / "out.file"
    option = "--output" if command == "predict" else "--json"
    code, stdout, stderr = invoke([command, str(run), "--input", str(source), option, str(out)])
    assert code == 2 and fragment in stderr and len(stderr.strip().splitlines()) == 1, (code, stderr)
    assert "Traceback" not in stdout + stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else ["input.csv"])


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_an_output_that_is_a_directory_is_refused(run: Path, new_rows: Path, tmp_path: Path, command: str) -> None:
    option = "--output" if command == "predict" else "--json"
    code, _, stderr = invoke([command, str(run), "--input", str(new_rows), option, str(tmp_path)])
    assert code == 2 and "is a directory" in stderr and list(tmp_path.iterdir()) == []


def test_evaluate_needs_the_target_column(run: Path, tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("a,b,c,colour\n1,2,3,red\n")
    code, _, stderr = invoke(["evaluate", str(run), "--input", str(source)])
    assert code == 2 and "no column named 'y'" in stderr and len(stderr.strip().splitlines()) == 1
    code, stdout, _ = invoke(["predict", str(run), "--input", str(source)])  # predict needs no target
    assert code == 0 and len(stdout.splitlines()) == 2


def test_a_bad_cell_past_the_first_chunk_leaves_no_output_file(run: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "CHUNK_ROWS", 2)
    source = tmp_path / "x.csv"
    source.write_text("a,b,c,colour\n1,2,3,red\n1,2,3,red\n1,2,3,red\n1,2,oops,red\n")
    out = tmp_path / "pred.csv"
    code, _, stderr = invoke(["predict", str(run), "--input", str(source), "--output", str(out)])
    assert code == 2 and "data row 4, column 'c'" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]
