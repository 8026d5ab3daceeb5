"""A checkpoint round trip gives the same predictions as the model that was saved."""

from __future__ import annotations

from pathlib import Path

import torch

from bbbrun import checkpoint as ckpt
from bbbrun.config import load_config
from bbbrun.runner import predictive_at, run_training, start_session


def test_save_load_gives_identical_predictions(tiny_config: Path, tmp_path: Path) -> None:
    cfg = load_config(tiny_config, ["model.likelihood=learned", "data.standardize=true"])
    session = start_session(cfg)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert run_training(session, run_dir).status == "completed"
    payload = ckpt.load_checkpoint(run_dir / "checkpoint.pt")
    restored = ckpt.restore_model(payload, ckpt.config_of(payload, run_dir), torch.device("cpu"), run_dir)
    x = session.dataset.x_val
    original, _ = predictive_at(session.model, x, cfg, 25)
    again, _ = predictive_at(restored, x, cfg, 25)
    assert torch.equal(original.f, again.f) and torch.equal(original.y, again.y)
    assert restored.noise_std() == session.model.noise_std()
