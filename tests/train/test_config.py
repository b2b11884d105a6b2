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
