"""The package's seams: a new likelihood or data source plugs in without touching the rest."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

import bbbrun
from bbbrun.bnn.likelihoods import Likelihood, RegressionSamples, SampleBuffer
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.standardize import Standardizer, fit_standardizer
from bbbrun.cli import app
from bbbrun.config import DataConfig, ModelConfig, load_config
from bbbrun.data import SOURCES, Dataset, split_indices
from bbbrun.data.base import column
from bbbrun.evaluate.predictive import sample_predictive
from bbbrun.evaluate.regression import evaluate, mixture_nll, pit, summarize
from bbbrun.fit import checkpoint as ckpt
from bbbrun.fit.loop import TrainData, Trainee, make_optimizer
from bbbrun.runs.layout import RunDir, checkpoint_file
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import Session

# ------------------------------------------------------------- a toy likelihood


class LaplaceSamples(RegressionSamples):
    def __init__(self, f: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> None:
        self.f, self.b, self.y = f, b, y

    def log_density(self, y: torch.Tensor) -> torch.Tensor:
        return -(y - self.f).abs() / self.b - torch.log(2 * self.b)

    def cdf(self, y: torch.Tensor) -> torch.Tensor:
        z = (y - self.f) / self.b
        return torch.where(z < 0, 0.5 * torch.exp(z), 1 - 0.5 * torch.exp(-z))

    def aleatoric_std(self) -> torch.Tensor:
        return (math.sqrt(2.0) * self.b).expand(self.f.shape[1]).contiguous()

    def points(self, index: slice, dtype: torch.dtype | None = None) -> LaplaceSamples:
        def part(t: torch.Tensor) -> torch.Tensor:
            return t[:, index] if dtype is None else t[:, index].to(dtype)

        return LaplaceSamples(part(self.f), self.b if dtype is None else self.b.to(dtype), part(self.y))


class LaplaceBuffer(SampleBuffer):
    def __init__(self, b: torch.Tensor, num_samples: int, num_points: int, generator: torch.Generator) -> None:
        self.b = b
        self.u = torch.rand(num_samples, num_points, generator=generator) - 0.5
        self.f = torch.empty(num_samples, num_points)

    def put(self, samples: slice, points: slice, raw: torch.Tensor) -> None:
        self.f[samples, points] = raw[..., 0]

    def finish(self) -> LaplaceSamples:
        noise = -self.b * torch.sign(self.u) * torch.log1p(-2 * self.u.abs())
        return LaplaceSamples(self.f, self.b, self.f + noise)


class ToyLaplace(Likelihood):
    """y ~ Laplace(raw, b) with a learned b: written only against the Likelihood interface."""

    history_columns: ClassVar[tuple[str, ...]] = ("laplace_b",)
    headline_metrics: ClassVar[tuple[str, ...]] = ("val_nll", "laplace_b")
    table_metrics: ClassVar[tuple[str, ...]] = ("val_nll",)
    output_width = 1

    def __init__(self, cfg: ModelConfig, std: Standardizer) -> None:
        super().__init__()
        self.log_b = torch.nn.Parameter(torch.zeros(()))

    def nll(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = self.log_b.exp()
        return ((y - raw[..., :1]).abs() / b + torch.log(2 * b)).sum()

    def log_values(self, raw: torch.Tensor) -> dict[str, float]:
        return {"laplace_b": float(self.log_b.detach().exp())}

    def final_values(self) -> dict[str, Any]:
        return {"laplace_b": float(self.log_b.detach().exp())}

    def new_samples(self, num_samples: int, num_points: int, generator: torch.Generator,
                    device: torch.device) -> LaplaceBuffer:
        return LaplaceBuffer(self.log_b.detach().exp(), num_samples, num_points, generator)


def laplace_session(tmp_path: Path) -> Session:
    cfg = load_config(write_config(tmp_path / "c.yaml", train={"epochs": 60, "log_every": 20}))
    dataset = bbbrun.make_dataset(cfg.data, cfg.seed)
    data = TrainData.from_dataset(dataset, torch.device("cpu"))
    torch.manual_seed(0)
    model = BayesianNetwork(cfg.model, likelihood=ToyLaplace(cfg.model, Standardizer()))
    trainee = Trainee(model, make_optimizer(model, cfg.optim), data, cfg, torch.Generator().manual_seed(0))
    return Session(trainee, dataset, torch.device("cpu"))


def test_a_new_likelihood_runs_end_to_end(tmp_path: Path) -> None:
    session = laplace_session(tmp_path)
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    result = run_training(session, run_dir)
    assert result.status == "completed"
    assert result.headline == ("val_nll", "laplace_b", "train_seconds")
    metrics = json.loads(run_dir.metrics.read_text())
    assert metrics["laplace_b"] == pytest.approx(float(session.model.likelihood.log_b.detach().exp()))
    header = run_dir.history.read_text().splitlines()[0].split(",")
    assert header == ["epoch", "loss", "nll", "kl", "kl_weight", "val_loss", "val_nll_1sample", "laplace_b", "lr",
                      "seconds"]
    # The learned b moved from its start (1) toward the data's noise (Laplace b of N(0, 1.5^2) ~ 1.2).
    assert metrics["laplace_b"] != pytest.approx(1.0, abs=0.01)
    for name in ("train", "val", "loss", "calibration"):
        assert run_dir.figure(name).stat().st_size > 0


def test_regression_metrics_use_the_likelihoods_own_density(tmp_path: Path) -> None:
    session = laplace_session(tmp_path)
    x = torch.from_numpy(session.dataset.x_val)
    y = torch.from_numpy(session.dataset.y_val.ravel())
    samples = sample_predictive(session.model, x, 40, seed=1)
    f, b = samples.f.double(), float(samples.b)
    naive = torch.exp(-(y.double() - f).abs() / b) / (2 * b)  # (S, N)
    assert mixture_nll(samples, y) == pytest.approx(float(-naive.mean(0).log().mean()), rel=1e-5)
    z = (y.double() - f) / b
    naive_cdf = torch.where(z < 0, 0.5 * torch.exp(z), 1 - 0.5 * torch.exp(-z)).mean(0)
    torch.testing.assert_close(pit(samples, y).double(), naive_cdf, rtol=1e-5, atol=1e-6)
    metrics = evaluate(samples, summarize(samples, (0.05, 0.95)), y, None)
    assert metrics["aleatoric_std_mean"] == pytest.approx(math.sqrt(2) * b, rel=1e-5)
    assert "rmse_true" not in metrics


# ------------------------------------------------------------- a toy data source


class PlaneSource:
    """Two features, y = 2 a - b + noise; no ground truth."""

    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        rng = np.random.RandomState(seed)
        x = rng.uniform(-2, 2, size=(cfg.num_points, 2)) * np.array([1.0, 50.0]) + np.array([0.0, 100.0])
        y = 2 * x[:, 0] - x[:, 1] / 50 + rng.normal(0, 0.1, cfg.num_points)
        train, val = split_indices(cfg.num_points, cfg.val_fraction, cfg.split_seed)
        return Dataset(x[train].astype(np.float32), column(y[train]), x[val].astype(np.float32), column(y[val]),
                       feature_names=("a", "b"))

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None


@pytest.fixture
def plane_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(SOURCES, "function", PlaneSource())
    config = write_config(tmp_path / "plane.yaml", data={"num_points": 400, "standardize": True},
                          model={"likelihood": "learned", "init_mu_std": None, "init_rho_mean": -5.0,
                                 "activation": "silu"},
                          optim={"lr": 0.02},
                          train={"epochs": 60, "batch_size": 40, "log_every": 20, "checkpoint_every": 20})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    return run_dir


def test_a_new_source_with_two_features_trains_saves_and_predicts(plane_run: Path, tmp_path: Path) -> None:
    payload = ckpt.load_checkpoint(checkpoint_file(plane_run))
    assert payload["input_dim"] == 2 and payload["feature_names"] == ["a", "b"]
    # Per-feature statistics of the training rows: b is centred near 100 with a spread near 50 / sqrt(3) * 2.
    shift, scale = payload["model"]["x_shift"], payload["model"]["x_scale"]
    assert shift.shape == (2,) and abs(float(shift[1]) - 100) < 10 and float(scale[1]) > 20 * float(scale[0])
    metrics = json.loads((plane_run / "metrics.json").read_text())
    assert metrics["val_rmse"] < 0.5 and "val_rmse_true" not in metrics
    assert not (plane_run / "train.png").exists()  # bands over x need one input
    # Columns by name, in any order, extra columns ignored.
    inputs = tmp_path / "new.csv"
    inputs.write_text("b,note,a\n100,p,1.0\n50,q,-1.0\n")
    result = CliRunner().invoke(app, ["predict", str(plane_run), "--input", str(inputs), "--samples", "200"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["a", "b", "mean", "std", "epistemic_std", "aleatoric_std", "lower", "upper"]
    for row, want in zip(rows, (2 * 1.0 - 2.0, 2 * -1.0 - 1.0), strict=True):
        assert float(row["mean"]) == pytest.approx(want, abs=0.4)


@pytest.mark.parametrize(("text", "expect"), [
    ("b,c\n1,2\n", "no column named 'a'"),
    ("a,b\n1,x\n", "data row 1, column 'b': expected a finite number"),
])
def test_multi_feature_inputs_that_do_not_match_give_one_line(plane_run: Path, tmp_path: Path, text: str,
                                                             expect: str) -> None:
    inputs = tmp_path / "bad.csv"
    inputs.write_text(text)
    result = CliRunner().invoke(app, ["predict", str(plane_run), "--input", str(inputs)])
    assert result.exit_code == 2 and expect in result.stderr and len(result.stderr.strip().splitlines()) == 1
    grid = CliRunner().invoke(app, ["predict", str(plane_run), "--x-min", "0", "--x-max", "1"])
    assert grid.exit_code == 2 and "has 2" in grid.stderr


def test_standardizer_is_per_feature_and_safe_on_a_constant_column() -> None:
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    std = fit_standardizer(x, torch.tensor([[0.0], [1.0], [2.0]]), enabled=True)
    assert std.x_shift == (3.0, 5.0) and std.x_scale == (2.0, 1.0) and std.input_dim == 2


# ------------------------------------------------------------- checkpoints of the first format


@pytest.mark.parametrize("likelihood", ["fixed", "learned", "heteroscedastic"])
def test_a_version_1_checkpoint_still_loads_and_predicts_the_same(tmp_path: Path, likelihood: str) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", model={"likelihood": likelihood},
                                   data={"standardize": True}, train={"epochs": 5}))
    session = bbbrun.start_session(cfg)
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    run_training(session, run_dir)
    payload = torch.load(run_dir.checkpoint, weights_only=True)
    # The same checkpoint as bbbrun 0.1 wrote it: scalar statistics, likelihood tensors at the top.
    old_state = {k.removeprefix("likelihood."): v for k, v in payload["model"].items()}
    if likelihood == "heteroscedastic":  # version 1 kept an unused fixed scale for it too
        old_state["fixed_noise_std"] = torch.tensor(0.1)
    old_state["x_shift"], old_state["x_scale"] = old_state["x_shift"][0], old_state["x_scale"][0]
    old = {**payload, "format_version": 1, "model": old_state}
    del old["input_dim"], old["feature_names"], old["target_name"], old["categories"], old["digest"]  # none in v1
    v1 = tmp_path / "v1.pt"
    torch.save(old, v1)
    loaded = ckpt.load_checkpoint(v1)
    model = ckpt.restore_model(loaded, ckpt.config_of(loaded, v1), torch.device("cpu"), v1)
    x = torch.from_numpy(session.dataset.x_val)
    a, b = sample_predictive(session.model, x, 20, seed=0), sample_predictive(model, x, 20, seed=0)
    assert torch.equal(a.f, b.f) and torch.equal(a.y, b.y)


# ------------------------------------------------------------- one owner of the layout


def test_run_directory_file_names_are_spelled_in_one_module() -> None:
    package = Path(bbbrun.__file__).parent
    names = ("checkpoint.pt", "metrics.json", "history.csv", "config.yaml", "sweep.yaml", "summary.csv",
             "summary.json", "comparison.png", "run.log", "train.png", "val.png", "loss.png", "calibration.png",
             "run.json", "report.html")
    for path in package.rglob("*.py"):
        if path.name == "layout.py":
            continue
        # Help texts and docstrings may name a file for the user; code may not build a path from it.
        code = re.sub(r'"""[\s\S]*?"""|help="[^"]*"', "", path.read_text())
        for name in names:
            assert not re.search(rf"[\"'/]{re.escape(name)}[\"']", code), (path, name)
