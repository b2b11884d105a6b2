"""The study scores the boxes and masks that travel with the loaded data: any dataset that has them, from its
data_root; a dataset without them is refused before any training."""

import json

import pytest

from attnlab.data import list_datasets
from attnlab.study import StudyPreset, run_study
from attnlab.train import TrainConfig


@pytest.fixture
def fashion_root(tmp_path, rectangle_fashion):
    """A tiny Fashion-MNIST folder (28 train, 20 test items: a bright rectangle each), not the system one."""
    return rectangle_fashion(tmp_path / "fmnist", 28, 20)


def _preset(dataset: str, root, **train) -> StudyPreset:
    cfg = TrainConfig(dataset=dataset, data_root=str(root), epochs=1, batch_size=14, lr=0.05, warmup_epochs=0,
                      **train)
    return StudyPreset(name="tiny", description="a tiny study", train=cfg, attentions=(None, "cbam"),
                       n_localisation=100, n_grid=2, throughput_batch=2, train_batch=2, repeats=1)


def test_study_scores_the_boxes_of_the_data_it_loaded(fashion_root, tmp_path):
    preset = _preset("cluttered-fashion-mnist", fashion_root, limit_test=8,
                     dataset_kwargs={"canvas": 32, "n_clutter": 1, "fragment_size": 5, "cache": False})
    result = run_study(preset, tmp_path / "out", device="cpu", progress=False, log=lambda _: None)
    (key, r), = result.results.conditions.items()  # one condition: the dataset at the level its options set
    assert key == "cluttered-fashion-mnist-clutter1" and r.condition.clutter == 1
    # data_root's test split (20 canvases), all of it, though the accuracy is on the first 8 only
    assert r.n_localisation == 20 and r.n_test == 8 and r.n_train == 28
    assert {"energy_pointing_game", "pxap", "clutter_share"} <= set(r.models["cbam"].cam)
    assert r.models["cbam"].attention
    saved = json.loads((result.out / "results.json").read_text())
    assert saved["conditions"][key]["n_localisation"] == 20
    assert saved["budget"]["train"]["data_root"] == str(fashion_root)


def test_a_dataset_without_boxes_is_refused_in_one_line(fashion_root, tmp_path):
    with pytest.raises(ValueError) as err:
        run_study(_preset("fashion-mnist", fashion_root), tmp_path / "out", device="cpu", progress=False,
                  log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and "'fashion-mnist' has no object boxes" in message
    assert "localisation needs boxes" in message and "datasets with them: cluttered-fashion-mnist" in message
    assert list_datasets(with_boxes=True) == ["cluttered-fashion-mnist", "photo-cluttered-fashion-mnist"]
    assert not (tmp_path / "out" / "runs").exists()  # refused before any training
