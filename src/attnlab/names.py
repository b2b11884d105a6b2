"""Names in attnlab's registries: one rule for registering, looking up and suggesting them.

Every registry (attention modules, models, datasets, transform presets, CAM methods, activations) is a
plain ``dict`` from name to entry, filled by :func:`register` and read by :func:`lookup`, so that all of
them behave alike:

* a registered name is a non-empty string already in its lookup form (stripped, lower case), and a name
  is never silently given to a second entry (:func:`register` names the entry that holds it);
* a looked-up name is matched after stripping and lower-casing (and an optional alias table);
* an unknown name raises a ``ValueError`` that quotes it, suggests the closest known name when one is
  close (:func:`suggest`) and lists all of them.

Floor 0 of the house: this module imports only the standard library.

Example:
    >>> table: dict[str, int] = {}
    >>> register(table, "cbam", 1, "attention module")
    1
    >>> lookup(table, " CBAM ", "attention module")
    1
    >>> suggest("cmab", ["eca", "cbam", "se"])
    'cbam'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TypeVar

__all__ = ["check_name", "edit_distance", "lookup", "max_edits", "register", "suggest", "unknown_name_error"]

V = TypeVar("V")


def check_name(name: object, kind: str) -> str:
    """``name`` if it can be registered: a non-empty string equal to its stripped, lower-case form.

    Args:
        name: the name to register.
        kind: what the registry holds, for the message (``"attention module"``, ``"model"``, ...).

    Raises:
        ValueError: ``name`` is not a string, is empty, or has upper-case letters or surrounding spaces.
    """
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ValueError(f"{kind} names are non-empty and lower case, got {name!r}")
    return name


def _describe(entry: object) -> str:
    """``module.QualName`` of a class or function, else its ``repr``."""
    qualname = getattr(entry, "__qualname__", None)
    if qualname is None:
        return repr(entry)
    module = getattr(entry, "__module__", None)
    return f"{module}.{qualname}" if module else qualname


def register(table: MutableMapping[str, V], name: str, entry: V, kind: str) -> V:
    """Put ``entry`` into ``table`` under ``name`` (see :func:`check_name`); returns ``entry``.

    Registering the same entry under the same name again does nothing (re-imports are harmless).

    Raises:
        ValueError: ``name`` is not a valid name, or is already registered to another entry (the message
            names that entry).
    """
    check_name(name, kind)
    if name in table and table[name] is not entry:
        raise ValueError(f"{kind} name {name!r} is already registered to {_describe(table[name])}; "
                         f"choose another name")
    table[name] = entry
    return entry


def lookup(table: Mapping[str, V], name: str, kind: str, aliases: Mapping[str, str] | None = None) -> V:
    """``table[name]`` after normalising ``name`` (strip, lower case, then ``aliases``).

    Args:
        table: the registry.
        name: the name as a user wrote it.
        kind: what the registry holds, for the message.
        aliases: other spellings (lower case) -> registered name.

    Raises:
        ValueError: ``name`` is not a string or not in ``table``; see :func:`unknown_name_error`.
    """
    if not isinstance(name, str):
        raise ValueError(f"{kind} names are strings, got {type(name).__name__} {name!r}. "
                         f"Known {kind}s: {', '.join(sorted(table))}.")
    key = name.strip().lower()
    key = (aliases or {}).get(key, key)
    if key not in table:
        raise unknown_name_error(kind, name, sorted(table), extra=sorted(aliases or {}))
    return table[key]


def unknown_name_error(kind: str, name: object, known: list[str], extra: Iterable[str] = ()) -> ValueError:
    """``ValueError("unknown <kind> 'x'. Did you mean 'y'? Known <kind>s: a, b.")``.

    Args:
        kind: what the registry holds.
        name: the unknown name, as written.
        known: the registered names, listed in the message in this order.
        extra: more accepted spellings (aliases) that may be suggested but are not listed.

    The hint is left out when no name is close (see :func:`suggest`).
    """
    close = suggest(str(name), [*known, *extra])
    hint = f" Did you mean {close!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known)}.")


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two adjacent
    letters each count one edit (``edit_distance("cbma", "cbam") == 1``; each letter is edited once)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def max_edits(name: str) -> int:
    """How many edits a suggestion for ``name`` may be away: 1 up to 3 letters, then a third of the length,
    at least 2 (two slips in a 4- to 8-letter name are still recognisable: ``cmab`` -> ``cbam``)."""
    return 1 if len(name) <= 3 else max(2, len(name) // 3)


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (stripped, lower case), or None when none is close.

    Closest by :func:`edit_distance`, at most :func:`max_edits` away; ties go to the longer shared
    prefix, then to the nearer length, then to the shorter name (the user typed a stray letter rather
    than dropped several: ``sse`` -> ``se``, not ``scse``), then alphabetically.

    Example:
        >>> suggest("resnet21", ["resnet18", "resnet20", "resnet32"])
        'resnet20'
    """
    key = name.strip().lower()
    limit = max_edits(key)
    ranked = sorted((edit_distance(key, k), -len(os.path.commonprefix([key, k])), abs(len(k) - len(key)), len(k), k)
                    for k in set(known))
    return ranked[0][-1] if ranked and ranked[0][0] <= limit else None
