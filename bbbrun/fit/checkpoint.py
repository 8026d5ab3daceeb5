"""Self-describing checkpoints: saved atomically, loaded without running any code.

Everything saved is plain (tensors, numbers, strings, lists, dicts), so
`torch.load(weights_only=True)` can read it; a file holding anything else is
refused, never unpickled.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from bbbrun.bnn.deterministic import make_network
from bbbrun.bnn.layers import layer_layout
from bbbrun.bnn.likelihoods import Likelihood, make_likelihood
from bbbrun.bnn.network import BayesianNetwork
from bbbrun.bnn.standardize import Standardizer
from bbbrun.config import Config, config_from_dict, config_to_dict
from bbbrun.data.base import InputSpec
from bbbrun.errors import CheckpointError, ConfigError
from bbbrun.files import check_readable_file, write_atomic
from bbbrun.fit import integrity
from bbbrun.fit.loop import Trainee, TrainState
from bbbrun.reprs import short_repr

# Version 2: inputs of any width (input_dim, feature_names, per-feature
# statistics) and the likelihood's tensors under "likelihood.". Version 1
# files (one input, scalar statistics) are upgraded on load. A classifier's
# class names are under "classes" (optional: a file without it has none).
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
REQUIRED_KEYS = ("format_version", "config", "epoch", "model", "optimizer", "history", "rng", "status",
                 "input_dim", "feature_names", "target_name", "categories")
V1_LIKELIHOOD_KEYS = ("y_shift", "y_scale", "noise_rho", "fixed_noise_std")


def build_payload(trainee: Trainee, inputs: InputSpec) -> dict[str, Any]:
    model, optimizer, state = trainee.model, trainee.optimizer, trainee.state
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": trainee.shuffle.get_state()}
    if trainee.noise is not None:
        rng["noise"] = trainee.noise.get_state()
    if model.mu.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(model.mu.device)
    return {
        "format_version": FORMAT_VERSION,
        "config": config_to_dict(trainee.cfg),
        "input_dim": model.in_dim,
        "feature_names": list(inputs.feature_names),
        "target_name": inputs.target_name,
        "categories": {k: list(v) for k, v in inputs.categories.items()},
        "classes": list(inputs.classes),
        "epoch": state.epoch,
        "status": state.status,
        "train_seconds": state.train_seconds,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "history": state.history,
        "rng": rng,
    }


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    # The digest lets a load refuse a file whose bytes changed since; serialised to memory first so the
    # file is written in one go.
    payload = {**payload, integrity.DIGEST_KEY: integrity.payload_digest(payload)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, lambda handle: handle.write(buffer.getbuffer()))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint file; every problem becomes one CheckpointError line."""
    check_file(path)
    integrity.check_archive(path)
    try:
        with warnings.catch_warnings():
            # torch warns about odd pickle protocols; the refusal below says all there is to say.
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise CheckpointError(
                f"refusing to load {path}: it holds Python objects that could run code, not only "
                "tensors and plain values; only checkpoints written by bbbrun are accepted"
            ) from None
        raise CheckpointError(f"{path} is corrupted (its pickle cannot be read safely)") from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError):
        # torch's own reason ("Invalid argument", a codec error) would not help the user.
        raise CheckpointError(f"{path} is corrupted or truncated: PyTorch cannot read it as a checkpoint") from None
    payload = check_payload(path, payload)
    integrity.check_finite(path, payload)
    return payload


def check_file(path: Path) -> None:
    """Refuse what is not even a PyTorch zip archive before torch sees it."""
    check_readable_file(path, "checkpoint", CheckpointError)
    try:
        with path.open("rb") as handle:
            head = handle.read(len(ZIP_MAGIC))
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    if not head:
        raise CheckpointError(f"{path} is empty; expected a bbbrun checkpoint")
    if head != ZIP_MAGIC:
        raise CheckpointError(f"{path} is not a checkpoint: bbbrun checkpoints are PyTorch zip files (torch.save)")


def check_payload(path: Path, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"{path} is not a bbbrun checkpoint (no format_version)")
    version = payload["format_version"]
    if not isinstance(version, int) or version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format version {short_repr(version)}; this bbbrun reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    integrity.check_digest(path, payload)
    if version == 1:
        payload = upgrade_v1(payload)
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    return payload


def upgrade_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """A version-1 payload in version 2's shape: one input named x, the likelihood's tensors renamed."""
    state = payload.get("model")
    config = payload.get("config")
    likelihood = config.get("model", {}).get("likelihood") if isinstance(config, dict) else None
    if isinstance(state, dict) and likelihood != "fixed":
        # Version 1 kept a fixed-scale buffer for the heteroscedastic likelihood too, unused there.
        state = {k: v for k, v in state.items() if k != "fixed_noise_std"}
    if isinstance(state, dict):
        renamed = {(f"likelihood.{k}" if k in V1_LIKELIHOOD_KEYS else k): v for k, v in state.items()}
        for key in ("x_shift", "x_scale"):
            if torch.is_tensor(renamed.get(key)):
                renamed[key] = renamed[key].reshape(1)
        payload = {**payload, "model": renamed}
    return {**payload, "format_version": FORMAT_VERSION, "input_dim": 1, "feature_names": ["x"], "target_name": "y",
            "categories": {}}


def inputs_of(payload: dict[str, Any], path: Path) -> InputSpec:
    """The checkpoint's description of its inputs, checked against its input width."""
    names, width, target = payload["feature_names"], payload["input_dim"], payload["target_name"]
    categories, classes = payload["categories"], payload.get("classes", [])
    plain = (isinstance(classes, list) and all(isinstance(c, str) for c in classes)
             and isinstance(names, list) and all(isinstance(n, str) for n in names) and isinstance(target, str)
             and isinstance(categories, dict) and all(isinstance(v, list) and all(isinstance(c, str) for c in v)
                                                      for v in categories.values()))
    if not plain or not isinstance(width, int):
        raise CheckpointError(f"{path} has an unusable input description")
    spec = InputSpec(tuple(names), target, {str(k): tuple(v) for k, v in categories.items()}, tuple(classes))
    if sum(len(spec.categories.get(n, (None,))) for n in names) != width:
        raise CheckpointError(f"{path}: its input columns do not add up to its input width {width}")
    return spec


def config_of(payload: dict[str, Any], path: Path) -> Config:
    try:
        return config_from_dict(payload["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path} holds a config this bbbrun cannot use: {err}") from None


def restore_model(payload: dict[str, Any], cfg: Config, device: torch.device, path: Path) -> BayesianNetwork:
    likelihood = check_restorable(payload, cfg, path)
    model = make_network(cfg.model, in_dim=int(payload["input_dim"]), likelihood=likelihood)
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: model weights do not match its config ({reason_of(err)})") from None
    return model.to(device)


def check_restorable(payload: dict[str, Any], cfg: Config, path: Path) -> Likelihood:
    """Refuse, before the network is built, inputs or weights that do not match the config's sizes.

    Returns the (small) likelihood, which knows the output width: a classifier's is its class count.
    """
    spec = inputs_of(payload, path)  # an inconsistent input description is refused before anything is built
    in_dim = int(payload["input_dim"])
    try:
        likelihood = make_likelihood(cfg.model, Standardizer.identity(in_dim), spec.classes)
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None
    integrity.check_weight_count(path, payload["model"], num_weights(cfg, in_dim, likelihood.output_width))
    return likelihood


def num_weights(cfg: Config, in_dim: int, out_dim: int) -> int:
    """The weights (and as many biases) a network of this config has, computed without building it."""
    return layer_layout([in_dim, *[cfg.model.hidden_dim] * (cfg.model.num_layers - 1), out_dim])[-1].end


def state_of(payload: dict[str, Any]) -> TrainState:
    return TrainState(
        epoch=int(payload["epoch"]), history=list(payload["history"]),
        train_seconds=float(payload.get("train_seconds", 0.0)), status=str(payload["status"]),
    )


def restore_training(payload: dict[str, Any], trainee: Trainee, device: torch.device) -> TrainState:
    """Put weights, optimizer moments and RNG streams back so training goes on as if never stopped."""
    try:
        trainee.model.load_state_dict(payload["model"])
        trainee.optimizer.load_state_dict(payload["optimizer"])
        check_optimizer_shapes(trainee.optimizer)
        restore_rng(payload, trainee, device)
        return state_of(payload)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise CheckpointError(f"its training state does not match its config ({reason_of(err)})") from None


def reason_of(err: Exception, limit: int = 160) -> str:
    """The informative line of a torch error, shortened: load_state_dict puts it second."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        lines = lines[1:]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_optimizer_shapes(optimizer: torch.optim.Optimizer) -> None:
    # load_state_dict does not compare moment shapes; a mismatch would only fail mid-training.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape != param.shape:
                    raise ValueError(f"optimizer {name} has shape {tuple(value.shape)}, not {tuple(param.shape)}")


def restore_rng(payload: dict[str, Any], trainee: Trainee, device: torch.device) -> None:
    rng = payload["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    trainee.shuffle.set_state(rng["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"].cpu(), device)
    if trainee.noise is not None:
        # Checkpoints before the noise had its own stream drew it from the global one of its device.
        legacy = rng["cuda"] if device.type == "cuda" and "cuda" in rng else rng["torch"]
        trainee.noise.set_state(rng.get("noise", legacy).cpu())
