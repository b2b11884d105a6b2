"""attnlab.fileio is a bottom floor: it imports the standard library, torch and itself, nothing else of attnlab;
and it is the one module of attnlab that renames files into place."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import attnlab
import attnlab.fileio

SRC = Path(attnlab.__file__).parent
FILEIO = Path(attnlab.fileio.__file__).parent
ALLOWED_THIRD_PARTY = {"torch", "numpy"}
RENAMES = {"replace", "rename", "renames"}  # os.replace and the other renaming calls of os


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in ``path`` (level 0: absolute)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


def test_fileio_imports_nothing_above_it():
    bad = []
    for path in sorted(FILEIO.rglob("*.py")):
        for level, module in _imports(path):
            top = module.split(".")[0]
            if level > 1 or (level == 0 and top == "attnlab"):  # .x stays in fileio/; ..x would climb out
                bad.append(f"{path.name}: {'.' * level}{module}")
            elif level == 0 and top not in ALLOWED_THIRD_PARTY and top not in sys.stdlib_module_names:
                bad.append(f"{path.name}: {module}")
    assert not bad, bad


def _renames(path: Path) -> list[str]:
    """Where ``path`` calls (or names) os.replace / os.rename / os.renames, or imports them from os."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr in RENAMES and isinstance(node.value, ast.Name)
                and node.value.id == "os"):
            hits.append(f"{path.relative_to(SRC)}:{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            hits += [f"{path.relative_to(SRC)}:{node.lineno}: from os import {a.name}" for a in node.names
                     if a.name in RENAMES]
    return hits


def test_only_fileio_renames_files_into_place():
    """Every atomic write goes through attnlab.fileio.atomic: no other module hand-rolls temporary-then-rename."""
    found = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if _renames(p)}
    assert found == {"fileio/atomic.py"}, sorted(h for p in SRC.rglob("*.py") if p.parent != FILEIO
                                                 for h in _renames(p))
