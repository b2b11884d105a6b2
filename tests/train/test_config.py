"""TrainConfig: the one definition of every training option (help text, flag, choices in field metadata)."""

import json
from dataclasses import fields

import pytest

from attnlab.train import TrainConfig


def test_every_field_has_help_and_is_documented():
    doc = TrainConfig.__doc__
    for f in fields(TrainConfig):
        assert f.metadata["help"], f.name
        assert f"{f.name}: {f.metadata['help']}" in doc


def test_choices_are_checked_from_the_metadata():
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw; got 'lamb'"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="amp must be one of auto, bf16, fp16, off"):
        TrainConfig(amp="fp8")
    assert TrainConfig(optimizer="adamw", amp="off").optimizer == "adamw"


def test_dict_round_trip_ignores_unknown_keys():
    cfg = TrainConfig(attention="cbam", attention_kwargs={"reduction": 8}, epochs=3, limit_train=10)
    assert TrainConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


def test_every_optimizer_choice_is_built_and_described():
    from torch import nn

    from attnlab.train.optim import OPTIMIZERS, create_optimizer, describe_optimizer, describe_schedule

    choices = next(f for f in fields(TrainConfig) if f.name == "optimizer").metadata["choices"]
    assert set(choices) == set(OPTIMIZERS)
    for name in choices:
        assert create_optimizer(nn.Linear(2, 2), name) is not None
    assert describe_optimizer("sgd", 0.1, 0.9, 5e-4).startswith("SGD with Nesterov momentum 0.9, lr 0.1")
    adamw = describe_optimizer("adamw", 1e-3, 0.9, 0.05)
    assert "Nesterov" not in adamw and adamw.startswith("AdamW (betas 0.9, 0.999), lr 0.001")
    assert describe_schedule(0.5) == "linear warm-up over 0.5 epochs, then cosine decay to zero"
    assert describe_schedule(0) == "cosine decay to zero"


def test_what_cannot_change_a_result_is_declared_once_in_the_fields():
    from attnlab.train import affects_result

    free = {f.name for f in fields(TrainConfig) if not affects_result(f)}
    assert free == {"device", "num_threads", "channels_last", "compile"}


def test_result_changes_names_every_setting_that_differs_with_both_values():
    from attnlab.train import result_changes

    stored = TrainConfig(attention="se", attention_kwargs={"reduction": 8}, lr=0.1, limit_train=64).to_dict()
    given = TrainConfig(attention="se", attention_kwargs={"reduction": 4}, lr=0.05, limit_train=None, seed=1,
                        device="cpu", num_threads=3, channels_last=True, compile=True)
    assert result_changes(stored, given) == {"attention_kwargs": ({"reduction": 8}, {"reduction": 4}),
                                             "lr": (0.1, 0.05), "seed": (0, 1), "limit_train": (64, None)}
    assert result_changes(stored, TrainConfig.from_dict({**stored, "device": "cuda", "num_threads": 8})) == {}


def test_result_changes_reads_a_stored_config_as_json_gives_it_back():
    from attnlab.train import result_changes

    stored = json.loads(json.dumps(TrainConfig(attention_kwargs={"kernel": (3, 5)}, warmup_epochs=1).to_dict()))
    assert result_changes(stored, TrainConfig(attention_kwargs={"kernel": (3, 5)}, warmup_epochs=1.0)) == {}
    del stored["sync_bn"]  # a run written before the field existed: its default
    assert result_changes(stored, TrainConfig(attention_kwargs={"kernel": [3, 5]})) == {}
    assert result_changes(stored, TrainConfig(sync_bn=False, attention_kwargs={"kernel": [3, 5]})) == \
        {"sync_bn": (True, False)}


@pytest.mark.parametrize("name,value,text", [
    ("lr", 0.1, "--lr 0.1"), ("num_threads", 2, "--threads 2"), ("augment", False, "--no-augment"),
    ("augment", True, "without --no-augment"), ("channels_last", False, "--no-channels-last"),
    ("compile", True, "--compile"), ("compile", False, "without --compile"), ("attention", None, "--attention none"),
    ("limit_train", None, "without --limit-train"), ("attention_kwargs", {"r": 8}, "--attention-kwargs '{\"r\": 8}'"),
    ("dataset_kwargs", {"seed": 1}, 'dataset_kwargs={"seed": 1}'),
])
def test_flag_text_says_how_the_command_line_sets_a_value(name, value, text):
    from attnlab.train.config import flag_text

    assert flag_text(name, value) == text
