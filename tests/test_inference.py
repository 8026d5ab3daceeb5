"""The predictive from a saved checkpoint: `bbbrun predict`, `bbbrun plot --x-min/--x-max`, the metrics."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.bnn.likelihoods.gaussian import GaussianSamples
from bbbrun.cli import app
from bbbrun.config import load_config
from bbbrun.evaluate.predictive import sample_predictive
from bbbrun.evaluate.regression import evaluate, mixture_nll, summarize
from bbbrun.runs import runner
from bbbrun.runs.layout import RunDir
from bbbrun.runs.session import Session, start_session

COLUMNS = ["x", "mean", "std", "epistemic_std", "aleatoric_std", "lower", "upper"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Session]:
    """A finished tiny run on disk, and its session still in memory."""
    root = tmp_path_factory.mktemp("inference")
    model = {"hidden_dim": 8, "num_layers": 3, "likelihood": "learned", "likelihood_std": 1.0,
             "activation": "silu", "init_mu_std": None, "init_rho_mean": -5.0, "bias_rho_init": -5.0}
    config = write_config(root / "tiny.yaml", model=model, data={"num_points": 300, "standardize": True},
                          optim={"lr": 0.02})
    session = start_session(load_config(config, ["train.epochs=100"]))
    run_dir = root / "run"
    run_dir.mkdir()
    result = runner.run_training(session, RunDir(run_dir))
    assert result.status == "completed"
    return run_dir, session


def predict_rows(args: list[str]) -> list[dict[str, float]]:
    result = CliRunner().invoke(app, ["predict", *args])
    assert result.exit_code == 0, result.output
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert reader.fieldnames == COLUMNS
    return [{k: float(v) for k, v in row.items()} for row in reader]


# ------------------------------------------------------------------- predict


def test_predict_from_checkpoint_matches_the_model_in_memory(trained: tuple[Path, Session]) -> None:
    run_dir, session = trained
    rows = predict_rows([str(run_dir), "--x-min", "-4", "--x-max", "4", "--num-points", "17",
                         "--samples", "64", "--level", "0.8"])
    x = np.linspace(-4, 4, 17, dtype=np.float32).reshape(-1, 1)
    samples = sample_predictive(session.model, torch.from_numpy(x), 64, seed=session.cfg.seed)
    summary = summarize(samples, (0.1, 0.9), exact=True)  # predict reports the mixture's exact quantiles
    expected = {"x": torch.from_numpy(x.ravel()), "mean": summary.mean, "std": summary.std,
                "epistemic_std": summary.epistemic_std, "lower": summary.lower, "upper": summary.upper}
    for name, values in expected.items():
        got = torch.tensor([row[name] for row in rows])
        torch.testing.assert_close(got, values.float(), rtol=1e-5, atol=1e-5)  # the CSV keeps 6 digits


def test_predict_std_and_interval_include_the_noise(trained: tuple[Path, Session]) -> None:
    run_dir, session = trained
    noise = session.model.likelihood.noise_std()
    assert noise is not None
    rows = predict_rows([str(run_dir), "--x-min", "-2", "--x-max", "2", "--num-points", "5", "--samples", "400"])
    for row in rows:
        assert row["std"] == pytest.approx(math.hypot(row["epistemic_std"], noise), rel=1e-4)
        # A 90% interval of a near-Gaussian predictive spans about 2 * 1.645 total stds.
        assert row["upper"] - row["lower"] == pytest.approx(2 * 1.645 * row["std"], rel=0.15)
        assert row["lower"] < row["mean"] < row["upper"]
    narrow = predict_rows([str(run_dir), "--x-min", "-2", "--x-max", "2", "--num-points", "5",
                           "--samples", "400", "--level", "0.5"])
    for wide_row, narrow_row in zip(rows, narrow, strict=True):
        assert narrow_row["upper"] - narrow_row["lower"] < 0.6 * (wide_row["upper"] - wide_row["lower"])


def test_epistemic_uncertainty_grows_away_from_the_data(trained: tuple[Path, Session]) -> None:
    run_dir, _ = trained
    rows = predict_rows([str(run_dir), "--x-min", "-30", "--x-max", "30", "--num-points", "3", "--samples", "200"])
    far_left, centre, far_right = (row["epistemic_std"] for row in rows)
    assert min(far_left, far_right) > 3 * centre, (far_left, centre, far_right)


def test_predict_reads_x_from_a_csv(trained: tuple[Path, Session], tmp_path: Path) -> None:
    run_dir, _ = trained
    source = tmp_path / "x.csv"
    source.write_text("id,x\na,0.25\nb,-1.5\nc,3\n")
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(source), "--samples", "20",
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [float(r["x"]) for r in rows] == [0.25, -1.5, 3.0]


@pytest.mark.parametrize(("content", "fragment"), [
    ("a,b\n1,2\n", "column named 'x'"),
    ("x\n1\nnope\n", "row 2"),
    ("x\n1\ninf\n", "finite"),
    ("", "is empty"),
])
def test_bad_input_files_give_one_line_and_exit_2(
    trained: tuple[Path, Session], tmp_path: Path, content: str, fragment: str
) -> None:
    run_dir, _ = trained
    source = tmp_path / "bad.csv"
    source.write_text(content)
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(source)])
    assert result.exit_code == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["--x-min", "1", "--x-max", "-1"],
    ["--x-min", "1"],
    ["--x-min", "-1", "--x-max", "1", "--level", "1.5"],
    [],
])
def test_bad_predict_options_exit_2(trained: tuple[Path, Session], args: list[str]) -> None:
    run_dir, _ = trained
    result = CliRunner().invoke(app, ["predict", str(run_dir), *args])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output


# ---------------------------------------------------------------------- plot


def test_plot_beyond_the_training_range_writes_pngs(trained: tuple[Path, Session], tmp_path: Path) -> None:
    run_dir, _ = trained
    cli = CliRunner()
    wide = cli.invoke(app, ["plot", str(run_dir), "--x-min", "-6", "--x-max", "6", "--samples", "30",
                            "--out", str(tmp_path / "wide")])
    plain = cli.invoke(app, ["plot", str(run_dir), "--samples", "30", "--out", str(tmp_path / "plain")])
    assert wide.exit_code == 0 and plain.exit_code == 0, wide.output + plain.output
    for name in ("train", "val"):
        picture = (tmp_path / "wide" / f"{name}_x-6_6.png").read_bytes()
        assert picture[:8] == b"\x89PNG\r\n\x1a\n"
        assert picture != (tmp_path / "plain" / f"{name}.png").read_bytes()
    bad = cli.invoke(app, ["plot", str(run_dir), "--x-min", "3", "--x-max", "-3", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--x-min" in bad.stderr


# ------------------------------------------------------- predictive and metrics


def test_metrics_json_has_the_uncertainty_figures(trained: tuple[Path, Session]) -> None:
    run_dir, session = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("val_nll", "val_rmse", "val_rmse_true", "val_interval_width_90", "val_calibration_error",
                "val_coverage_50", "val_coverage_80", "val_coverage_90", "val_coverage_95", "noise_std"):
        assert isinstance(metrics[key], float), key
    curve = metrics["val_calibration"]
    assert [round(p["nominal"], 2) for p in curve] == [round(0.05 + 0.1 * i, 2) for i in range(10)]
    # The mean absolute calibration error is the curve's, and coverage grows with the level.
    error = sum(abs(p["observed"] - p["nominal"]) for p in curve) / len(curve)
    assert metrics["val_calibration_error"] == pytest.approx(error)
    observed = [metrics[f"val_coverage_{level}"] for level in (50, 80, 90, 95)]
    assert observed == sorted(observed)
    assert metrics["noise_std"] == pytest.approx(session.model.likelihood.noise_std())



def test_predictive_does_not_depend_on_the_chunk_size(trained: tuple[Path, Session]) -> None:
    _, session = trained
    x = torch.linspace(-3, 3, 50).unsqueeze(1)
    whole = sample_predictive(session.model, x, 40, seed=3)
    chunked = sample_predictive(session.model, x, 40, seed=3, chunk_elements=100)
    for name in ("f", "scale", "y"):
        torch.testing.assert_close(getattr(chunked, name), getattr(whole, name))


def gaussian_samples(num_samples: int, num_points: int, spread: float, seed: int) -> GaussianSamples:
    """A predictive whose sampled means are N(0, spread^2) and whose noise scale is 1."""
    g = torch.Generator().manual_seed(seed)
    f = spread * torch.randn(num_samples, num_points, generator=g, dtype=torch.float64)
    scale = torch.ones_like(f)
    return GaussianSamples(f=f, scale=scale, y=f + torch.randn(f.shape, generator=g, dtype=torch.float64))


def test_metrics_of_a_correct_predictive_are_calibrated() -> None:
    # Targets drawn from the predictive itself: y ~ N(0, 1 + spread^2).
    spread, n = 0.5, 10000
    samples = gaussian_samples(200, n, spread, seed=0)
    total_std = math.sqrt(1 + spread**2)
    y = total_std * torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    metrics = evaluate(samples, summarize(samples, (0.05, 0.95)), y, torch.zeros(n, dtype=torch.float64))
    for level in (50, 80, 90, 95):
        # Binomial std of a coverage over 10000 points is at most 0.005.
        assert metrics[f"coverage_{level}"] == pytest.approx(level / 100, abs=0.015)
    assert metrics["calibration_error"] < 0.015
    entropy = 0.5 * math.log(2 * math.pi * math.e * total_std**2)
    assert metrics["nll"] == pytest.approx(entropy, abs=0.03)
    assert metrics["interval_width_90"] == pytest.approx(2 * 1.6449 * total_std, rel=0.03)
    assert metrics["rmse_true"] < 0.1  # the mean of 200 draws of N(0, 0.25) per point: ~0.035


def test_metrics_catch_an_overconfident_predictive() -> None:
    n = 5000
    samples = gaussian_samples(200, n, 0.0, seed=0)  # says noise 1
    y = 2.0 * torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # is noise 2
    metrics = evaluate(samples, summarize(samples, (0.05, 0.95)), y, None)
    expected_90 = math.erf(1.6449 / 2 / math.sqrt(2))  # P(|N(0, 4)| < 1.645)
    assert metrics["coverage_90"] == pytest.approx(expected_90, abs=0.03)
    assert metrics["calibration_error"] > 0.2
    assert "rmse_true" not in metrics


def test_mixture_nll_is_the_log_mean_density() -> None:
    samples = gaussian_samples(3, 4, 1.0, seed=2)
    samples.scale = torch.full_like(samples.f, 0.7)
    y = torch.tensor([0.1, -2.0, 3.0, 0.0], dtype=torch.float64)
    direct = 0.0
    for j in range(4):
        density = sum(
            math.exp(-0.5 * ((float(y[j]) - float(samples.f[s, j])) / 0.7) ** 2) / (0.7 * math.sqrt(2 * math.pi))
            for s in range(3)
        ) / 3
        direct -= math.log(density) / 4
    assert mixture_nll(samples, y) == pytest.approx(direct, rel=1e-10)
