"""The study end to end on a micro budget: training, measurements, results.json, and the report as a person sees
it in headless Chromium (Debian's chromium, installed by `make test` where missing)."""

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

MICRO = StudyPreset(name="micro", description="a test-sized study", attentions=(None, "cbam"), seeds=(0,),
                    train=TrainConfig(dataset="cluttered-fashion-mnist", dataset_kwargs={"size": 512}, epochs=1,
                                      batch_size=32, lr=0.05, warmup_epochs=0.3, channels_last=True,
                                      limit_train=128, limit_test=64),
                    n_localisation=32, n_grid=3, throughput_batch=8, train_batch=8, repeats=1)

SCREENSHOT = Path(tempfile.gettempdir()) / "attnlab-report-screenshot.png"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    logs: list[str] = []
    result = run_study(MICRO, out, device="cpu", progress=False, log=logs.append)
    return result, logs


def test_results_json_has_every_figure(study):
    result, _ = study
    res = json.loads((result.out / "results.json").read_text())
    assert set(res["models"]) == {"vanilla", "cbam"}
    for m in res["models"].values():
        assert 0 <= m["accuracy"]["mean"] <= 1
        assert m["cost"]["params"] > 0 and m["cost"]["infer_img_s"] > 0 and m["cost"]["train_img_s"] > 0
        assert set(m["gradcam"]) == {"energy_pointing_game", "pointing_game", "box_iou", "maxboxacc_v2", "pxap",
                                     "object_auc"}
    assert res["models"]["vanilla"]["attention"] is None  # no attention module, no attention map
    assert res["models"]["cbam"]["attention"]["energy_pointing_game"]["mean"] >= 0
    assert res["verdict"]["label"] == "undecided"  # one seed: undecided by rule
    assert res["environment"]["torch"] and res["command"].startswith("attnlab study")
    assert (result.out / "figures" / "grid.png").is_file()
    assert res["preset"]["train"]["epochs"] == 1 and res["budget"]["n_train"] == 128 and res["budget"]["n_test"] == 64
    assert result.results.models["cbam"].accuracy.mean == res["models"]["cbam"]["accuracy"]["mean"]


def test_report_states_the_budget_that_ran(study):
    result, _ = study
    page = " ".join(result.report.read_text().split())
    assert "Budget run: 1 epoch, batch 32, SGD with Nesterov momentum 0.9, lr 0.05" in page
    assert "the first 128 training images, accuracy on the first 64 test images; 1 seed." in page
    assert "a test-sized study" in page  # run as defined: the preset's own description


def test_rerun_reuses_finished_runs(study, tmp_path):
    result, _ = study
    logs: list[str] = []
    run_study(MICRO, tmp_path / "again", runs_dir=result.out / "runs", device="cpu", progress=False, log=logs.append)
    assert sum("reusing the finished run" in line for line in logs) == 2


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
    assert int(ok[0].group(1)) >= 3 and int(ok[0].group(2)) >= 3  # tables, and every figure decoded
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 20_000
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "id=\"results\"" in dom and "id=\"verdict\"" in dom and "data:image/png;base64," in dom
