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


def test_cuda_timings_are_cuda_events(monkeypatch):
    """On a CUDA device each timing is a pair of events (a stand-in CUDA here: events on the wall clock)."""
    import contextlib

    import torch

    made = []

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            made.append(self)

        def record(self) -> None:
            self.t = time.perf_counter()

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, end: "Event") -> float:
            return (end.t - self.t) * 1e3

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    t = time_paired({"sleep": lambda: time.sleep(0.002)}, repeats=2, warmup=0, inner=2, device="cuda")
    assert len(made) == 4 and len(t.rounds["sleep"]) == 2
    assert 0.002 <= t.median("sleep") < 0.05


@pytest.mark.gpu
def test_cuda_events_time_real_work():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    x = torch.randn(4096, 4096, device="cuda")
    t = time_paired({"mm": lambda: x @ x, "add": lambda: x + 1}, repeats=3, warmup=1, device="cuda")
    assert t.ratio("mm", "add") > 1
