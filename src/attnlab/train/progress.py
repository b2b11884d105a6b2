"""Progress reporting: a tqdm bar on a terminal, plain log lines otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

__all__ = ["Progress"]


class Progress:
    """Reports a running epoch. ``update(n, **stats)`` after each batch; ``close()`` at the end.

    Uses tqdm when it is installed and stderr is a terminal; otherwise prints one line every
    ``log_every`` seconds and one at the end.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, log_every: float = 10.0,
                 write: Callable[[str], None] | None = None) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.log_every = log_every
        self.write = write or (lambda s: print(s, file=sys.stderr, flush=True))
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.stats: dict[str, float] = {}
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
            except ImportError:
                self.bar = None

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
