"""The study end to end on a micro budget (two clutter levels and the photographs, two models, two seeds):
training, measurements, results.json for every level, and the report as a person sees it in headless Chromium
(Debian's chromium, installed by `make test` where missing)."""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from attnlab.data.fashion_mnist import fashion_mnist_root
from attnlab.study import StudyPreset, run_study
from attnlab.train import TrainConfig

pytestmark = pytest.mark.skipif(
    not (fashion_mnist_root() / "train-images-idx3-ubyte.gz").exists()
    and not (fashion_mnist_root() / "train-images-idx3-ubyte").exists(),
    reason="Fashion-MNIST files missing (apt-get install dataset-fashion-mnist)",
)
pytest.importorskip("skimage", reason="the photographs' condition needs scikit-image (pip install 'attnlab[photos]')")

FRAGMENTS, PHOTOS = "cluttered-fashion-mnist", "photo-cluttered-fashion-mnist"
MICRO = StudyPreset(name="micro", description="a test-sized study", attentions=(None, "cbam"), seeds=(0, 1),
                    datasets=(FRAGMENTS, PHOTOS), clutter_levels=(0, 4),
                    train=TrainConfig(dataset=FRAGMENTS, dataset_kwargs={"size": 96, "canvas": 40, "fragment_size": 5},
                                      epochs=1, batch_size=32, lr=0.05, warmup_epochs=0.3, limit_train=64,
                                      limit_test=32),
                    n_localisation=24, n_grid=3, throughput_batch=4, train_batch=4, repeats=1)
RUN = MICRO.with_overrides(clutter_levels=(0, 2))  # as `attnlab study --clutter 0 2` would
KEYS = [f"{FRAGMENTS}-clutter0", f"{FRAGMENTS}-clutter2", PHOTOS]

SCREENSHOT = Path(tempfile.gettempdir()) / "attnlab-report-screenshot.png"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    logs: list[str] = []
    result = run_study(RUN, out, device="cpu", progress=False, log=logs.append)
    return result, logs


def test_results_json_has_every_level_and_condition(study):
    result, _ = study
    res = json.loads((result.out / "results.json").read_text())
    assert list(res["conditions"]) == KEYS and res["clutter_levels"] == [0, 2] and res["seeds"] == 2
    for key, cond in res["conditions"].items():
        assert set(cond["models"]) == {"vanilla", "cbam"} and cond["n_localisation"] == 24 and cond["n_train"] == 64
        assert [r["seed"] for r in cond["models"]["cbam"]["runs"]] == [0, 1]
        assert key.split("-clutter")[0] in cond["models"]["cbam"]["runs"][0]["run"] or PHOTOS in key
        for m in cond["models"].values():
            assert {"object_auc", "clutter_share", "object_share", "energy_pointing_game"} <= set(m["gradcam"])
        assert cond["models"]["vanilla"]["attention"] is None and cond["models"]["cbam"]["attention"]
        assert set(cond["baselines"]) == {"uniform map", "centre prior"}
        assert cond["baselines"]["uniform map"]["object_auc"]["mean"] == pytest.approx(0.5)
        assert set(cond["gains_vs_vanilla"]) == {"focus", "ignore clutter"}
        assert cond["gains_vs_vanilla"]["focus"]["cbam"]["n"] == 2
    assert res["conditions"][KEYS[0]]["models"]["vanilla"]["gradcam"]["clutter_share"]["mean"] == 0  # no clutter
    assert res["conditions"][KEYS[0]]["verdict"] is None  # decided at the highest level only
    for key in KEYS[1:]:
        v = res["conditions"][key]["verdict"]
        assert v["label"] in ("supported", "not supported", "undecided") and v["rule"].startswith("Decision rule")
        assert set(v["halves"]["focus"]["models"]) == {"cbam"}
        assert len(v["halves"]["focus"]["models"]["cbam"]["per_seed_images"]) == 2
    assert res["verdict"]["label"] in ("supported", "not supported", "undecided")
    assert res["preset"]["overrides"]["clutter_levels"] == {"preset": [0, 4], "run": [0, 2]}
    assert res["cost"]["cbam"]["params"] > res["cost"]["vanilla"]["params"] > 0
    assert res["environment"]["cpu"] and res["environment"]["threads"] >= 1


def test_runs_live_in_folders_named_after_condition_and_level(study):
    result, _ = study
    for key in KEYS:
        for name in ("vanilla", "cbam"):
            for seed in (0, 1):
                assert (result.out / "runs" / key / f"{name}-seed{seed}" / "summary.json").is_file()


def test_report_header_states_budget_overrides_and_machine(study):
    result, _ = study
    page = " ".join(result.report.read_text().split())
    assert "<td>training</td><td>1 epoch, batch 32, SGD with Nesterov momentum 0.9, lr 0.05" in page
    assert "<td>training canvases</td><td>64 per run</td>" in page
    assert "<td>test canvases</td><td>24 scored for localisation per condition; accuracy on 32</td>" in page
    assert "<td>seeds</td><td>2 (0, 1)</td>" in page and "<td>clutter levels</td><td>0, 2 fragments" in page
    assert f"{FRAGMENTS}, 0 fragments; {FRAGMENTS}, 2 fragments; {PHOTOS}" in page
    assert "<td><code>--clutter</code></td><td>0, 4</td><td>0, 2</td>" in page
    assert "a test-sized study" not in page  # changed from the preset: the overrides, not its description
    env = result.results.environment
    assert f"Machine: {env.cpu}; {env.threads} threads; GPU: none (device cpu)" in page


def test_every_localisation_table_has_the_baselines_and_the_grids_show_clutter(study):
    result, _ = study
    page = result.report.read_text()
    for key in KEYS:
        table = page.split(f"id='localisation-{key}'")[1].split("</table>")[0]
        assert table.count("class='baseline'") == 2 and "uniform map" in table and "centre prior" in table
    for key in KEYS[1:]:
        assert (result.out / "figures" / f"grid-best-{key}.png").is_file()
        assert (result.out / "figures" / f"grid-clutter-{key}.png").is_file()
        assert f"id='fig-grid-clutter-{key}'" in page
    assert "id='fig-dose-response'" in page and (result.out / "figures" / "dose-response.png").is_file()
    assert "object AUC" in page.split("id='primary'")[1].split("</ul>")[0]
    assert "p (Holm)" in page and "effect size d_z" in page


@pytest.mark.slow
def test_rerun_reuses_finished_runs(study, tmp_path):
    result, _ = study
    logs: list[str] = []
    run_study(RUN, tmp_path / "again", runs_dir=result.out / "runs", device="cpu", progress=False, log=logs.append)
    assert sum("reusing the finished run" in line for line in logs) == 12


def test_report_in_headless_chromium(study):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (make test installs Debian's chromium when run as root)")
    result, _ = study
    url = result.report.resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--user-data-dir=" + tempfile.mkdtemp()]
    shot = subprocess.run([chromium, *flags, "--window-size=1200,2400", f"--screenshot={SCREENSHOT}",
                           "--enable-logging=stderr", "--v=0", url], capture_output=True, text=True, timeout=120)
    console = [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if "ERROR:CONSOLE" in line or "Uncaught" in line or "attnlab-report:" in line]
    ok = [re.search(r"attnlab-report-ok tables=(\d+) images=(\d+)", line) for line in console]
    ok = [m for m in ok if m]
    assert ok, f"the page's load check did not run: {console}"
    assert int(ok[0].group(1)) >= 10 and int(ok[0].group(2)) >= 7  # tables, and every figure decoded
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 20_000
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'id="results"' in dom and 'id="verdict"' in dom and 'id="budget"' in dom and "data:image/png;base64," in dom
