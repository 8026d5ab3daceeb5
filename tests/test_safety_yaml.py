"""Hostile or broken YAML (configs, overrides, sweep files) is refused quickly, in one line, before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_config
from refusal import refused, refused_in_child, tree

from bbbrun.config import load_config
from bbbrun.config.safe_yaml import MAX_DEPTH


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """`levels` anchors, each a list of `width` aliases of the one before: width**levels values expanded."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE = [
    ("alias-bomb", alias_bomb(), ["expands to more than"]),
    ("alias-bomb-as-value", alias_bomb() + "name: *a8\n", ["expands to more than"]),
    ("alias-bomb-as-key", alias_bomb() + "? *a8\n: 1\n", ["expands to more than"]),
    ("alias-chain-deep", "".join(f"k{i}: &k{i} [*k{i - 1}]\n" if i else "k0: &k0 [1]\n" for i in range(200)),
     ["levels deep"]),
    ("self-reference", "data: &a [*a]\n", ["contains it"]),
    ("deep-flow", "name: " + "[" * 100_000 + "]" * 100_000 + "\n", ["levels deep"]),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)), ["levels deep"]),
    ("huge-int", "seed: " + "9" * 100_000 + "\n", ["digits"]),
    ("huge-int-in-list", "predict:\n  interval: [" + "1" * 5000 + ", 2]\n", ["digits"]),
    ("duplicate-key", "name: a\nseed: 1\nname: b\n", ["duplicate key 'name'", "line 3"]),
    ("duplicate-nested-key", "train:\n  epochs: 3\n  epochs: 4\n", ["duplicate key 'epochs'"]),
    ("nul-byte", "name: a\x00b\n", ["binary"]),
    ("huge-string-value", "name: " + "x" * 500_000 + "\n", ["name"]),
]


@pytest.mark.parametrize(("text", "expect"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
@pytest.mark.parametrize("command", ["config", "train"])
def test_hostile_yaml_is_refused_in_one_line(tmp_path: Path, command: str, text: str, expect: list[str]) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "train" else [])
    line = refused(args, expect)
    assert len(line) < 400  # the message quotes the value bounded, whatever its size
    assert not (tmp_path / "out").exists()


def test_hostile_yaml_is_refused_quickly_in_a_child_process(tmp_path: Path) -> None:
    """The worst of them, with a time limit: none may expand, recurse or parse for long."""
    for name, text in [("bomb", alias_bomb(12) + "name: *a11\n"), ("deep", "[" * 1_000_000),
                       ("int", "seed: " + "7" * 1_000_000)]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        refused_in_child(["config", str(path)], timeout=60)


NOT_TEXT = [
    ("latin-1", "name: café\n".encode("latin-1"), ["not UTF-8"]),
    ("utf-16", "name: a\n".encode("utf-16"), []),
    ("random-bytes", bytes(range(256)) * 4, []),
]


@pytest.mark.parametrize(("data", "expect"), [c[1:] for c in NOT_TEXT], ids=[c[0] for c in NOT_TEXT])
def test_non_utf8_config_is_refused(tmp_path: Path, data: bytes, expect: list[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    refused(["config", str(path)], expect)


def test_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_config(path).name == "tiny"


def test_yaml_merge_keys_and_small_aliases_still_work(tmp_path: Path) -> None:
    """The refusals leave ordinary YAML alone: an alias reused, a merge key overridden by an explicit key."""
    path = tmp_path / "c.yaml"
    path.write_text("model: &m {hidden_dim: 4}\npredict: {num_samples: 5}\nname: aliased\n")
    assert load_config(path).model.hidden_dim == 4
    merged = tmp_path / "m.yaml"
    merged.write_text("model:\n  <<: {hidden_dim: 4, num_layers: 2}\n  num_layers: 3\n")
    cfg = load_config(merged)
    assert (cfg.model.hidden_dim, cfg.model.num_layers) == (4, 3)


SPECIAL = ["dev-zero", "fifo", "directory"]


@pytest.mark.parametrize("kind", SPECIAL)
@pytest.mark.parametrize("role", ["config", "csv-data", "predict-input", "sweep-file"])
def test_special_files_are_refused_without_blocking(tmp_path: Path, kind: str, role: str,
                                                     tiny_config: Path) -> None:
    """A device, FIFO or directory given as a config, a CSV or a sweep file: one line, at once (no read)."""
    special = {"dev-zero": Path("/dev/zero"), "dev-null": Path("/dev/null"), "fifo": tmp_path / "fifo",
               "directory": tmp_path / "dir"}[kind]
    if kind == "fifo":
        os.mkfifo(special)
    if kind == "directory":
        special.mkdir()
    if not special.exists():
        pytest.skip(f"{special} does not exist here")
    out = tmp_path / "out"
    args = {
        "config": ["train", str(special), "--out", str(out)],
        "csv-data": ["train", str(tiny_config), "data.source=csv", f"data.path={special}", "data.target=y",
                     "--out", str(out)],
        "predict-input": ["predict", str(tmp_path / "missing.pt"), "--input", str(special)],
        "sweep-file": ["sweep", str(special), "--out", str(out), "--dry-run"],
    }[role]
    before = tree(tmp_path)
    line = refused_in_child(args, timeout=60)
    assert "regular file" in line or "directory" in line or "not found" in line, line
    assert tree(tmp_path) == before


OVERRIDES = [
    ("seed=" + "9" * 5000, ["digits"]),
    ("seed=99999999999999999999999", ["seed", "<="]),
    ("train.epochs=.inf", ["train.epochs", "integer"]),
    ("train.epochs=.nan", ["train.epochs", "integer"]),
    ("train.epochs=1.0e+30", ["train.epochs", "<="]),
    ("data.split_seed=-1", ["data.split_seed", ">="]),
    ("name=a/b", ["name", "path separator"]),
    ("name=..", ["name", "starts with"]),
]


@pytest.mark.parametrize(("override", "expect"), OVERRIDES, ids=[o[0][:30] for o in OVERRIDES])
def test_hostile_overrides_are_refused(tiny_config: Path, override: str, expect: list[str]) -> None:
    refused(["config", str(tiny_config), override], expect)
