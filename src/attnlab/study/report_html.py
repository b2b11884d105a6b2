"""The report's HTML pieces: escaping, numbers with their intervals, tables, embedded PNGs."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from .stats import Interval

__all__: list[str] = []


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def _ci(d: Interval | None, digits: int = 3) -> str:
    if d is None:
        return "–"
    if not d.has_bounds:
        return _num(d.mean, digits)
    return f"{_num(d.mean, digits)} <span class='small'>[{_num(d.low, digits)}, {_num(d.high, digits)}]</span>"


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(table_id: str, head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    cls = classes or [""] * len(rows)
    body = "".join(f"<tr{f' class={c!r}' if c else ''}>" + "".join(f"<td>{x}</td>" for x in r) + "</tr>"
                   for r, c in zip(rows, cls, strict=True))
    return f"<table id='{table_id}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
