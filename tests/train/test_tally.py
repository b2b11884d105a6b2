"""EpochTally: statistics added on the device with no read, and a NaN named by the steps since the last read."""

import pytest
import torch

from attnlab.train.tally import READ_EVERY_S, EpochTally, read_interval

FIX = "Lower --lr (now 0.1) or check the data."


def _step(tally: EpochTally, loss: float, correct: int, n: int = 4) -> None:
    logits = torch.zeros(n, 3)
    logits[:, 1] = 1.0  # predicts class 1
    y = torch.tensor([1] * correct + [0] * (n - correct))
    tally.add(torch.tensor(loss), logits, y)


def test_the_tally_sums_loss_and_accuracy_over_the_images():
    tally = EpochTally("cpu", 0, 0.0, FIX)
    _step(tally, 2.0, 3)
    _step(tally, 1.0, 1, n=2)
    reading = tally.read()
    assert (reading.loss, reading.acc, reading.images) == (pytest.approx(10 / 6), pytest.approx(4 / 6), 6)
    assert tally.totals().tolist() == [10.0, 4.0, 6.0, 0.0]


def test_a_nan_is_named_by_the_steps_since_the_last_read():
    tally = EpochTally("cpu", 1, 0.0, FIX)
    for _ in range(40):
        _step(tally, 1.0, 2)
    tally.read()  # steps 1 to 40 were finite
    for loss in [1.0] * 5 + [float("nan")] + [1.0] * 14:
        _step(tally, loss, 2)
    with pytest.raises(FloatingPointError, match=r"^the training loss became NaN or infinite between step 41 and 60 "
                                                 r"of epoch 2; nothing was saved for this epoch\. Lower --lr"):
        tally.read()


def test_a_nan_found_at_once_names_its_step():
    tally = EpochTally("cpu", 0, 0.0, FIX)
    _step(tally, 1.0, 2)
    tally.read()
    _step(tally, float("inf"), 2)
    with pytest.raises(FloatingPointError, match="became NaN or infinite at step 2 of epoch 1"):
        tally.read()
    assert tally.totals()[3] == 1


def test_another_ranks_nan_is_found_in_the_summed_totals():
    tally = EpochTally("cpu", 4, 0.0, FIX)
    _step(tally, 1.0, 2)
    tally.read()
    summed = tally.totals() + torch.tensor([1.0, 2.0, 4.0, 1.0], dtype=torch.float64)  # another rank's, with a NaN
    with pytest.raises(FloatingPointError, match="on another rank in epoch 5; nothing was saved"):
        tally.check_totals(summed)
    tally.check_totals(tally.totals())  # this rank's own: finite


def test_reads_are_due_by_the_clock(monkeypatch):
    import attnlab.train.tally as module

    now = [100.0]
    monkeypatch.setattr(module.time, "perf_counter", lambda: now[0])
    tally = EpochTally("cpu", 0, READ_EVERY_S, FIX)
    _step(tally, 1.0, 1)
    assert not tally.due()
    now[0] += READ_EVERY_S
    assert tally.due()
    tally.read()
    assert not tally.due()
    assert read_interval(torch.device("cpu")) == 0 and read_interval(torch.device("cuda")) == READ_EVERY_S
