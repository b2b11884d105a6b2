"""The report reads every fact it states from the typed results: budget run, optimiser, margin, intervals."""

import json

import pytest
import torch

from attnlab.study import PRESETS, Environment, GridPictures, Interval, ModelRow, RunRecord, StudyResults, decide
from attnlab.study.measure import Cost, LocalisationScores
from attnlab.study.report import write_report
from attnlab.study.stats import OVER_IMAGES, WILSON

METRICS = ("energy_pointing_game", "pointing_game", "box_iou", "maxboxacc_v2", "pxap")


def _row(acc: float, epg: float, attention: bool) -> ModelRow:
    scores = {m: Interval(epg, epg - 0.02, epg + 0.02, 1, OVER_IMAGES) for m in METRICS}
    run = RunRecord(seed=0, run="runs/x", test_acc=acc, test_count=100, train_seconds=10.0, seconds_per_epoch=5.0,
                    cam=LocalisationScores({"energy_pointing_game": torch.full((4,), epg)}), attention=None)
    return ModelRow(accuracy=Interval(acc, acc - 0.05, acc + 0.05, 1, WILSON),
                    cost=Cost(params=1000, mflops=1.5, infer_img_s=100.0, train_img_s=50.0, infer_time_ratio=1.0,
                              train_time_ratio=1.1), train_seconds=10.0, seconds_per_epoch=5.0, runs=[run],
                    cam=scores, attention=dict(scores) if attention else None)


def _results(preset, **train_changes) -> StudyResults:
    gains = {"cbam": Interval(0.05, 0.01, 0.09, 1, "paired bootstrap 95% over images, one seed")}
    train = preset.train.__class__(**{**preset.train.to_dict(), "device": "cpu", **train_changes})
    return StudyResults(preset=preset, train=train, n_train=1000, n_test=200, n_localisation=50,
                        classes=[str(i) for i in range(10)],
                        models={"vanilla": _row(0.8, 0.5, False), "cbam": _row(0.82, 0.55, True)}, gains=gains,
                        primary_metric="energy_pointing_game", verdict=decide(gains, 1, margin=0.02),
                        environment=Environment("0", "2", "3.11", "cpu", "x86_64 cpu", "Linux"),
                        command="attnlab study", wall_seconds=12.0)


def _grid() -> GridPictures:
    return GridPictures(images=torch.rand(2, 1, 16, 16), titles=["a", "b"],
                        maps={"vanilla Grad-CAM": torch.rand(2, 16, 16)})


def _text(html: str) -> str:
    return " ".join(html.split())


def test_overridden_budget_is_stated_not_the_presets_description(tmp_path):
    preset = PRESETS["full"].with_overrides(epochs=2, limit_train=1000, seeds=(0,))
    page = _text(write_report(tmp_path, _results(preset, epochs=2, limit_train=1000), _grid()).read_text())
    assert "paper-like" not in page
    assert "epochs 2 (preset: 30)" in page and "limit_train 1,000 (preset: all)" in page
    assert "Budget run: 2 epochs, batch 128, SGD with Nesterov momentum 0.9, lr 0.1" in page
    assert "the first 1,000 training images" in page


def test_preset_as_defined_shows_its_description(tmp_path):
    page = _text(write_report(tmp_path, _results(PRESETS["full"]), _grid()).read_text())
    assert "paper-like" in page and "changed for this run" not in page and "all 1,000 training images" in page


def test_optimiser_margin_and_intervals_come_from_the_objects(tmp_path):
    preset = PRESETS["quick"].with_overrides(optimizer="adamw", lr=0.001)
    results = _results(preset, optimizer="adamw", lr=0.001)
    page = _text(write_report(tmp_path, results, _grid()).read_text())
    assert "AdamW (betas 0.9, 0.999), lr 0.001" in page and "Nesterov" not in page
    assert "within ±0.02" in page and "±0.01" not in page  # the verdict's own margin
    assert WILSON in page and OVER_IMAGES in page
    assert "id='results'" in page and "id=\"verdict\"" in page and page.count("data:image/png;base64,") == 4


def test_results_json_is_the_same_objects():
    preset = PRESETS["full"].with_overrides(epochs=2)
    d = json.loads(json.dumps(_results(preset, epochs=2).to_dict(), default=float))
    assert d["models"]["vanilla"]["accuracy"] == {"mean": 0.8, "low": pytest.approx(0.75),
                                                   "high": pytest.approx(0.85), "n": 1, "interval": WILSON}
    assert d["models"]["vanilla"]["attention"] is None and d["models"]["cbam"]["cost"]["params"] == 1000
    assert set(d["models"]["cbam"]["gradcam"]) == set(METRICS)
    assert d["models"]["cbam"]["runs"] == [{"seed": 0, "run": "runs/x", "test_acc": 0.82}]
    assert d["verdict"]["label"] == "undecided" and d["verdict"]["margin"] == 0.02
    assert d["preset"]["train"]["epochs"] == 2 and d["preset"]["overrides"]["epochs"] == {"preset": 30, "run": 2}
    assert d["budget"] == {"n_train": 1000, "n_test": 200, "train": {**d["budget"]["train"], "epochs": 2}}
    assert d["gains_vs_vanilla"]["cbam"]["interval"].startswith("paired bootstrap")
    assert d["primary_metric"] == "Grad-CAM energy_pointing_game" and d["seeds"] == 3
