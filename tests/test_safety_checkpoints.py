"""Damaged or crafted checkpoints are refused before they cost anything: digest, finiteness, sizes, bombs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from refusal import refused, train_tiny, tree

from bbbrun.fit import integrity
from bbbrun.fit.checkpoint import load_checkpoint
from bbbrun.reprs import short_repr
from bbbrun.runs import marker


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = train_tiny(tmp_path_factory.mktemp("ckpt"), train={"epochs": 5, "log_every": 5, "checkpoint_every": 5},
                     predict={"num_samples": 10})
    return run / "checkpoint.pt"


def crafted(payload: dict[str, Any], path: Path, digest: bool = True) -> Path:
    """Save a payload as an attacker would: with a digest that matches it (so the checks behind it must hold)."""
    body = {k: v for k, v in payload.items() if k != integrity.DIGEST_KEY}
    torch.save({**body, integrity.DIGEST_KEY: integrity.payload_digest(body)} if digest else body, path)
    return path


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def tensor_offset(data: bytes, payload: dict[str, Any]) -> int:
    """Where model mu's bytes sit in the archive (torch stores tensors uncompressed)."""
    needle = payload["model"]["mu"].numpy().tobytes()[:16]
    return data.index(needle) + 3


def broken_files(good: Path, folder: Path) -> dict[str, Path]:
    payload = torch.load(good, weights_only=True)
    data = good.read_bytes()
    files: dict[str, Path] = {}
    (folder / "flip-tensor.pt").write_bytes(flipped(data, tensor_offset(data, payload)))
    files["flip-tensor"] = folder / "flip-tensor.pt"
    model = payload["model"]
    nan_mu = {**model, "mu": torch.full_like(model["mu"], float("nan"))}
    files["nan-weights"] = crafted({**payload, "model": nan_mu}, folder / "nan.pt")
    inf_rho = {**model, "rho": torch.full_like(model["rho"], float("inf"))}
    files["inf-rho"] = crafted({**payload, "model": inf_rho}, folder / "inf.pt")
    optim = payload["optimizer"]
    state = {k: {**v, "exp_avg": torch.full_like(v["exp_avg"], float("nan"))} for k, v in optim["state"].items()}
    files["nan-moments"] = crafted({**payload, "optimizer": {**optim, "state": state}}, folder / "moments.pt")
    big = {**payload["config"], "model": {**payload["config"]["model"], "hidden_dim": 50_000, "num_layers": 50}}
    files["huge-config"] = crafted({**payload, "config": big}, folder / "huge.pt")
    wide = {**payload["config"], "model": {**payload["config"]["model"], "hidden_dim": 9}}
    files["config-tensor-mismatch"] = crafted({**payload, "config": wide}, folder / "mismatch.pt")
    files["wrong-digest"] = folder / "wrong.pt"
    torch.save({**payload, integrity.DIGEST_KEY: "0" * 64}, files["wrong-digest"])
    files["huge-version"] = crafted({**payload, "format_version": list(range(100_000))}, folder / "version.pt")
    files["huge-samples"] = crafted({**payload, "config": {**payload["config"], "predict": {
        **payload["config"]["predict"], "num_samples": 10**12}}}, folder / "samples.pt")
    files["zip-bomb"] = zip_bomb(folder / "bomb.pt")
    return files


def zip_bomb(path: Path) -> Path:
    """A zip (as torch.save writes) holding a deflated member of 64 MiB of zeros in about 64 KiB: the same
    shape as a bomb of terabytes, refused by its ratio before anything inflates."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", bytes(64 * 2**20))
    assert path.stat().st_size < 2**20
    return path


@pytest.fixture(scope="module")
def broken(good: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broken")
    marker.mark(folder, marker.RUN)  # so --resume reaches the checks on the file itself
    return broken_files(good, folder)


CASES = [
    ("flip-tensor", ["corrupted", "digest"]),
    ("wrong-digest", ["corrupted", "digest"]),
    ("nan-weights", ["NaN or infinite"]),
    ("inf-rho", ["NaN or infinite"]),
    ("nan-moments", ["NaN or infinite"]),
    ("huge-config", ["memory"]),
    ("config-tensor-mismatch", ["do not match"]),
    ("huge-version", ["format version", "..."]),
    ("huge-samples", ["predict.num_samples"]),
    ("zip-bomb", ["inflate"]),
]


@pytest.mark.parametrize(("case", "expect"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["predict", "plot", "resume"])
def test_broken_checkpoints_are_refused_in_one_line(broken: dict[str, Path], tmp_path: Path, case: str,
                                                    expect: list[str], command: str) -> None:
    path = broken[case]
    args = {"predict": ["predict", str(path), "--x-min", "0", "--x-max", "1", "--num-points", "3"],
            "plot": ["plot", str(path), "--out", str(tmp_path / "figs")],
            "resume": ["train", "--resume", str(path), "train.epochs=10"]}[command]
    before = tree(path.parent)
    line = refused(args, expect)
    assert len(line) < 500
    assert tree(path.parent) == before
    assert not (tmp_path / "figs").exists()


def test_a_checkpoint_written_now_carries_a_digest_that_matches(good: Path) -> None:
    payload = torch.load(good, weights_only=True)
    assert payload[integrity.DIGEST_KEY] == integrity.payload_digest(payload)
    assert load_checkpoint(good)["epoch"] == 5


@pytest.mark.parametrize("value", [list(range(10**6)), "x" * 10**6, 10**5000, {"k": [[[[[[1]]]]]]}],
                         ids=["long-list", "long-string", "huge-int", "deep"])
def test_messages_quote_values_boundedly(value: object) -> None:
    assert len(short_repr(value)) <= 80


def test_a_self_referential_value_is_quoted_boundedly() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert len(short_repr(loop)) <= 80


def test_bounded_repr_of_a_huge_alias_list_is_quick() -> None:
    """A billion-item list made of shared references, as a YAML alias bomb builds one."""
    inner: list[object] = ["x"] * 10
    for _ in range(8):
        inner = [inner] * 10
    buffer = io.StringIO()
    buffer.write(short_repr(inner))
    assert len(buffer.getvalue()) <= 80
