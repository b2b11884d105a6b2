"""TrainConfig: the one definition of every training option (help text, flag, choices in field metadata)."""

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
