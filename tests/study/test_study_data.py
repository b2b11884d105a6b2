"""The study scores the boxes and masks that travel with the loaded data: any dataset that has them, from its
data_root; a dataset without them is refused before any training."""

import json

import pytest
import torch

from attnlab.data import list_datasets, write_idx
from attnlab.study import StudyPreset, run_study
from attnlab.train import TrainConfig


@pytest.fixture
def fashion_root(tmp_path):
    """A tiny Fashion-MNIST folder (28 train, 20 test items: a bright rectangle each), not the system one."""
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "fmnist"
    root.mkdir()
    for prefix, n in (("train", 28), ("t10k", 20)):
        items = torch.zeros(n, 28, 28, dtype=torch.uint8)
        for i in range(n):
            y, x = torch.randint(0, 14, (2,), generator=g).tolist()
            items[i, y:y + 12, x:x + 12] = torch.randint(60, 256, (12, 12), generator=g, dtype=torch.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", items)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", (torch.arange(n) % 10).to(torch.uint8))
    return root


def _preset(dataset: str, root, **train) -> StudyPreset:
    cfg = TrainConfig(dataset=dataset, data_root=str(root), epochs=1, batch_size=14, lr=0.05, warmup_epochs=0,
                      **train)
    return StudyPreset(name="tiny", description="a tiny study", train=cfg, attentions=(None, "cbam"),
                       n_localisation=100, n_grid=2, throughput_batch=2, train_batch=2, repeats=1)


def test_study_scores_the_boxes_of_the_data_it_loaded(fashion_root, tmp_path):
    preset = _preset("cluttered-fashion-mnist", fashion_root, limit_test=8,
                     dataset_kwargs={"canvas": 32, "n_clutter": 1, "fragment_size": 5, "cache": False})
    result = run_study(preset, tmp_path / "out", device="cpu", progress=False, log=lambda _: None)
    r = result.results
    # data_root's test split (20 canvases), all of it, though the accuracy is on the first 8 only
    assert r.n_localisation == 20 and r.n_test == 8 and r.n_train == 28
    assert {"energy_pointing_game", "pxap"} <= set(r.models["cbam"].cam) and r.models["cbam"].attention
    saved = json.loads((result.out / "results.json").read_text())
    assert saved["n_localisation"] == 20 and saved["budget"]["train"]["data_root"] == str(fashion_root)


def test_a_dataset_without_boxes_is_refused_in_one_line(fashion_root, tmp_path):
    with pytest.raises(ValueError) as err:
        run_study(_preset("fashion-mnist", fashion_root), tmp_path / "out", device="cpu", progress=False,
                  log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and "'fashion-mnist' has no object boxes" in message
    assert "localisation needs boxes" in message and "datasets with them: cluttered-fashion-mnist" in message
    assert list_datasets(with_boxes=True) == ["cluttered-fashion-mnist"]
    assert not (tmp_path / "out" / "runs").exists()  # refused before any training
