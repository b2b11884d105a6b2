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


def test_study_model_names_include_vanilla_and_are_all_checked():
    from attnlab.study import parse_variants

    assert parse_variants(["vanilla", " SE "]) == (None, "se")
    assert parse_variants(["none", "cbam"]) == (None, "cbam")
    with pytest.raises(ValueError, match=r"unknown study model 'vanila'. Did you mean 'vanilla'\? Known study "
                                         r"models: vanilla, "):
        parse_variants(["se", "vanila"])
    with pytest.raises(ValueError, match="'se' twice"):
        parse_variants(["se", "SE"])
    with pytest.raises(ValueError, match="at least one model"):
        parse_variants([])


@pytest.mark.parametrize("changes, words", [
    ({"attentions": (None, "sse")}, "unknown study model 'sse'"),
    ({"attentions": (None, None)}, "'vanilla' twice"),
    ({"seeds": ()}, "one or more distinct seeds"),
    ({"seeds": (0, 0)}, "distinct seeds"),
    ({"seeds": (-1,)}, "--seeds: each seed must be a whole number in [0, 4294967295], got -1"),
    ({"n_localisation": 0}, "--n-localisation (n_localisation) must be a whole number >= 1, got 0"),
    ({"repeats": -1}, "repeats must be a whole number >= 1"),
    ({"cam_method": "gradcamm"}, "unknown CAM method 'gradcamm'. Did you mean 'gradcam'?"),
    ({"epochs": 0}, "--epochs (epochs) must be a whole number >= 1"),
    ({"limit_train": 0}, "--limit-train (limit_train) must be a whole number >= 1"),
    ({"lr": float("nan")}, "--lr (lr) must be a finite number"),
])
def test_a_study_that_cannot_run_to_its_end_is_refused_up_front(changes, words):
    with pytest.raises(ValueError) as info:
        PRESETS["quick"].with_overrides(**changes)
    assert words in str(info.value)


def test_every_run_config_is_checked_before_the_study_starts():
    from dataclasses import replace

    # reduction suits se but eca takes no such option: refused when the preset is made, not after se has trained
    with pytest.raises(ValueError, match=r"eca \(EfficientChannelAttention\) takes no option 'reduction'"):
        replace(PRESETS["quick"], attentions=(None, "se", "eca"),
                train=replace(PRESETS["quick"].train, attention="se", attention_kwargs={"reduction": 8}))


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ValueError, match="unknown study preset 'quik'. Did you mean 'quick'?"):
        get_preset("quik")


def test_full_runs_every_level_and_both_conditions_with_three_seeds():
    full = get_preset("full")
    assert full.seeds == (0, 1, 2) and full.clutter_levels == (0, 4, 8, 16)
    assert [c.key for c in full.conditions()] == [f"cluttered-fashion-mnist-clutter{n}" for n in (0, 4, 8, 16)] + [
        "photo-cluttered-fashion-mnist"]
    decisive = full.decisive()
    assert decisive["cluttered-fashion-mnist"].clutter == 16
    assert decisive["photo-cluttered-fashion-mnist"].clutter is None


def test_quick_keeps_todays_training_work():
    quick = get_preset("quick")
    # today: 5 variants x 1 seed x 5,000 canvases x 2 epochs; now two levels of 2,500 canvases each
    runs = len(quick.attentions) * len(quick.seeds) * len(quick.conditions())
    work = runs * quick.train.limit_train * quick.train.epochs
    assert work == 5 * 1 * 5000 * 2 and quick.clutter_levels == (0, 8)


def test_conditions_set_the_level_and_keep_each_datasets_own_options():
    from attnlab.study import Condition

    p = get_preset("full").with_overrides(clutter_levels=(2, 6), dataset_kwargs={"size": 64, "fragment_size": 5,
                                                                                  "contrast": 0.3})
    configs = [c.config(p.train) for c in p.conditions()]
    assert [c.dataset_kwargs for c in configs] == [{"size": 64, "fragment_size": 5, "n_clutter": 2},
                                                   {"size": 64, "fragment_size": 5, "n_clutter": 6},
                                                   {"size": 64, "contrast": 0.3}]
    assert configs[2].dataset == "photo-cluttered-fashion-mnist"
    assert Condition("cluttered-fashion-mnist", 1).name == "cluttered-fashion-mnist, 1 fragment"
    assert p.overrides()["clutter_levels"] == ((0, 4, 8, 16), (2, 6))


def test_one_dataset_override_is_the_studys_only_condition():
    p = get_preset("full").with_overrides(dataset="photo-cluttered-fashion-mnist")
    assert [c.key for c in p.conditions()] == ["photo-cluttered-fashion-mnist"]
    assert p.overrides()["datasets"][1] == ("photo-cluttered-fashion-mnist",)


@pytest.mark.parametrize("levels, words", [
    ((-1,), "--clutter: each clutter level must be a whole number >= 0 (fragments per canvas), got -1"),
    ((4, 4), "--clutter names the level 4 twice"),
    ((2.5,), "got 2.5"),
    (("x",), "got 'x'"),
    ((), "at least one clutter level"),
])
def test_bad_clutter_levels_are_one_clear_line(levels, words):
    from attnlab.study import parse_clutter_levels

    with pytest.raises(ValueError) as info:
        parse_clutter_levels(levels)
    assert words in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="clutter"):
        PRESETS["quick"].with_overrides(clutter_levels=levels)


def test_clutter_levels_for_a_study_without_fragments_are_refused():
    with pytest.raises(ValueError, match="--clutter sets the fragments per canvas of cluttered-fashion-mnist, which "
                                         "this study does not run"):
        PRESETS["full"].with_overrides(dataset="photo-cluttered-fashion-mnist", clutter_levels=(4,))
