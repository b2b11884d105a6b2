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


def _number_fields() -> list[str]:
    import typing

    from attnlab.train.config import _number_kind

    hints = typing.get_type_hints(TrainConfig)
    return [f.name for f in fields(TrainConfig) if _number_kind(hints[f.name]) is not None]


def test_every_number_field_has_a_range():
    from attnlab.train import config

    assert set(_number_fields()) == set(config.NUMBER_RANGES)


@pytest.mark.parametrize("name, value, words", [
    ("epochs", 0, "--epochs (epochs) must be a whole number >= 1; got 0"),
    ("epochs", -2, "got -2"),
    ("epochs", 2.0, "--epochs (epochs) must be a whole number, got 2.0"),
    ("epochs", True, "must be a whole number, got True"),
    ("batch_size", 0, "--batch-size (batch_size) must be a whole number >= 1"),
    ("lr", 0, "--lr (lr) must be a number > 0; got 0"),
    ("lr", float("nan"), "--lr (lr) must be a finite number, got nan"),
    ("lr", float("inf"), "must be a finite number, got inf"),
    ("lr", "0.1", "must be a finite number, got '0.1'"),
    ("momentum", 1.0, "--momentum (momentum) must be a number in [0, 1); got 1.0"),
    ("momentum", -0.1, "in [0, 1)"),
    ("weight_decay", -1e-4, "--weight-decay (weight_decay) must be a number >= 0"),
    ("warmup_epochs", -1, "--warmup-epochs (warmup_epochs) must be a number >= 0"),
    ("label_smoothing", 1.0, "in [0, 1)"),
    ("seed", -1, "--seed (seed) must be a whole number in [0, 4294967295]; got -1"),
    ("limit_train", 0, "--limit-train (limit_train) must be a whole number >= 1 (leave it out for all); got 0"),
    ("limit_test", -5, "--limit-test (limit_test) must be a whole number >= 1 (leave it out for all); got -5"),
    ("num_threads", 0, "--threads (num_threads) must be a whole number >= 1"),
    ("augment", "yes", "--no-augment (augment) must be True or False, got 'yes'"),
    ("attention_kwargs", [1], "--attention-kwargs (attention_kwargs) must be a dict with string keys"),
    ("dataset", "", "--dataset (dataset) must be a non-empty string"),
    ("device", "gpu", "unknown device 'gpu': use auto, cpu, cuda, cuda:N"),
    ("model", "resnet21", "unknown model 'resnet21'. Did you mean 'resnet20'?"),
    ("attention", "cmab", "unknown attention module 'cmab'. Did you mean 'cbam'?"),
])
def test_a_value_that_cannot_train_is_refused_naming_field_and_flag(name, value, words):
    with pytest.raises(ValueError) as info:
        TrainConfig(**{name: value})
    assert words in str(info.value)


def test_good_values_pass():
    cfg = TrainConfig(limit_train=1, limit_test=None, num_threads=None, lr=1, momentum=0, warmup_epochs=0,
                      weight_decay=0, seed=0, device="cuda:1", attention="CBAM")
    assert cfg.lr == 1 and cfg.device == "cuda:1"  # the device is only parsed here; pick_device checks it exists


def test_attention_options_are_checked_against_the_module():
    with pytest.raises(ValueError, match=r"se \(SqueezeExcitation\) takes no option 'reductoin'. Did you mean "
                                         r"'reduction'\? Its options: reduction, "):
        TrainConfig(attention="se", attention_kwargs={"reductoin": 8})
    with pytest.raises(ValueError, match="option 'reduction' of se must be a number, got 'x'"):
        TrainConfig(attention="se", attention_kwargs={"reduction": "x"})
    with pytest.raises(ValueError, match="option 'kernel_size' of cbam must be a whole number, got 7.5"):
        TrainConfig(attention="cbam", attention_kwargs={"kernel_size": 7.5})
    with pytest.raises(ValueError, match="option 'bias' of se must be true or false"):
        TrainConfig(attention="se", attention_kwargs={"bias": 1})
    assert TrainConfig(attention="eca", attention_kwargs={"kernel_size": None}).attention_kwargs["kernel_size"] is None
    assert TrainConfig(attention="cbam", attention_kwargs={"reduction": 8}).attention_kwargs == {"reduction": 8}


def test_replace_is_checked_too():
    from dataclasses import replace

    with pytest.raises(ValueError, match="--epochs"):
        replace(TrainConfig(), epochs=0)


def test_attention_option_values_of_a_kind_no_annotation_allows_are_refused():
    with pytest.raises(ValueError, match="option 'act' of se must be a string or null, got 3"):
        TrainConfig(attention="se", attention_kwargs={"act": 3})
    with pytest.raises(ValueError, match="option 'inter_channels' of non_local must be a whole number or null"):
        TrainConfig(attention="non_local", attention_kwargs={"inter_channels": "8"})
    assert TrainConfig(attention="se", attention_kwargs={"act": "silu", "reduction": 8.5}).attention_kwargs["act"]


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
