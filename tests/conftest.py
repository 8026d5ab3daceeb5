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
