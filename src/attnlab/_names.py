"""Name lookup shared by every registry (attention modules, models, datasets, CAM methods).

One behaviour everywhere: names are matched after stripping and lower-casing, and an unknown name
raises a ``ValueError`` that names it, suggests the closest known name and lists all of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["lookup", "unknown_name_error"]

V = TypeVar("V")


def unknown_name_error(kind: str, name: object, known: list[str]) -> ValueError:
    """``ValueError("unknown <kind> 'x'. Did you mean 'y'? Known <kind>s: a, b.")`` (no hint without a close name)."""
    close = difflib.get_close_matches(str(name).strip().lower(), known, n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}.")


def lookup(table: Mapping[str, V], name: str, kind: str, aliases: Mapping[str, str] | None = None) -> V:
    """``table[name]`` after normalising ``name`` (strip, lower case, ``aliases``).

    Raises:
        ValueError: ``name`` is not a string or not in ``table``; see :func:`unknown_name_error`.
    """
    if not isinstance(name, str):
        raise ValueError(f"{kind} names are strings, got {type(name).__name__} {name!r}. "
                         f"Known {kind}s: {', '.join(sorted(table))}.")
    key = name.strip().lower()
    key = (aliases or {}).get(key, key)
    if key not in table:
        raise unknown_name_error(kind, name, sorted(table))
    return table[key]
