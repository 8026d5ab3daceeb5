"""Classifiers end to end: the categorical likelihood, training, predict, evaluate, plot, labels and errors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_config
from typer.testing import CliRunner

from bbbrun.bnn.likelihoods import make_likelihood
from bbbrun.bnn.standardize import Standardizer
from bbbrun.cli import app
from bbbrun.config import Likelihood, ModelConfig
from bbbrun.data.splits import three_way_split
from bbbrun.errors import ConfigError
from bbbrun.fit import checkpoint as ckpt

MODEL = {"likelihood": "categorical", "hidden_dim": 16, "num_layers": 3, "init_mu_std": None, "init_rho_mean": -5.0,
         "bias_rho_init": -5.0}
TRAIN = {"epochs": 150, "log_every": 50, "checkpoint_every": 50}


def test_categorical_nll_is_minus_the_summed_log_softmax() -> None:
    likelihood = make_likelihood(ModelConfig(likelihood=Likelihood.CATEGORICAL), Standardizer(), ("a", "b", "c"))
    raw = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    y = torch.tensor([[1.0], [2.0]])
    expected = -(torch.log_softmax(raw, 1)[0, 1] + torch.log_softmax(raw, 1)[1, 2])
    assert likelihood.output_width == 3
    torch.testing.assert_close(likelihood.nll(raw, y), expected)


def test_categorical_needs_two_classes() -> None:
    with pytest.raises(ConfigError, match="at least two"):
        make_likelihood(ModelConfig(likelihood=Likelihood.CATEGORICAL), Standardizer(), ("only",))


def labelled_csv(path: Path, num_rows: int, seed: int, names: tuple[str, str, str] = ("cat", "dog", "eel")) -> Path:
    """Three well separated blobs in (a, b), labelled by name."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, num_rows)
    centres = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    x = centres[label] + rng.normal(0, 0.5, (num_rows, 2))
    lines = ["a,b,kind"] + [f"{x[i, 0]:.4f},{x[i, 1]:.4f},{names[label[i]]}" for i in range(num_rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def blob_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("blobs")
    data = labelled_csv(root / "train.csv", 300, 0)
    config = write_config(root / "c.yaml", model=MODEL, train=TRAIN, data={"standardize": True, "test_fraction": 0.2})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}",
                                      "data.target=kind", "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    assert "val_accuracy" in result.output and "val_ece" in result.output
    (run_dir,) = (root / "out" / "tiny").iterdir()
    return run_dir


def strict_json(text: str) -> dict:
    """JSON as a strict parser reads it: NaN and Infinity are refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_training_writes_classification_metrics_and_figures(blob_run: Path) -> None:
    metrics = strict_json((blob_run / "metrics.json").read_text())
    assert metrics["classes"] == ["cat", "dog", "eel"]
    assert metrics["val_accuracy"] > 0.9 and metrics["test_accuracy"] > 0.9
    for key in ("val_nll", "val_brier", "val_ece", "val_ece_classwise", "test_mutual_information_mean"):
        assert math.isfinite(metrics[key])
    assert "val_auroc" not in metrics  # three classes
    for name in ("loss", "val_reliability", "val_rejection", "val_confusion", "test_reliability", "decision"):
        assert (blob_run / f"{name}.png").stat().st_size > 1000
    assert "val_rmse" not in metrics and not (blob_run / "val_pit.png").exists()


def test_checkpoint_keeps_the_class_names(blob_run: Path) -> None:
    payload = ckpt.load_checkpoint(blob_run / "checkpoint.pt")
    assert payload["classes"] == ["cat", "dog", "eel"]
    assert ckpt.inputs_of(payload, blob_run / "checkpoint.pt").classes == ("cat", "dog", "eel")


def predict_rows(run_dir: Path, source: Path) -> list[dict[str, str]]:
    result = CliRunner().invoke(app, ["predict", str(run_dir), "--input", str(source), "--samples", "40"])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def test_predict_writes_class_probabilities_and_uncertainties(blob_run: Path, tmp_path: Path) -> None:
    rows = predict_rows(blob_run, labelled_csv(tmp_path / "new.csv", 60, 1))
    assert list(rows[0]) == ["a", "b", "class", "p_cat", "p_dog", "p_eel", "entropy", "expected_entropy",
                             "mutual_information"]
    for row in rows:
        probs = [float(row[f"p_{c}"]) for c in ("cat", "dog", "eel")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert row["class"] == ("cat", "dog", "eel")[int(np.argmax(probs))]
        assert float(row["entropy"]) == pytest.approx(-sum(p * math.log(p) for p in probs if p > 0), abs=1e-4)
        total = float(row["expected_entropy"]) + float(row["mutual_information"])
        assert float(row["entropy"]) == pytest.approx(total, abs=1e-5)


def test_evaluate_agrees_with_predict(blob_run: Path, tmp_path: Path) -> None:
    source = labelled_csv(tmp_path / "new.csv", 80, 2)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", str(blob_run), "--input", str(source), "--samples", "40",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    rows = predict_rows(blob_run, source)
    truth = [line.split(",")[2] for line in source.read_text().splitlines()[1:]]
    assert metrics["n"] == 80
    assert metrics["accuracy"] == pytest.approx(np.mean([r["class"] == t for r, t in zip(rows, truth, strict=True)]))
    nll = -np.mean([math.log(float(r[f"p_{t}"])) for r, t in zip(rows, truth, strict=True)])
    assert metrics["nll"] == pytest.approx(nll, rel=1e-3)
    assert {"brier", "ece"} <= set(metrics)


def test_evaluate_refuses_a_class_the_model_never_saw(blob_run: Path, tmp_path: Path) -> None:
    source = labelled_csv(tmp_path / "new.csv", 20, 3, names=("cat", "dog", "yak"))
    result = CliRunner().invoke(app, ["evaluate", str(blob_run), "--input", str(source)])
    assert result.exit_code == 2 and "'yak'" in result.output and "Traceback" not in result.output


def test_plot_redraws_the_classifier_figures(blob_run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plot", str(blob_run), "--out", str(tmp_path), "--samples", "20"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} >= {"val_reliability.png", "test_confusion.png", "decision.png"}


@pytest.mark.parametrize(("labels", "message"), [
    (["a"] * 40, "one class"),
    (["1", "2.5"] * 20, "not an integer"),
])
def test_bad_labels_give_one_line_and_write_nothing(tmp_path: Path, labels: list[str], message: str) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i / 10},{label}\n" for i, label in enumerate(labels)))
    config = write_config(tmp_path / "c.yaml", model=MODEL)
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=y",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_class_only_in_validation_rows_is_refused(tmp_path: Path) -> None:
    rare = int(three_way_split(40, 0.0, 0.5, 0)["val"][0])  # a row the split gives to validation
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i},{'rare' if i == rare else i % 2}\n" for i in range(40)))
    config = write_config(tmp_path / "c.yaml", model=MODEL, data={"val_fraction": 0.5, "split_seed": 0})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=y",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "'rare'" in result.output and "validation rows but never in the training rows" in result.output


def test_regression_function_with_categorical_and_moons_with_gaussian_are_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", model=MODEL)
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "regression function" in result.output
    result = CliRunner().invoke(app, ["train", str(config), "model.likelihood=learned", "data.function=two_moons",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "model.likelihood=categorical" in result.output


def test_two_moons_trains_and_draws_a_decision_map(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", model=MODEL, train={**TRAIN, "epochs": 300}, optim={"lr": 0.03},
                          data={"function": "two_moons", "num_points": 200, "noise_std": 0.1, "standardize": True})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_accuracy"] > 0.8 and 0.5 < metrics["val_auroc"] <= 1.0
    assert (run_dir / "decision.png").stat().st_size > 1000


def test_deterministic_baseline_has_no_kl_and_no_epistemic_uncertainty(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", model={**MODEL, "type": "deterministic"}, train=TRAIN,
                          data={"function": "two_moons", "num_points": 200, "noise_std": 0.1}, optim={"lr": 0.03})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    history = list(csv.DictReader(io.StringIO((run_dir / "history.csv").read_text())))
    assert all(float(row["kl"]) == 0.0 for row in history)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_mutual_information_mean"] == pytest.approx(0.0, abs=1e-12) and metrics["val_accuracy"] > 0.8
    assert ckpt.load_checkpoint(run_dir / "checkpoint.pt")["config"]["model"]["type"] == "deterministic"


def test_mnist_blundell_config_trains_on_tiny_idx_files(tmp_path: Path) -> None:
    from test_class_sources import write_idx_folder

    write_idx_folder(tmp_path, num_train=60, num_test=12, gz=True)
    config = Path(__file__).resolve().parent.parent / "configs" / "mnist_blundell.yaml"
    result = CliRunner().invoke(app, ["train", str(config), f"data.path={tmp_path}", "model.hidden_dim=8",
                                      "train.epochs=2", "train.batch_size=16", "predict.num_samples=5", "device=cpu",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "mnist_blundell").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["classes"] == ["0", "1", "2"] and "test_accuracy" in metrics


def test_classify_config_reads_a_labelled_csv(tmp_path: Path) -> None:
    data = labelled_csv(tmp_path / "t.csv", 120, 5)
    config = Path(__file__).resolve().parent.parent / "configs" / "classify.yaml"
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=kind",
                                      "device=cpu",
                                      "train.epochs=3", "train.min_steps=null", "predict.num_samples=5",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def test_checkpoints_without_class_names_load_and_a_classifier_needs_them(blob_run: Path, tmp_path: Path) -> None:
    from bbbrun.errors import CheckpointError
    from bbbrun.runs.inference import load_model

    payload = ckpt.load_checkpoint(blob_run / "checkpoint.pt")
    del payload["classes"]  # as every checkpoint written before classifiers existed
    ckpt.save_checkpoint(tmp_path / "old.pt", payload)
    with pytest.raises(CheckpointError, match="at least two"):
        load_model(tmp_path / "old.pt")
    regression = write_config(tmp_path / "r.yaml")
    result = CliRunner().invoke(app, ["train", str(regression), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out" / "tiny").iterdir()
    payload = ckpt.load_checkpoint(run_dir / "checkpoint.pt")
    del payload["classes"]
    ckpt.save_checkpoint(tmp_path / "old_regression.pt", payload)
    assert load_model(tmp_path / "old_regression.pt").inputs.classes == ()


def test_decision_map_covers_the_data_and_matches_the_predictive_at_its_points(blob_run: Path) -> None:
    from bbbrun.data import make_dataset
    from bbbrun.evaluate.classification import summarize_classes
    from bbbrun.evaluate.predictive import probabilities_at
    from bbbrun.runs.class_results import MAP_POINTS, decision_map
    from bbbrun.runs.inference import load_model

    trained = load_model(blob_run)
    cfg = trained.cfg
    ds = make_dataset(cfg.data, cfg.seed, "classification")
    found = decision_map(trained.model, ds, cfg)
    assert found.probs.shape == (MAP_POINTS, MAP_POINTS, 3) and found.mutual_information.shape == (120, 120)
    np.testing.assert_allclose(found.probs.sum(-1), 1.0, atol=1e-6)
    assert (found.mutual_information >= 0).all()
    points = np.concatenate([ds.x_train, ds.x_val])
    assert found.x1[0] < points[:, 0].min() and found.x1[-1] > points[:, 0].max()
    assert found.x2[0] < points[:, 1].min() and found.x2[-1] > points[:, 1].max()
    # One grid point predicted on its own gives the map's value there (the map is that point's predictive).
    i, j = 17, 93
    alone = np.array([[found.x1[j], found.x2[i]]], dtype=np.float32)
    predict = dataclasses.replace(cfg.predict, num_samples=found.num_samples)
    direct = summarize_classes(probabilities_at(trained.model, alone, predict, cfg.seed))
    np.testing.assert_allclose(found.probs[i, j], direct.probs[0].numpy(), atol=1e-6)


def test_a_classifier_no_better_than_the_majority_class_is_named(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    data.write_text("a,b,y\n" + "".join(f"{rng.normal():.3f},{rng.normal():.3f},{'rare' if i % 10 == 0 else 'common'}\n"
                                        for i in range(200)))
    config = write_config(tmp_path / "c.yaml", model=MODEL, train={"epochs": 1, "log_every": 1},
                          optim={"lr": 1e-6})
    result = CliRunner().invoke(app, ["train", str(config), "data.source=csv", f"data.path={data}", "data.target=y",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "no better than always predicting the most common class ('common'" in result.output


def test_a_batched_group_of_classifiers_trains_each_as_alone_and_point_weights_train_alone() -> None:
    from test_group import alone_and_grouped, assert_same_parameters

    from bbbrun.config import config_from_dict
    from bbbrun.runs.batched import plan_groups
    from bbbrun.runs.session import start_session

    base = {"device": "cpu", "model": {**MODEL, "hidden_dim": 6},
            "data": {"function": "two_moons", "num_points": 120, "noise_std": 0.2},
            "train": {"epochs": 30, "batch_size": 32, "log_every": 10, "checkpoint_every": 1000}}
    raws = [{**base, "seed": seed} for seed in (0, 1)]
    alone, grouped, _ = alone_and_grouped(raws)
    for one, member in zip(alone, grouped, strict=True):
        assert_same_parameters(one, member)
    point = [start_session(config_from_dict({**raw, "model": {**raw["model"], "type": "deterministic"}}))
             for raw in raws]
    assert plan_groups(point, 64) == [[0], [1]]
