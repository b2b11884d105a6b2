import time

import pytest

from attnlab.benchtools import time_paired


def test_time_paired_interleaves_and_ratios():
    order = []
    fast = lambda: order.append("a")  # noqa: E731

    def slow():
        order.append("b")
        time.sleep(0.002)

    t = time_paired({"a": fast, "b": slow}, repeats=5, warmup=1)
    assert order == ["a", "b"] * 6  # warm-up round, then 5 interleaved rounds
    assert len(t.rounds["a"]) == len(t.rounds["b"]) == 5
    assert t.median("b") >= 0.002
    assert t.ratio("b", "a") > 1 and t.ratio("a", "b") < 1


def test_time_paired_inner_reports_per_call():
    calls = []
    t = time_paired({"x": lambda: calls.append(1)}, repeats=3, warmup=0, inner=4)
    assert len(calls) == 12 and len(t.rounds["x"]) == 3


def test_time_paired_rejects_bad_counts():
    with pytest.raises(ValueError):
        time_paired({"x": lambda: None}, repeats=0)
