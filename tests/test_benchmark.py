"""`bbbrun benchmark uci`: every split as a run of one sweep, aggregated beside the published numbers."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bbbrun.cli import app

ROOT = Path(__file__).resolve().parents[1]
UCI = ROOT.parent / "shared" / "uci"
FAST = ["train.epochs=5", "train.min_steps=null", "train.log_every=5", "train.checkpoint_every=5",
        "predict.num_samples=30"]


def toy_folder(folder: Path, splits: int = 2) -> Path:
    """A data set the published table does not know: 40 rows, 2 inputs, `splits` 30/10 splits."""
    folder.mkdir()
    rng = np.random.RandomState(0)
    x = rng.normal(size=(40, 2))
    np.savetxt(folder / "data.txt", np.column_stack([x, x @ [1.0, -2.0] + 0.1 * rng.normal(size=40)]))
    (folder / "index_features.txt").write_text("0\n1\n")
    (folder / "index_target.txt").write_text("2\n")
    for k in range(splits):
        order = np.random.RandomState(k).permutation(40)
        (folder / f"index_train_{k}.txt").write_text("\n".join(map(str, order[:30])))
        (folder / f"index_test_{k}.txt").write_text("\n".join(map(str, order[30:])))
    return folder


def run_benchmark(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["benchmark", "uci", *args, "--config", str(ROOT / "configs" / "uci.yaml"),
                                      "--workers", "1", "--executor", "serial"])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.skipif(not (UCI / "yacht").is_dir(), reason="../shared/uci is not beside this checkout")
def test_benchmark_aggregates_every_split_with_published_numbers(tmp_path: Path) -> None:
    toy = toy_folder(tmp_path / "toyset")
    code, out, err = run_benchmark([str(UCI / "yacht"), str(toy), "--splits", "2", *FAST, "--out", str(tmp_path)])
    assert code == 0, out + err
    (root,) = (tmp_path / "benchmarks" / "uci").iterdir()
    result = json.loads((root / "benchmark.json").read_text())
    assert set(result["datasets"]) == {"yacht", "toyset"}
    assert result["config"]["model"]["hidden_dim"] == 50 and "path" not in result["config"]["data"]
    with (root / "benchmark.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for name, entry in result["datasets"].items():
        lls = [float(r["test_ll"]) for r in rows if r["dataset"] == name]
        assert entry["n_splits"] == 2 and [s["split"] for s in entry["splits"]] == [0, 1]
        assert entry["test_ll"]["mean"] == pytest.approx(statistics.fmean(lls))
        assert entry["test_ll"]["se"] == pytest.approx(statistics.stdev(lls) / math.sqrt(2))
    # Each split's test LL is the run's own test metric; test rows were never validation rows.
    run_dir = next(p for p in root.iterdir() if p.name.startswith("000_"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_ll"] == pytest.approx(float(rows[0]["test_ll"]))
    splits = json.loads((run_dir / "splits.json").read_text())
    assert not set(splits["test"]) & (set(splits["train"]) | set(splits["val"]))
    assert "-1.55 ± 0.03" in out and "toyset" in out  # dropout's yacht LL beside ours; unknown set still reported


def test_bad_folders_are_one_line_and_create_nothing(tmp_path: Path) -> None:
    broken = toy_folder(tmp_path / "broken")
    (broken / "index_target.txt").unlink()
    for folder, expect in ((tmp_path / "nowhere", "is not a folder"), (broken, "has no index_target.txt")):
        code, _, err = run_benchmark([str(folder), "--out", str(tmp_path / "out")])
        assert code == 2 and expect in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    code, _, err = run_benchmark(["--out", str(tmp_path / "out")])
    assert code == 2 and "give one or more benchmark folders" in err


def test_resume_reruns_only_the_missing_splits(tmp_path: Path) -> None:
    toy = toy_folder(tmp_path / "toyset", splits=3)
    code, out, err = run_benchmark([str(toy), *FAST, "--out", str(tmp_path)])
    assert code == 0, out + err
    (root,) = (tmp_path / "benchmarks" / "uci").iterdir()
    runs = sorted(p for p in root.iterdir() if p.is_dir())
    kept = (runs[0] / "metrics.json").stat().st_mtime_ns
    (runs[2] / "metrics.json").unlink()
    code, out, err = run_benchmark(["--resume", str(root)])
    assert code == 0, out + err
    assert (runs[0] / "metrics.json").stat().st_mtime_ns == kept and (runs[2] / "metrics.json").exists()
    assert json.loads((root / "benchmark.json").read_text())["datasets"]["toyset"]["n_splits"] == 3


def test_the_uci_config_trains_any_table(tmp_path: Path) -> None:
    rng = np.random.RandomState(1)
    lines = ["u,v,target"] + [f"{a:.3f},{b:.3f},{a * b:.3f}" for a, b in rng.normal(size=(80, 2))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["train", str(ROOT / "configs" / "uci.yaml"), "data.source=csv",
                                      f"data.path={tmp_path / 't.csv'}", "data.target=target", *FAST,
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def test_a_glob_over_a_benchmark_root_skips_its_readme(tmp_path: Path) -> None:
    """`bbbrun benchmark uci ROOT/*` matches ROOT/README.md too: it is named and skipped, the folders run."""
    root = tmp_path / "uci"
    root.mkdir()
    toy = toy_folder(root / "toy", splits=1)
    (root / "README.md").write_text("# the protocol\n")
    code, out, err = run_benchmark([str(root / "README.md"), str(toy), *FAST, "--out", str(tmp_path / "out")])
    assert code == 0, out + err
    assert "skipping" in err and "README.md" in err
    assert "toy" in out
    # Files alone are still refused, in one line.
    code, _, err = run_benchmark([str(root / "README.md"), *FAST, "--out", str(tmp_path / "out2")])
    assert code == 2 and "is not a folder" in err and not (tmp_path / "out2").exists()
