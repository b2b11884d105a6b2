"""evaluate_checkpoint refuses a limit or batch size below 1 before loading anything (0 never means "all")."""

import pytest

from attnlab.train import evaluate_checkpoint


@pytest.mark.parametrize("kwargs, words", [
    ({"limit": 0}, "--limit must be a whole number >= 1 (leave it out for all samples), got 0"),
    ({"limit": -5}, "got -5"),
    ({"limit": 2.5}, "got 2.5"),
    ({"batch_size": 0}, "--batch-size must be a whole number >= 1, got 0"),
    ({"split": "val"}, "split must be 'train' or 'test', got 'val'"),
    ({"device": "gpu"}, "unknown device 'gpu'"),
])
def test_bad_arguments_are_refused_before_the_checkpoint_is_read(tmp_path, kwargs, words):
    with pytest.raises(ValueError) as info:
        evaluate_checkpoint(tmp_path / "missing", **kwargs)  # the checkpoint is not even looked for
    assert words in str(info.value)
