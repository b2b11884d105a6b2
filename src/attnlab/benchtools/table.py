"""Plain-text and Markdown tables for benchmark output."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..fileio import atomic_write_text

__all__ = ["format_table", "write_markdown"]


def _cells(rows: Sequence[Sequence[object]]) -> list[list[str]]:
    return [[c if isinstance(c, str) else f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table (floats to 3 significant digits)."""
    body = _cells(rows)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]
    numeric = [all(not isinstance(r[i], str) or r[i] == "-" for r in rows) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r).rstrip() for r in body)])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    body = _cells(rows)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def write_markdown(path: str | os.PathLike, title: str, preamble: str, header: Sequence[str],
                   rows: Sequence[Sequence[object]]) -> Path:
    """Write a Markdown results file atomically (a re-run replaces it whole).

    The file reads ``# title``, the preamble, then the table; returns its path.
    """
    return atomic_write_text(path, f"# {title}\n\n{preamble.strip()}\n\n{markdown_table(header, rows)}\n")
