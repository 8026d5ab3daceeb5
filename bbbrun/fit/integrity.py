"""Checks that make a damaged or hostile checkpoint cost nothing: sizes first, then a digest, then the values.

In order: the zip archive's declared member sizes are bounded before torch
reads (or inflates) anything; after loading, a SHA-256 digest of the whole
payload must match the one stored at save time (a flipped byte is refused,
not used); every floating tensor must be finite; and the sizes its config
implies (layers, widths) must match the tensors present before a model is built.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import torch

from bbbrun.errors import CheckpointError
from bbbrun.reprs import short_repr

DIGEST_KEY = "digest"
MAX_ARCHIVE_BYTES = 4 * 2**30  # all members, inflated
MAX_MEMBERS = 10_000
MAX_INFLATION = 100  # a compressed member may inflate to at most this many times its stored size


def check_archive(path: Path) -> None:
    """Refuse a zip whose members, as declared, would take more than MAX_ARCHIVE_BYTES to read."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{path} is corrupted or truncated: it is not a readable zip archive") from None
    if len(members) > MAX_MEMBERS:
        raise CheckpointError(f"{path} has {len(members)} archive members; a checkpoint has a few dozen")
    total = 0
    for info in members:
        total += info.file_size
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_INFLATION * max(info.compress_size, 1):
            raise CheckpointError(f"{path}: member {short_repr(info.filename)} would inflate from "
                                  f"{info.compress_size} to {info.file_size} bytes; refused")
    if total > MAX_ARCHIVE_BYTES:
        raise CheckpointError(f"{path} declares {total / 2**30:.1f} GiB of contents (limit "
                              f"{MAX_ARCHIVE_BYTES / 2**30:.0f} GiB); refused before reading")


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of every key and value but the digest itself, walked in a fixed order."""
    digest = hashlib.sha256()
    feed(digest, {k: v for k, v in payload.items() if k != DIGEST_KEY})
    return digest.hexdigest()


def feed(digest: Any, value: Any) -> None:
    """Hash `value` with its type, so [1] and (1,) or 1 and 1.0 differ."""
    digest.update(type(value).__name__.encode() + b":")
    if torch.is_tensor(value):
        flat = value.detach().reshape(-1).contiguous().cpu()
        digest.update(f"{flat.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    elif isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: (type(item[0]).__name__, repr(item[0])))
        digest.update(str(len(items)).encode())
        for key, item in items:
            feed(digest, key)
            feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(str(len(value)).encode())
        for item in value:
            feed(digest, item)
    else:
        digest.update(repr(value).encode() + b";")


def check_digest(path: Path, payload: dict[str, Any]) -> None:
    """Refuse a payload whose stored digest does not match its contents (files without one predate digests)."""
    stored = payload.get(DIGEST_KEY)
    if stored is None:
        return
    if not isinstance(stored, str) or stored != payload_digest(payload):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the digest stored when it was saved")


def check_finite(path: Path, payload: dict[str, Any]) -> None:
    """Refuse NaN or infinite weights, statistics or optimizer moments."""
    for section in ("model", "optimizer"):
        for name, tensor in tensors_of(payload.get(section), section):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(f"{path}: {short_repr(name)} holds NaN or infinite values; refused")


def tensors_of(value: Any, name: str) -> list[tuple[str, torch.Tensor]]:
    if torch.is_tensor(value):
        return [(name, value)]
    if isinstance(value, dict):
        return [t for key, item in value.items() for t in tensors_of(item, f"{name}.{key}")]
    if isinstance(value, (list, tuple)):
        return [t for i, item in enumerate(value) for t in tensors_of(item, f"{name}[{i}]")]
    return []


def check_weight_count(path: Path, state: Any, expected: int) -> None:
    """The flat mu and rho must hold exactly the weights the config's layers and widths imply."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: its model weights are not a mapping of tensors")
    for key in ("mu", "rho"):
        tensor = state.get(key)
        if not torch.is_tensor(tensor) or tensor.dim() != 1 or tensor.numel() != expected:
            found = tuple(tensor.shape) if torch.is_tensor(tensor) else short_repr(tensor)
            raise CheckpointError(f"{path}: its config implies {expected} weights but model {key} is {found}; "
                                  "the checkpoint and its config do not match")
