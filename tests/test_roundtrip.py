"""A checkpoint round trip gives the same predictions as the model that was saved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from bbbrun.config import load_config
from bbbrun.evaluate.predictive import predictive_at
from bbbrun.fit import checkpoint as ckpt
from bbbrun.runs.layout import RunDir, checkpoint_file
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session


def test_save_load_gives_identical_predictions(tiny_config: Path, tmp_path: Path) -> None:
    cfg = load_config(tiny_config, ["model.likelihood=learned", "data.standardize=true"])
    session = start_session(cfg)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert run_training(session, RunDir(run_dir)).status == "completed"
    payload = ckpt.load_checkpoint(checkpoint_file(run_dir / "checkpoint.pt"))
    restored = ckpt.restore_model(payload, ckpt.config_of(payload, run_dir), torch.device("cpu"), run_dir)
    x = session.dataset.x_val
    predict = dataclasses.replace(cfg.predict, num_samples=25)
    original = predictive_at(session.model, x, predict, cfg.seed)
    again = predictive_at(restored, x, predict, cfg.seed)
    assert torch.equal(original.f, again.f) and torch.equal(original.y, again.y)
    assert restored.likelihood.noise_std() == session.model.likelihood.noise_std()
