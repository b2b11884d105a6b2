"""Progress output: a bar on a terminal of a known width, plain lines on one that reports 0 columns."""

import io
import os
import sys

import pytest

from attnlab.train.progress import MIN_BAR_WIDTH, Progress, terminal_size


class FakeTerminal(io.StringIO):
    """An in-memory stderr that says it is a terminal (its size comes from a patched ``os.get_terminal_size``)."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2


def _terminal_of(monkeypatch, columns: int, lines: int) -> FakeTerminal:
    """Make stderr a fake terminal that reports ``columns`` x ``lines``."""
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((columns, lines)))
    return fake


@pytest.mark.parametrize("env,reported,size", [
    ({"COLUMNS": "0"}, (0, 0), (0, 0)),           # a CI pseudo-terminal: nothing known
    ({"COLUMNS": "120"}, (0, 0), (120, 0)),       # COLUMNS is all there is
    ({"COLUMNS": "0", "LINES": "x"}, (90, 30), (90, 30)),  # unusable variables: what the terminal says
    ({"COLUMNS": "100", "LINES": "40"}, (90, 30), (100, 40)),  # the variables win, as for shutil
])
def test_terminal_size_takes_positive_variables_else_what_the_terminal_reports(monkeypatch, env, reported, size):
    monkeypatch.delenv("LINES", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _terminal_of(monkeypatch, *reported)
    assert tuple(terminal_size(sys.stderr)) == size


def test_terminal_size_of_a_stream_without_a_terminal_is_zero(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    assert tuple(terminal_size(io.StringIO())) == (0, 0)


@pytest.mark.parametrize("columns", ["0", str(MIN_BAR_WIDTH - 1)])
def test_a_terminal_of_width_zero_or_too_narrow_gets_plain_lines(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    fake = _terminal_of(monkeypatch, 0, 0)
    lines: list[str] = []
    bar = Progress(2, "epoch 1/3", log_every=0, write=lines.append)
    assert bar.bar is None
    bar.update(1, loss=0.5)
    bar.update(1, loss=0.25)
    bar.close()
    assert lines == ["epoch 1/3 1/2 loss=0.5", "epoch 1/3 2/2 loss=0.25"]
    assert fake.getvalue() == ""


def test_a_terminal_of_a_known_width_gets_a_bar_that_size_even_when_it_reports_zero(monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("LINES", raising=False)
    fake = _terminal_of(monkeypatch, 0, 0)
    lines: list[str] = []
    bar = Progress(2, "epoch 1/3", write=lines.append)
    assert (bar.bar.ncols, bar.bar.nrows) == (100, 20)
    bar.update(2, loss=0.5)
    bar.close()
    assert "epoch 1/3:   0%|" in fake.getvalue() and not lines


def test_a_disabled_progress_writes_nothing(monkeypatch):
    fake = _terminal_of(monkeypatch, 120, 40)
    lines: list[str] = []
    bar = Progress(2, "epoch 1/3", enabled=False, log_every=0, write=lines.append)
    bar.update(2, loss=0.5)
    bar.close()
    assert bar.bar is None and not lines and fake.getvalue() == ""
