"""Checks that a path can be written before any work is done: a folder that is a folder (or can become one), a
file that is not a folder.

A job that writes its results at the end (a training run, a study, a benchmark) checks its output paths
first, so that a path naming a file where a folder is wanted fails in one line that names it, before
anything is printed or trained, not with ``NotADirectoryError`` an hour later. Nothing is created here.

Example:
    >>> check_directory("report", "the study's output folder (--out)")
    PosixPath('report')
    >>> check_directory("notes.txt", "the run folder (--out)")
    Traceback (most recent call last):
    ValueError: the run folder (--out) 'notes.txt' is a file, not a folder; choose a folder path (...)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_directory", "check_file"]


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (relative paths against the current folder) that exists."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path(path.absolute().anchor)


def _check_creatable(path: Path, what: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder.

    Raises:
        ValueError: the ancestor is a file, or a folder this process cannot write into.
    """
    above = _existing_ancestor(path)
    if not above.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be created: {str(above)!r} is a file, not a folder; choose "
                         "a path whose parents are folders")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r} cannot be created: no permission to write in {str(above)!r}; "
                         "choose a folder you can write to")


def check_directory(path: str | os.PathLike, what: str = "the output folder") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a writable folder or can be created as one.

    Args:
        path: the folder a job will write into (created by the job, with its parents, when missing).
        what: how the message names it, e.g. ``"the run folder (--out)"``.

    Returns:
        ``Path(path)``; nothing is created.

    Raises:
        ValueError: ``path`` is a file (or another non-folder), a folder this process cannot write into, or
            cannot be created because a parent is a file or not writable; the message names the path and
            the fix.
    """
    p = Path(path)
    if str(path) == "":
        raise ValueError(f"{what} is an empty path; give a folder")
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            kind = "a file" if p.is_file() else "not a folder"
            raise ValueError(f"{what} {str(p)!r} is {kind}, not a folder; choose a folder path (a new one is "
                             "created) or move the file away")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{what} {str(p)!r} is a folder you cannot write into; choose another or fix its "
                             "permissions")
        return p
    _check_creatable(p, what)
    return p


def check_file(path: str | os.PathLike, what: str = "the output file") -> Path:
    """``path`` as a :class:`~pathlib.Path` if a file can be written there: not a folder, and its folder
    exists as a writable folder or can be created.

    Args:
        path: the file a job will write (replacing an existing file).
        what: how the message names it, e.g. ``"the results file (--out)"``.

    Returns:
        ``Path(path)``; nothing is created.

    Raises:
        ValueError: ``path`` is a folder, or its folder cannot be written or created; the message names the
            path and the fix.
    """
    p = Path(path)
    if str(path) == "":
        raise ValueError(f"{what} is an empty path; give a file name")
    if p.is_dir():
        raise ValueError(f"{what} {str(p)!r} is a folder, not a file; give a file path, e.g. "
                         f"{str(p / 'results.md')!r}")
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{what} {str(p)!r} cannot be replaced: no permission to write it; choose another path")
    parent = p.absolute().parent
    if not parent.exists():
        _check_creatable(parent, f"the folder of {what} {str(p)!r},")
    elif not parent.is_dir():
        raise ValueError(f"{what} {str(p)!r} cannot be written: {str(parent)!r} is a file, not a folder; choose a "
                         "path whose parents are folders")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(p)!r} cannot be written: no permission to write in {str(parent)!r}; choose "
                         "a folder you can write to")
    return p
