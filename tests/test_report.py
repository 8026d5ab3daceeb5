"""`bbbrun report`: one self-contained HTML page, loaded in a real headless Chromium.

The browser checks run where a Chromium is installed (.ci/run installs Debian's
`chromium` where it can); elsewhere they skip, saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from conftest import write_config
from test_benchmark import FAST, ROOT, toy_folder
from typer.testing import CliRunner

from bbbrun.cli import app

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed (apt-get install chromium)")
# Written into the page only for the test: once everything has loaded, it records what the browser made of
# each image and table in a <pre id="probe">, which --dump-dom then prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                                 height: i.naturalHeight}));
  const tables = [...document.querySelectorAll("table")].map(t => t.rows.length);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({images, tables, title: document.title});
  document.body.appendChild(probe);
});
</script>"""


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--no-first-run", "--virtual-time-budget=10000"]
    return subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def loaded_in_browser(page: Path) -> dict:
    """The probe's findings for `page`, loaded from disk by Chromium with the network turned off."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = browser("--dump-dom", "--proxy-server=127.0.0.1:9", probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the browser printed no probe:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page: Path, out: Path) -> None:
    """A screenshot of the top of the page; BBBRUN_REPORT_SCREENSHOTS=DIR keeps a copy to look at."""
    done = browser(f"--screenshot={out}", "--window-size=1280,1800", page.as_uri())
    assert out.is_file(), done.stderr[-2000:]
    pixels = plt.imread(out)
    assert pixels.shape[:2] == (1800, 1280) and pixels.std() > 0.05  # not a blank page
    keep = os.environ.get("BBBRUN_REPORT_SCREENSHOTS")
    if keep:
        shutil.copy(out, Path(keep) / f"{page.parent.name}_{out.name}")


def report(target: Path, *args: str) -> Path:
    result = CliRunner().invoke(app, ["report", str(target), *args])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().removeprefix("wrote "))


def embedded_images(html: str) -> int:
    return len(re.findall(r'<img src="data:image/png;base64,', html))


def test_a_run_report_is_self_contained_and_holds_the_runs_facts(two_runs: list[Path], tmp_path: Path) -> None:
    page = report(two_runs[0], "--out", str(tmp_path / "run.html"))
    html = page.read_text()
    # Nothing on the page is fetched from anywhere: every src/href is a data: URI (or none exists).
    assert not re.findall(r'(?:src|href)="(?!data:)', html)
    assert embedded_images(html) == len(list(two_runs[0].glob("*.png"))) == 4
    metrics = json.loads((two_runs[0] / "metrics.json").read_text())
    provenance = json.loads((two_runs[0] / "run.json").read_text())
    for text in (f"{metrics['val_rmse']:.5g}", "hidden_dim: 8", provenance["started_at"], "torch_threads",
                 provenance["versions"]["torch"]):
        assert text in html, text


def test_by_default_the_report_goes_into_the_directory(two_runs: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_runs[1], run)
    assert report(run) == run / "report.html"


def test_report_of_something_else_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a run, sweep or benchmark directory" in result.stderr
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "is not a directory" in result.stderr


@pytest.fixture(scope="module")
def sweep_and_benchmark(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    config = write_config(root / "tiny.yaml", train={"epochs": 10})
    result = CliRunner().invoke(app, ["sweep", str(config), "model.hidden_dim=4,8", "seed=0,1", "--executor",
                                      "serial", "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["benchmark", "uci", str(toy_folder(root / "toyset")), *FAST, "--config",
                                      str(ROOT / "configs" / "uci.yaml"), "--executor", "serial",
                                      "--out", str(root / "out")])
    assert result.exit_code == 0, result.output
    (sweep,) = (root / "out" / "sweeps" / "tiny").iterdir()
    (bench,) = (root / "out" / "benchmarks" / "uci").iterdir()
    return sweep, bench


def test_a_sweep_report_ranks_its_runs(sweep_and_benchmark: tuple[Path, Path]) -> None:
    sweep, _ = sweep_and_benchmark
    html = report(sweep).read_text()
    summary = json.loads((sweep / "summary.json").read_text())
    best = summary["runs"][0]
    assert f"Best run: {best['run']}" in html and '<tr class="best">' in html
    # summary.json's settings carry both; the page shows the standard error, as the terminal does
    assert "Mean ± standard error across seeds" in html and "standard deviation across" not in html
    setting = summary["settings"][0]
    assert f"{setting['val_nll_mean']:.4g} ± {setting['val_nll_se']:.2g}" in html
    assert embedded_images(html) == 1 + 2 + 4  # the metric per setting, every run's curves, the best run's figures


def test_a_benchmark_report_puts_published_results_beside_ours(sweep_and_benchmark: tuple[Path, Path]) -> None:
    _, bench = sweep_and_benchmark
    html = report(bench).read_text()
    assert "bbbrun benchmark uci" in html and "toyset" in html and "test RMSE" in html
    figures = len(list(next(bench.glob("000_*")).glob("*.png")))
    assert embedded_images(html) == 1 + 2 + figures


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny two-moons run: a decision map and the validation rows' reliability, rejection and confusion."""
    root = tmp_path_factory.mktemp("classifier")
    result = CliRunner().invoke(app, ["train", str(ROOT / "configs" / "two_moons.yaml"), "data.num_points=200",
                                      "train.epochs=20", "predict.num_samples=20", "--out", str(root)])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("run directory: ").strip())


def test_a_classifier_report_shows_every_figure_the_run_wrote(classifier_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(classifier_run, run)
    shutil.copy(run / "loss.png", run / "snr.png")  # a figure a later command (bbbrun prune) adds
    written = {p.name for p in run.glob("*.png")}
    assert {"decision.png", "val_reliability.png", "val_rejection.png", "val_confusion.png"} <= written
    html = report(run).read_text()
    alts = re.findall(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*)"', html)
    assert embedded_images(html) == len(alts) == len(written) == 6
    assert alts[:2] == ["Loss against epoch", "Decision map: predicted probability and mutual information"]
    assert alts[-1] == "snr"


@needs_browser
def test_chromium_decodes_every_image_and_shows_every_table(two_runs: list[Path],
                                                             sweep_and_benchmark: tuple[Path, Path],
                                                             classifier_run: Path, tmp_path: Path) -> None:
    pages = {"run": report(two_runs[0], "--out", str(tmp_path / "run" / "report.html")),
             "classifier": report(classifier_run, "--out", str(tmp_path / "classifier" / "report.html")),
             "sweep": report(sweep_and_benchmark[0], "--out", str(tmp_path / "sweep" / "report.html")),
             "benchmark": report(sweep_and_benchmark[1], "--out", str(tmp_path / "benchmark" / "report.html"))}
    for kind, page in pages.items():
        found = loaded_in_browser(page)
        html = page.read_text()
        assert len(found["images"]) == embedded_images(html) > 0, kind
        for image in found["images"]:
            assert image["complete"] and image["width"] > 100 and image["height"] > 100, (kind, image)
        assert len(found["tables"]) == html.count("<table>") >= 2 and min(found["tables"]) >= 2, kind
        screenshot(page, page.with_name("screenshot.png"))
