"""Bad input never crashes: every mistake gives one line on stderr, exit 2, and nothing written.

Each case is a command line built from a few prepared files; the same four
promises are checked for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import TINY, write_config
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.fit import integrity
from bbbrun.runs import marker

SKIP_CUDA = "a CUDA device exists here"


def tiny_with(**sections: object) -> str:
    raw: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            raw[key] = {**raw.get(key, {}), **value}
        else:
            raw[key] = value
    return yaml.safe_dump(raw)


# train CONFIG cases: (id, config text, extra args, words in the message)
CONFIG_CASES: list[tuple[str, str, list[str], list[str]]] = [
    ("yaml-syntax", "name: a\ndata:\n  num_points: [1, 2\n", [], ["YAML syntax error", "line"]),
    ("yaml-syntax-line", "name: a\nmodel:\n  hidden_dim: 3\n   bad: 1\n", [], ["line 4"]),
    ("not-a-mapping", "- 1\n- 2\n", [], ["mapping", "list"]),
    ("scalar", "just text\n", [], ["mapping", "str"]),
    ("empty-yaml", "", [], ["empty"]),
    ("comments-only", "# nothing\n", [], ["mapping", "empty"]),
    ("unknown-top-key", tiny_with(seeed=1), [], ["seeed", "did you mean 'seed'"]),
    ("unknown-nested-key", tiny_with(model={"hiden_dim": 3}), [], ["model.hiden_dim", "'model.hidden_dim'"]),
    ("section-not-mapping", tiny_with(model=3), [], ["model must be a mapping"]),
    ("wrong-type-int", tiny_with(train={"epochs": "many"}), [], ["train.epochs", "integer"]),
    ("wrong-type-fraction-int", tiny_with(train={"epochs": 2.5}), [], ["train.epochs", "integer"]),
    ("wrong-type-bool", tiny_with(data={"standardize": "yes please"}), [], ["data.standardize", "true or false"]),
    ("wrong-type-float", tiny_with(optim={"lr": "fast"}), [], ["optim.lr", "number"]),
    ("wrong-type-pair", tiny_with(predict={"interval": 0.9}), [], ["predict.interval", "two numbers"]),
    ("zero-count", tiny_with(train={"epochs": 0}), [], ["train.epochs", ">= 1"]),
    ("negative-count", tiny_with(data={"num_points": -5}), [], ["data.num_points", ">= 2"]),
    ("fraction-high", tiny_with(data={"val_fraction": 1.5}), [], ["data.val_fraction", "< 1"]),
    ("fraction-zero", tiny_with(data={"val_fraction": 0}), [], ["data.val_fraction", "> 0"]),
    ("negative-scale", tiny_with(data={"noise_std": -1}), [], ["data.noise_std", ">= 0"]),
    ("negative-prior", tiny_with(model={"prior_std": -1}), [], ["model.prior_std", "> 0"]),
    ("reversed-range", tiny_with(data={"x_min": 3, "x_max": -3}), [], ["data.x_min", "< data.x_max"]),
    ("reversed-interval", tiny_with(predict={"interval": [0.9, 0.1]}), [], ["predict.interval", "lower < upper"]),
    ("nan", tiny_with(optim={"lr": float("nan")}), [], ["optim.lr", "finite"]),
    ("inf", tiny_with(data={"x_max": float("inf")}), [], ["data.x_max", "finite"]),
    ("nan-string", tiny_with(optim={"lr": "nan"}), [], ["optim.lr", "finite"]),
    ("unknown-device", tiny_with(device="gpu"), [], ["device", "auto, cpu, cuda"]),
    ("unknown-activation", tiny_with(model={"activation": "sigmoid"}), [], ["model.activation", "relu"]),
    ("unknown-prior", tiny_with(model={"prior": "laplace"}), [], ["model.prior", "gaussian", "scale_mixture"]),
    ("unknown-likelihood", tiny_with(model={"likelihood": "student"}), [], ["model.likelihood", "heteroscedastic"]),
    ("override-no-equals", tiny_with(), ["train.epochs"], ["train.epochs", "no '='"]),
    ("override-no-key", tiny_with(), ["=3"], ["'=3'", "no key"]),
    ("override-bad-value", tiny_with(), ["train.epochs=abc"], ["train.epochs", "integer", "abc"]),
    ("override-unknown-key", tiny_with(), ["no.such.key=1"], ["'no'", "override"]),
    ("override-unknown-nested", tiny_with(), ["train.epoch=3"], ["train.epoch", "did you mean 'train.epochs'"]),
    ("override-not-section", tiny_with(), ["seed.x=3"], ["seed", "not a section"]),
    ("override-nan", tiny_with(), ["optim.lr=.nan"], ["optim.lr", "finite"]),
]


def save_crafted(payload: object, path: Path) -> None:
    """Save an edited payload with a digest that matches it, as a crafted file would have: the checks
    behind the digest must still refuse it."""
    if isinstance(payload, dict) and integrity.DIGEST_KEY in payload:
        payload = {**payload, integrity.DIGEST_KEY: integrity.payload_digest(payload)}
    torch.save(payload, path)


def bad_checkpoints(root: Path, good: Path) -> dict[str, Path]:
    """Files given where a checkpoint is expected, each broken in its own way."""
    data = good.read_bytes()
    made = {
        "empty.pt": b"",
        "binary.pt": bytes(range(256)) * 8,
        "text.pt": b"name: not a checkpoint\n",
        "truncated.pt": data[: len(data) // 2],
        "corrupted.pt": data[:100] + bytes(b ^ 0xFF for b in data[100:400]) + data[400:],
    }
    for name, content in made.items():
        (root / name).write_bytes(content)
    payload = torch.load(good, weights_only=True)
    save = save_crafted
    save({**payload, "format_version": 99}, root / "future.pt")
    save({"weights": torch.zeros(3)}, root / "foreign.pt")
    save({k: v for k, v in payload.items() if k != "optimizer"}, root / "incomplete.pt")
    save({**payload, "config": {**payload["config"], "seeed": 1}}, root / "badconfig.pt")
    save({**payload, "model": {"mu": torch.zeros(2)}}, root / "badweights.pt")
    save([1, 2, 3], root / "list.pt")
    optim = payload["optimizer"]
    moments = {0: {**optim["state"][0], "exp_avg": torch.zeros(2)}}
    save({**payload, "optimizer": {**optim, "state": {**optim["state"], **moments}}}, root / "badoptim.pt")
    save({**payload, "rng": {**payload["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}}, root / "badrng.pt")
    (root / "nockpt").mkdir()
    return {p.stem: p for p in root.iterdir()}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained tiny run plus every kind of bad file the cases refer to."""
    root = tmp_path_factory.mktemp("bad")
    config = write_config(root / "tiny.yaml", train={"epochs": 10, "log_every": 10, "checkpoint_every": 10})
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(root / "runs")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (root / "runs" / "tiny").iterdir()
    broken = root / "broken"
    broken.mkdir()
    marker.mark(broken, marker.RUN)  # the resume cases give these files as a run's own
    found = bad_checkpoints(broken, run_dir / "checkpoint.pt")
    (root / "empty.yaml").write_bytes(b"")
    (root / "binary.yaml").write_bytes(b"name: x\n\x00\x01\x02\xff")
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "no_x.csv").write_text("y,z\n1,2\n")
    (root / "header_only.csv").write_text("x\n")
    (root / "text_x.csv").write_text("x\n0.5\nhello\n")
    (root / "nan_x.csv").write_text("x\n0.5\nnan\n")
    (root / "binary.csv").write_bytes(b"\x00\xff\xfe" * 20)
    found.update({"run": run_dir, "ckpt": run_dir / "checkpoint.pt", "config": config, "root": root,
                  "missing": root / "does_not_exist.yaml", "dir": root / "broken" / "nockpt"})
    found.update({p.stem + p.suffix.replace(".", "_"): p for p in root.iterdir() if p.is_file()})
    return found


# other commands and inputs: (id, args with {placeholders}, words in the message)
FILE_CASES: list[tuple[str, list[str], list[str]]] = [
    ("missing-config", ["train", "{missing}"], ["not found", "does_not_exist.yaml"]),
    ("dir-as-config", ["train", "{dir}"], ["is a directory", "config file"]),
    ("empty-config", ["train", "{empty_yaml}"], ["empty"]),
    ("binary-config", ["train", "{binary_yaml}"], ["binary"]),
    ("latin1-config", ["train", "{latin1_yaml}"], ["UTF-8"]),
    ("no-config", ["train"], ["give a config file"]),
    ("cuda-missing", ["train", "{config}", "device=cuda"], ["CUDA is not available"]),
    ("cuda-index", ["train", "{config}", "device=cuda:7"], ["cuda:7"]),
    ("plot-missing", ["plot", "{missing}"], ["not found"]),
    ("plot-dir-without-ckpt", ["plot", "{dir}"], ["without a checkpoint.pt"]),
    ("plot-empty", ["plot", "{empty}"], ["empty"]),
    ("plot-binary", ["plot", "{binary}"], ["not a checkpoint", "zip"]),
    ("plot-text", ["plot", "{text}"], ["not a checkpoint"]),
    ("plot-truncated", ["plot", "{truncated}"], ["truncated"]),
    ("plot-corrupted", ["plot", "{corrupted}"], ["corrupted"]),
    ("plot-config-as-ckpt", ["plot", "{config}"], ["not a checkpoint"]),
    ("plot-future-version", ["plot", "{future}"], ["format version 99", "reads versions 1, 2"]),
    ("plot-foreign", ["plot", "{foreign}"], ["not a bbbrun checkpoint"]),
    ("plot-list", ["plot", "{list}"], ["not a bbbrun checkpoint"]),
    ("plot-incomplete", ["plot", "{incomplete}"], ["missing optimizer"]),
    ("plot-bad-config", ["plot", "{badconfig}"], ["seeed"]),
    ("plot-bad-weights", ["plot", "{badweights}"], ["weights", "do not match"]),
    ("plot-reversed-range", ["plot", "{ckpt}", "--x-min", "2", "--x-max", "1"], ["--x-min must be < --x-max"]),
    ("plot-half-range", ["plot", "{ckpt}", "--x-min", "2"], ["both --x-min and --x-max"]),
    ("predict-empty", ["predict", "{empty}", "--x-min", "0", "--x-max", "1"], ["empty"]),
    ("predict-truncated", ["predict", "{truncated}", "--x-min", "0", "--x-max", "1"], ["truncated"]),
    ("predict-future-version", ["predict", "{future}", "--x-min", "0", "--x-max", "1"], ["format version 99"]),
    ("predict-no-input", ["predict", "{ckpt}"], ["both --x-min and --x-max"]),
    ("predict-nan-range", ["predict", "{ckpt}", "--x-min", "nan", "--x-max", "1"], ["finite"]),
    ("predict-level", ["predict", "{ckpt}", "--x-min", "0", "--x-max", "1", "--level", "1.5"], ["--level"]),
    ("predict-csv-no-x", ["predict", "{ckpt}", "--input", "{no_x_csv}"], ["column named 'x'"]),
    ("predict-csv-header-only", ["predict", "{ckpt}", "--input", "{header_only_csv}"], ["header but no data rows"]),
    ("predict-csv-text", ["predict", "{ckpt}", "--input", "{text_x_csv}"], ["row 2", "hello"]),
    ("predict-csv-nan", ["predict", "{ckpt}", "--input", "{nan_x_csv}"], ["row 2", "finite"]),
    ("predict-csv-binary", ["predict", "{ckpt}", "--input", "{binary_csv}"], ["x"]),
    ("predict-csv-missing", ["predict", "{ckpt}", "--input", "{missing}"], ["not found"]),
    ("predict-csv-dir", ["predict", "{ckpt}", "--input", "{dir}"], ["is a directory"]),
    ("predict-output-dir", ["predict", "{ckpt}", "--x-min", "0", "--x-max", "1", "--output", "{dir}"],
     ["is a directory"]),
    ("resume-empty", ["train", "--resume", "{empty}"], ["empty"]),
    ("resume-truncated", ["train", "--resume", "{truncated}"], ["truncated"]),
    ("resume-dir-without-ckpt", ["train", "--resume", "{dir}"], ["not a run directory made by bbbrun"]),
    ("resume-future-version", ["train", "--resume", "{future}"], ["format version 99"]),
    ("resume-bad-weights", ["train", "--resume", "{badweights}", "train.epochs=20"], ["badweights.pt", "match"]),
    ("resume-bad-optimizer", ["train", "--resume", "{badoptim}", "train.epochs=20"], ["optimizer exp_avg"]),
    ("resume-bad-rng", ["train", "--resume", "{badrng}", "train.epochs=20"], ["badrng.pt", "does not match"]),
    ("resume-model-change", ["train", "--resume", "{run}", "model.hidden_dim=4"], ["only train.* and device"]),
    ("resume-bad-override", ["train", "--resume", "{run}", "train.epochs=abc"], ["train.epochs", "integer"]),
    ("resume-finished", ["train", "--resume", "{run}"], ["already completed", "train.epochs"]),
]


def run_dirs(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_dir()} if root.exists() else set()


def assert_one_line_exit_2(args: list[str], expect: list[str], out: Path) -> None:
    before = run_dirs(out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (args, result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    for word in expect:
        assert word in lines[0], (word, lines[0])
    assert run_dirs(out) == before, "a run directory was created"


@pytest.mark.parametrize(("text", "extra", "expect"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_gives_one_line(tmp_path: Path, text: str, extra: list[str], expect: list[str]) -> None:
    config = tmp_path / "case.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    assert_one_line_exit_2(["train", str(config), *extra, "--out", str(out)], expect, out)
    assert not out.exists()


@pytest.mark.parametrize(("args", "expect"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_file_gives_one_line(
    files: dict[str, Path], tmp_path: Path, args: list[str], expect: list[str]
) -> None:
    if "{config}" in args and "device=cuda" in args and torch.cuda.is_available():
        pytest.skip(SKIP_CUDA)
    filled = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    out = tmp_path / "out"
    if filled[0] in ("train", "plot"):
        filled += ["--out", str(out)]
    snapshot = {p: p.stat().st_mtime_ns for p in files["run"].iterdir()}
    assert_one_line_exit_2(filled, expect, out)
    assert not out.exists()
    assert {p: p.stat().st_mtime_ns for p in files["run"].iterdir()} == snapshot, "the trained run was touched"


@pytest.mark.parametrize("what", ["config", "csv"])
def test_unreadable_file_gives_one_line(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """A file that exists but cannot be read (permissions; root ignores chmod, so the read is made to fail)."""
    target = files["config"] if what == "config" else files["no_x_csv"]
    method = "open"
    real = getattr(Path, method)

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, denied)
    args = ["train", str(target)] if what == "config" else ["predict", str(files["ckpt"]), "--input", str(target)]
    assert_one_line_exit_2(args, ["cannot read", "Permission denied"], tmp_path / "out")
