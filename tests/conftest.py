"""Shared fixtures: tiny configs that train in a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY = {
    "name": "tiny",
    "seed": 0,
    "device": "cpu",
    "data": {"num_points": 300, "noise_std": 1.5},
    "model": {"hidden_dim": 8, "num_layers": 3},
    "train": {"epochs": 30, "log_every": 10, "checkpoint_every": 10},
    "predict": {"num_samples": 50},
}


def write_config(path: Path, **sections: dict) -> Path:
    """A tiny config with some sections replaced or extended."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "tiny.yaml")


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two finished tiny runs under one output root that differ in model.hidden_dim (shared: read only)."""
    from typer.testing import CliRunner

    from bbbrun.cli import app

    root = tmp_path_factory.mktemp("two_runs")
    config = write_config(root / "tiny.yaml")
    runs = []
    for width in (8, 16):
        result = CliRunner().invoke(app, ["train", str(config), f"model.hidden_dim={width}", "--out",
                                          str(root / "outputs")])
        assert result.exit_code == 0, result.output
        runs.append(Path(result.stdout.strip().splitlines()[-1].removeprefix("run directory: ").strip()))
    return runs
