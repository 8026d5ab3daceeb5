"""bbbrun: Bayes-by-Backprop experiments from YAML configs.

The Python API, for notebooks and scripts (the CLI calls the same functions):

    from bbbrun import load_config, start_session, new_run_dir, run_training
    session = start_session(load_config(Path("configs/default.yaml"), ["train.epochs=50"]))
    result = run_training(session, new_run_dir(Path("outputs"), session.cfg.name))

    trained = load_model(Path("outputs/default/<timestamp>"))   # config, model, input names

    # a classifier: the sampled class probabilities at inputs x (N, d), their summary and metrics
    summary = summarize_classes(probabilities_at(trained.model, x, trained.cfg.predict, seed=0))

Names are imported on first use, so `import bbbrun` (and `bbbrun --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_config": "bbbrun.config",
    "Config": "bbbrun.config",
    "BbbrunError": "bbbrun.errors",
    "make_dataset": "bbbrun.data",
    "Dataset": "bbbrun.data",
    "BayesianNetwork": "bbbrun.bnn.network",
    "start_session": "bbbrun.runs.session",
    "resume_session": "bbbrun.runs.session",
    "Session": "bbbrun.runs.session",
    "new_run_dir": "bbbrun.runs.layout",
    "RunDir": "bbbrun.runs.layout",
    "run_training": "bbbrun.runs.runner",
    "raise_for_status": "bbbrun.runs.runner",
    "load_model": "bbbrun.runs.inference",
    "predict_csv": "bbbrun.runs.inference",
    "PredictRequest": "bbbrun.runs.inference",
    "predictive_at": "bbbrun.evaluate.predictive",
    "summarize": "bbbrun.evaluate.regression",
    "probabilities_at": "bbbrun.evaluate.predictive",
    "summarize_classes": "bbbrun.evaluate.classification",
    "class_metrics": "bbbrun.evaluate.classification",
    "prune_run": "bbbrun.runs.prune",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'bbbrun' has no attribute {name!r}")
