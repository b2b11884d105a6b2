"""Progress reporting: a tqdm bar on a terminal wide enough for one, plain log lines otherwise (logs, CI,
pipes, and terminals that report no width, as some CI pseudo-terminals do)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["MIN_BAR_WIDTH", "Progress", "terminal_size"]

#: Narrower terminals (and those of unknown width) get plain log lines instead of a bar.
MIN_BAR_WIDTH = 40


def terminal_size(stream: IO[Any]) -> os.terminal_size:
    """(columns, lines) of the terminal ``stream`` writes to: ``COLUMNS`` and ``LINES`` where they are positive
    numbers, else what the terminal reports; 0 for what neither tells (not a terminal, or a pseudo-terminal
    that reports a size of 0 x 0, as some CI machines' do)."""
    try:
        reported = tuple(os.get_terminal_size(stream.fileno()))
    except (AttributeError, ValueError, OSError):
        reported = (0, 0)
    size = []
    for name, value in zip(("COLUMNS", "LINES"), reported, strict=True):
        try:
            given = int(os.environ.get(name, ""))
        except ValueError:
            given = 0
        size.append(given if given > 0 else max(0, value))
    return os.terminal_size(size)


def _is_terminal(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Reports a running epoch. ``update(n, **stats)`` after each batch; ``close()`` at the end.

    Uses tqdm when it is installed and stderr is a terminal at least :data:`MIN_BAR_WIDTH` columns wide;
    otherwise prints one line every ``log_every`` seconds.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, log_every: float = 10.0,
                 write: Callable[[str], None] | None = None) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.log_every = log_every
        self.write = write or (lambda s: print(s, file=sys.stderr, flush=True))
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.stats: dict[str, float] = {}
        self.bar = self._bar(sys.stderr) if enabled else None

    def _bar(self, stream: IO[Any]) -> Any:
        """A tqdm bar on ``stream`` when it is a terminal of a known, sufficient width; else None."""
        width, height = terminal_size(stream) if _is_terminal(stream) else (0, 0)
        if width < MIN_BAR_WIDTH:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        # the size given, not measured by tqdm (each epoch's bar measures afresh): tqdm ignores COLUMNS and takes
        # a terminal's 0 x 0 for -1 x -1, and draws nothing then
        return tqdm(total=self.total, desc=self.desc, leave=False, file=stream, ncols=width, nrows=height or 20)

    def _text(self) -> str:
        return " ".join(f"{k}={v:.4g}" for k, v in self.stats.items())

    def update(self, n: int = 1, **stats: float) -> None:
        self.done += n
        self.stats.update(stats)
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(self._text(), refresh=False)
            return
        now = time.perf_counter()
        if now - self.last >= self.log_every:
            self.last = now
            self.write(f"{self.desc} {self.done}/{self.total} {self._text()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
