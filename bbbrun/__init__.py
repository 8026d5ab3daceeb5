"""bbbrun: Bayes-by-Backprop experiments from YAML configs.

The Python API, for notebooks and scripts (the CLI calls the same functions):

    import bbbrun
    run = bbbrun.train("configs/default.yaml", train__epochs=200)   # a Run; or bbbrun.load("outputs/...")
    run.config, run.metrics, run.history, run.provenance
    pred = run.predict(x)               # x (N, num_inputs) or (N,), numpy or torch, in the data's units
    pred.mean, pred.std, pred.epistemic_std, pred.aleatoric_std       # each (N,)
    lower, upper = pred.interval(0.9)   # central 90% interval, noise included
    result = bbbrun.sweep("configs/default.yaml", model__hidden_dim=[16, 32], seed=[0, 1])
    result.records, result.best         # ranked records; the best completed run as a Run

The lower-level pieces the commands are made of are here too:

    session = start_session(load_config(Path("configs/default.yaml"), ["train.epochs=50"]))
    result = run_training(session, new_run_dir(Path("outputs"), session.cfg.name))

    trained = load_model(Path("outputs/default/<timestamp>"))   # config, model, input names

    # a classifier: the sampled class probabilities at inputs x (N, d), their summary and metrics
    summary = summarize_classes(probabilities_at(trained.model, x, trained.cfg.predict, seed=0))

Names are imported on first use, so `import bbbrun` (and `bbbrun --help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers and editors see the real signatures of the front door
    from bbbrun.api import Prediction, Run, SweepResult, load, load_sweep, sweep, train  # noqa: F401

__version__ = "0.1.0"

_API = {
    "load": "bbbrun.api",
    "train": "bbbrun.api",
    "sweep": "bbbrun.api",
    "load_sweep": "bbbrun.api",
    "Run": "bbbrun.api",
    "Prediction": "bbbrun.api",
    "SweepResult": "bbbrun.api",
    "write_report": "bbbrun.report",
    "list_runs": "bbbrun.runs.catalog",
    "compare": "bbbrun.runs.compare",
    "load_config": "bbbrun.config",
    "Config": "bbbrun.config",
    "BbbrunError": "bbbrun.errors",
    "SweepFailed": "bbbrun.errors",
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
