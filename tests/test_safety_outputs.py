"""Every file a command writes stays under its output root; user-named outputs and --resume targets are checked."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml
from conftest import write_config
from refusal import refused, train_tiny, tree
from typer.testing import CliRunner

from bbbrun.cli import app
from bbbrun.runs import marker


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny trained run and a CSV of inputs, in a sandbox whose every file is watched."""
    root = tmp_path_factory.mktemp("safety")
    run = train_tiny(root, train={"epochs": 10, "log_every": 10, "checkpoint_every": 10}, predict={"num_samples": 20})
    config = root / "tiny.yaml"
    inputs = root / "inputs.csv"
    inputs.write_text("x\n0.5\n1.0\n")
    scored = root / "with_y.csv"
    scored.write_text("x,y\n0.5,1\n1.0,2\n")
    return {"root": root, "config": config, "run": run, "ckpt": run / "checkpoint.pt", "inputs": inputs,
            "scored": scored}


BAD_NAMES = [
    ("parent", "../../escape", "path separator"),
    ("absolute", "/tmp/bbbrun-escape", "path separator"),
    ("nested", "a/b", "path separator"),
    ("dot-dot", "..", "starts with '.'"),
    ("dot", ".", "starts with '.'"),
    ("hidden", ".hidden", "starts with '.'"),
    ("backslash", "a\\b", "path separator"),
    ("control", "a\x1b[31mb", "control character"),
    ("newline", "a\nb", "control character"),
    ("too-long", "n" * 300, "longer than"),
]


@pytest.mark.parametrize(("name", "reason"), [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES])
def test_config_names_are_single_safe_components(tmp_path: Path, name: str, reason: str) -> None:
    config = write_config(tmp_path / "c.yaml", name=name)
    before = tree(tmp_path)
    refused(["train", str(config), "--out", str(tmp_path / "out")], ["name", reason])
    assert tree(tmp_path) == before
    assert not Path("/tmp/bbbrun-escape").exists()


@pytest.mark.parametrize(("name", "reason"), [c[1:] for c in BAD_NAMES[:6]], ids=[c[0] for c in BAD_NAMES[:6]])
def test_sweep_file_names_are_single_safe_components(tmp_path: Path, name: str, reason: str) -> None:
    base = write_config(tmp_path / "c.yaml")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"name": name, "config": base.name, "parameters": {"seed": [0, 1]}}))
    before = tree(tmp_path)
    refused(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--executor", "serial"], [reason])
    assert tree(tmp_path) == before


def edited_sweep(tmp_path: Path, edit: dict[str, object]) -> Path:
    """A finished two-run sweep whose sweep.yaml then has its first run's fields replaced by `edit`."""
    base = write_config(tmp_path / "c.yaml", train={"epochs": 3, "log_every": 3, "checkpoint_every": 3},
                        predict={"num_samples": 5})
    result = CliRunner().invoke(app, ["sweep", str(base), "seed=0,1", "--out", str(tmp_path / "out"),
                                      "--executor", "serial"])
    assert result.exit_code == 0, result.output
    (sweep,) = (tmp_path / "out" / "sweeps" / "tiny").iterdir()
    plan = yaml.safe_load((sweep / "sweep.yaml").read_text())
    plan["runs"][0].update(edit)
    (sweep / "run000").mkdir()  # a name a re-derived plan could not produce
    (sweep / "sweep.yaml").write_text(yaml.safe_dump(plan))
    for run in sweep.iterdir():  # make every run pending again, so a resume would write
        if (run / "metrics.json").exists():
            (run / "metrics.json").unlink()
    return sweep


EDITS = [
    ("escape", {"dir_name": "../../escaped"}, ["path separator"]),
    ("absolute", {"dir_name": "/tmp/bbbrun-escaped"}, ["path separator"]),
    ("duplicate", {"dir_name": "001_seed=1"}, ["share a directory"]),
    ("not-a-string", {"dir_name": ["x"]}, ["not a string"]),
    ("bad-index", {"index": "zero"}, ["not an index"]),
]


@pytest.mark.parametrize(("edit", "expect"), [c[1:] for c in EDITS], ids=[c[0] for c in EDITS])
def test_a_hand_edited_sweep_plan_is_refused_on_resume(tmp_path: Path, edit: dict[str, object],
                                                       expect: list[str]) -> None:
    sweep = edited_sweep(tmp_path, edit)
    before = tree(tmp_path)
    refused(["sweep", "--resume", str(sweep), "--executor", "serial"], expect)
    assert tree(tmp_path) == before
    assert not Path("/tmp/bbbrun-escaped").exists()


def resume_targets(tmp_path: Path, trained: dict[str, Path]) -> dict[str, Path]:
    plain = tmp_path / "home"
    plain.mkdir()
    (plain / "notes.txt").write_text("precious\n")
    loose = tmp_path / "downloads"
    loose.mkdir()
    (loose / "checkpoint.pt").write_bytes(trained["ckpt"].read_bytes())
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / marker.MARKER).write_text(json.dumps({"made_by": "someone", "kind": "run"}))
    (forged / "checkpoint.pt").write_bytes(trained["ckpt"].read_bytes())
    sweep_marked = tmp_path / "sweepdir"
    sweep_marked.mkdir()
    marker.mark(sweep_marked, marker.SWEEP)
    (sweep_marked / "checkpoint.pt").write_bytes(trained["ckpt"].read_bytes())
    return {"plain": plain, "loose-dir": loose, "loose-file": loose / "checkpoint.pt", "forged": forged,
            "sweep-as-run": sweep_marked, "missing": tmp_path / "nope"}


@pytest.mark.parametrize("target", ["plain", "loose-dir", "loose-file", "forged", "sweep-as-run", "missing"])
def test_train_resume_accepts_only_a_run_directory_bbbrun_made(tmp_path: Path, trained: dict[str, Path],
                                                                target: str) -> None:
    path = resume_targets(tmp_path, trained)[target]
    before = tree(tmp_path)
    refused(["train", "--resume", str(path), "train.epochs=20"])
    assert tree(tmp_path) == before


@pytest.mark.parametrize("target", ["plain", "run-dir", "forged"])
def test_sweep_resume_accepts_only_a_sweep_directory_bbbrun_made(tmp_path: Path, trained: dict[str, Path],
                                                                  target: str) -> None:
    targets = resume_targets(tmp_path, trained)
    path = {"plain": targets["plain"], "run-dir": trained["run"], "forged": targets["forged"]}[target]
    if target != "run-dir":
        (path / "sweep.yaml").write_text("name: x\nruns: []\n")
    before = tree(tmp_path), tree(trained["run"])
    refused(["sweep", "--resume", str(path)], ["not a sweep directory made by bbbrun"])
    assert (tree(tmp_path), tree(trained["run"])) == before


def hostile_outputs(tmp_path: Path, trained: dict[str, Path]) -> dict[str, Path]:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    sock = tmp_path / "sock.csv"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.close()
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("theirs\n")
    os.chown(foreign, 65534, 65534) if os.geteuid() == 0 else None
    (tmp_path / "adir").mkdir()
    return {"symlink": link, "dangling-symlink": tmp_path / "dangling.csv", "fifo": fifo, "socket": sock,
            "device": Path("/dev/null"), "directory": tmp_path / "adir", "checkpoint": trained["ckpt"],
            "input": trained["inputs"], "run-file": trained["run"] / "history.csv",
            "run-new-file": trained["run"] / "new.csv", "foreign": foreign, "no-parent": tmp_path / "no" / "x.csv"}


OUTPUTS = ["symlink", "dangling-symlink", "fifo", "socket", "device", "directory", "checkpoint", "input",
           "run-file", "run-new-file", "foreign", "no-parent"]


@pytest.mark.parametrize("option", ["predict --output", "evaluate --json"])
@pytest.mark.parametrize("kind", OUTPUTS)
def test_user_named_outputs_must_be_new_or_own_regular_files(tmp_path: Path, trained: dict[str, Path],
                                                             kind: str, option: str) -> None:
    path = hostile_outputs(tmp_path, trained)[kind]
    reading = trained["inputs"] if option.startswith("predict") else trained["scored"]
    path = reading if kind == "input" else path
    if kind == "dangling-symlink":
        path.symlink_to(tmp_path / "created-through-link.csv")
    if kind == "foreign" and os.geteuid() != 0:
        pytest.skip("making a file of another user needs root")
    command, flag = option.split()
    args = [command, str(trained["run"]), "--input", str(reading), flag, str(path)]
    before = tree(tmp_path), tree(trained["run"]), reading.read_text()
    refused(args)
    assert (tree(tmp_path), tree(trained["run"]), reading.read_text()) == before
    assert (tmp_path / "victim.txt").read_text() == "precious\n"
    assert not (tmp_path / "created-through-link.csv").exists()


def test_a_new_output_file_is_written_with_the_umask(tmp_path: Path, trained: dict[str, Path]) -> None:
    old = os.umask(0o027)
    try:
        output = tmp_path / "pred.csv"
        result = CliRunner().invoke(app, ["predict", str(trained["run"]), "--input", str(trained["inputs"]),
                                          "--output", str(output)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert output.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("kind", ["other-run", "file", "symlink"])
def test_plot_out_must_be_a_directory_outside_other_runs(tmp_path: Path, trained: dict[str, Path],
                                                         kind: str) -> None:
    other = tmp_path / "other"
    other.mkdir()
    marker.mark(other, marker.RUN)
    target = {"other-run": other, "file": tmp_path / "f.txt", "symlink": tmp_path / "l"}[kind]
    if kind == "file":
        target.write_text("x\n")
    if kind == "symlink":
        target.symlink_to(other)
    before = tree(tmp_path), tree(trained["run"])
    refused(["plot", str(trained["run"]), "--out", str(target)])
    assert (tree(tmp_path), tree(trained["run"])) == before
