"""How configs/classify.yaml was chosen: candidate settings scored on VALIDATION rows of scikit-learn's bundled
classification sets (iris, wine, breast_cancer, digits; needs bbbrun[sklearn]).

Each set is split as a CSV would be with configs/classify.yaml's data section (20% test rows, never read here;
20% of the rest validate). Every candidate trains with seed 0 on each set; the table gives each set's
validation NLL, accuracy and ECE and the candidates' mean validation NLL, the choice criterion (lowest wins).

    python benchmarks/tune_classify.py [--candidates C1,C2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bbbrun.config import config_from_dict
from bbbrun.runs.layout import new_run_dir
from bbbrun.runs.runner import run_training
from bbbrun.runs.session import start_session

SETS = ("iris", "wine", "breast_cancer", "digits")
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "classify.yaml"
# name: changes to configs/classify.yaml (which holds the winner, C2)
WIDE = {"hidden_dim": 100}
CANDIDATES: dict[str, dict[str, Any]] = {
    "C1": {"model": WIDE},
    "C2": {"model": {"hidden_dim": 50}},
    "C3": {"model": {**WIDE, "num_layers": 2}},
    "C4": {"model": {**WIDE, "prior_std": 0.5}},
    "C5": {"model": WIDE, "optim": {"lr": 0.003}},
    "C6": {"model": {**WIDE, "estimator": "reparameterization"}},
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in changes.items():
        out[section].update(values)
    return out


def score(raw: dict[str, Any], name: str, out: Path) -> dict[str, float]:
    raw = merged(raw, {"data": {"source": "sklearn", "name": name}})
    raw["device"] = "cpu"
    session = start_session(config_from_dict(raw))
    metrics = run_training(session, new_run_dir(out, name)).metrics
    return {k: float(metrics[f"val_{k}"]) for k in ("nll", "accuracy", "ece")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    args = parser.parse_args()
    base = yaml.safe_load(CONFIG.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for candidate in args.candidates.split(","):
            results = {name: score(merged(base, CANDIDATES[candidate]), name, Path(tmp)) for name in SETS}
            cells = "  ".join(f"{n} {r['nll']:.3f}/{r['accuracy']:.3f}/{r['ece']:.3f}" for n, r in results.items())
            mean_nll = statistics.mean(r["nll"] for r in results.values())
            print(f"{candidate}  mean val NLL {mean_nll:.4f}  (nll/accuracy/ece) {cells}", flush=True)


if __name__ == "__main__":
    main()
