"""Study presets hold a TrainConfig for their budget; overrides reach it and are recorded."""

import json

import pytest

from attnlab.study import PRESETS, get_preset
from attnlab.train import TrainConfig


def test_presets_hold_a_train_config():
    full = get_preset("full")
    assert isinstance(full.train, TrainConfig)
    assert full.train.dataset == "cluttered-fashion-mnist" and full.train.epochs == 30 and full.train.channels_last
    assert full.overrides() == {} and full.to_dict()["overrides"] == {}


def test_overrides_reach_the_train_config_and_are_recorded():
    full = PRESETS["full"]
    p = full.with_overrides(epochs=2, limit_train=1000, limit_test=None, seeds=(0,), n_localisation=50)
    assert p.train.epochs == 2 and p.train.limit_train == 1000 and p.train.limit_test is None
    assert p.seeds == (0,) and p.n_localisation == 50 and p.train.lr == full.train.lr
    assert p.overrides() == {"epochs": (30, 2), "limit_train": (None, 1000), "seeds": ((0, 1, 2), (0,)),
                             "n_localisation": (10000, 50)}
    assert p.with_overrides(epochs=3).overrides()["epochs"] == (30, 3)  # always against the preset as defined
    d = json.loads(json.dumps(p.to_dict()))
    assert d["train"]["epochs"] == 2 and d["overrides"]["epochs"] == {"preset": 30, "run": 2}
    assert full.train.epochs == 30  # the preset itself is untouched


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="epoch"):
        PRESETS["quick"].with_overrides(epoch=3)
