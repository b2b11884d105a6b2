"""The report reads every fact it states from the typed results: budget run, overrides, machine, baselines,
verdicts, intervals; results.json is the same objects."""

import json

import torch

from attnlab.study import (
    PRESETS,
    ConditionResults,
    Environment,
    GridPictures,
    Interval,
    ModelRow,
    RunRecord,
    StudyResults,
    combine_conditions,
    decide_claim,
)
from attnlab.study.measure import Cost, LocalisationScores
from attnlab.study.report import write_report
from attnlab.study.stats import OVER_IMAGES, WILSON
from attnlab.study.verdict import Evidence

METRICS = ("energy_pointing_game", "object_auc", "clutter_share")


def _row(acc: float, value: float, attention: bool) -> ModelRow:
    scores = {m: Interval(value, value - 0.02, value + 0.02, 1, OVER_IMAGES) for m in METRICS}
    run = RunRecord(seed=0, run="runs/x", test_acc=acc, test_count=100, train_seconds=10.0, seconds_per_epoch=5.0,
                    cam=LocalisationScores({"object_auc": torch.full((4,), value)}), attention=None)
    return ModelRow(accuracy=Interval(acc, acc - 0.05, acc + 0.05, 1, WILSON), cost=None, train_seconds=10.0,
                    seconds_per_epoch=5.0, runs=[run], cam=scores, attention=dict(scores) if attention else None)


def _condition(preset, index: int) -> ConditionResults:
    condition = preset.conditions()[index]
    chance = {m: Interval(0.5, 0.49, 0.51, 1, OVER_IMAGES) for m in METRICS}
    gains = {half: {"cbam": Interval(0.05, 0.01, 0.09, 1, "paired bootstrap 95% over images, one seed")}
             for half in ("focus", "ignore clutter")}
    return ConditionResults(condition=condition, n_train=1000, n_test=200, n_localisation=50,
                            models={"vanilla": _row(0.8, 0.6, False), "cbam": _row(0.82, 0.65, True)},
                            baselines={"uniform map": chance, "centre prior": dict(chance)}, gains=gains)


def _results(preset) -> StudyResults:
    conditions = {c.key: _condition(preset, i) for i, c in enumerate(preset.conditions())}
    last = list(conditions.values())[-1]
    evidence = {half: {"cbam": Evidence((0.05,), (torch.tensor([0.1, 0.0, 0.05]),))}
                for half in ("focus", "ignore clutter")}
    last.verdict = decide_claim(evidence, 1, condition=last.condition.name)
    cost = {n: Cost(params=1000, mflops=1.5, infer_img_s=100.0, train_img_s=50.0) for n in ("vanilla", "cbam")}
    train = preset.train.__class__(**{**preset.train.to_dict(), "device": "cpu"})
    return StudyResults(preset=preset, train=train, conditions=conditions, classes=[str(i) for i in range(10)],
                        cost=cost, halves={"focus": "object_auc", "ignore clutter": "clutter_share"},
                        verdict=combine_conditions({last.condition.name: last.verdict}),
                        environment=Environment("0", "2", "3.11", "cpu", "x86_64 cpu", "Linux", cpu="Xeon Test CPU",
                                                gpu=None, threads=2),
                        command="attnlab study", wall_seconds=12.0)


def _grids() -> dict[str, GridPictures]:
    clutter = torch.zeros(2, 16, 16, dtype=torch.bool)
    clutter[:, :3, :3] = True
    return {"grid-best-x": GridPictures(images=torch.rand(2, 1, 16, 16), titles=["a", "b"],
                                        maps={"vanilla Grad-CAM": torch.rand(2, 16, 16)}, clutter=clutter,
                                        caption="best")}


def _text(html: str) -> str:
    return " ".join(html.split())


def test_header_states_the_budget_every_override_and_the_machine(tmp_path):
    preset = PRESETS["quick"].with_overrides(epochs=3, clutter_levels=(0, 4, 16), seeds=(0,))
    page = _text(write_report(tmp_path, _results(preset), _grids()).read_text())
    assert "<td>training</td><td>3 epochs, batch 64" in page
    assert "<td><code>--epochs</code></td><td>2</td><td>3</td>" in page
    assert "<td><code>--clutter</code></td><td>0, 8</td><td>0, 4, 16</td>" in page
    assert "<td>clutter levels</td><td>0, 4, 16 fragments per canvas</td>" in page
    assert "<td>training canvases</td><td>1,000 per run</td>" in page
    assert "Machine: Xeon Test CPU; 2 threads; GPU: none (device cpu)" in page
    assert "all five models end to end" not in page  # the description of the preset as defined, not this run


def test_baselines_verdicts_and_intervals_come_from_the_objects(tmp_path):
    results = _results(PRESETS["quick"])
    page = write_report(tmp_path, results, _grids()).read_text()
    for key in results.conditions:
        assert page.split(f"id='localisation-{key}'")[1].split("</table>")[0].count("class='baseline'") == 2
    assert "Run as the preset defines it (all five models end to end" in page
    assert "Decision rule, declared before any number" in page and "one seed" in page
    assert "id='per-model-cluttered-fashion-mnist-clutter8'" in page and "p (Holm)" in page
    assert WILSON in page and page.count("data:image/png;base64,") == 3  # accuracy, dose-response, grid


def test_results_json_is_the_same_objects():
    results = _results(PRESETS["quick"])
    d = json.loads(json.dumps(results.to_dict(), default=float))
    assert list(d["conditions"]) == ["cluttered-fashion-mnist-clutter0", "cluttered-fashion-mnist-clutter8"]
    c8 = d["conditions"]["cluttered-fashion-mnist-clutter8"]
    assert c8["clutter"] == 8 and c8["verdict"]["label"] == "undecided" and c8["verdict"]["seeds"] == 1
    assert c8["baselines"]["uniform map"]["object_auc"]["mean"] == 0.5
    assert c8["gains_vs_vanilla"]["focus"]["cbam"]["mean"] == 0.05
    assert d["conditions"]["cluttered-fashion-mnist-clutter0"]["verdict"] is None
    assert d["clutter_levels"] == [0, 8] and d["primary_metrics"] == {"focus": "Grad-CAM object_auc",
                                                                      "ignore clutter": "Grad-CAM clutter_share"}
    assert d["environment"]["cpu"] == "Xeon Test CPU" and d["cost"]["cbam"]["params"] == 1000
