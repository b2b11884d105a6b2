"""Atomic writes: a file or a directory appears whole under its name, or not at all.

Every writer here fills a hidden sibling of the target (``.NAME.<random>.tmp`` beside ``NAME``, so on the
same file system, with a name no other process can pick) and renames it into place with :func:`os.replace`,
which is atomic: a reader, or another process writing the same name at the same moment, sees the old
content or the complete new one, never a mix, and a writer killed at any moment leaves the old content
intact. When the write raises, the temporary is removed and the error re-raised. File contents are
flushed and ``fsync``-ed before the rename (unless ``fsync=False``), so after a power loss the name holds
the old bytes or all the new ones. New files get the usual permissions (``0o666`` less the umask), as
:func:`open` would give them.

This module is the only place in attnlab that calls :func:`os.replace`; a test keeps it so.

Example:
    >>> atomic_write_json("run/summary.json", {"acc": 0.93})
    >>> with atomic_open("cache/data.pt") as f:        # binary; text with mode="w"
    ...     torch.save(payload, f)
    >>> with atomic_path("cache/lib.so") as tmp:         # a file another program writes by name
    ...     subprocess.run(["cc", "-shared", "-o", str(tmp), "lib.c"], check=True)
    >>> with atomic_directory("run/checkpoints/epoch_0003") as d:
    ...     atomic_write_json(d / "state.json", state)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_directory", "atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text"]

_TRIES = 100  # fresh random names to try before giving up (a clash needs the same 32 random bits)


def _sibling(path: Path, tag: str) -> Path:
    """A hidden, random name beside ``path``: ``.NAME.<8 hex digits><tag>``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{tag}")


def _new_file(path: Path, suffix: str) -> Path:
    """Create an empty file with a fresh hidden name beside ``path`` (exclusively: no other process has it)."""
    for _ in range(_TRIES):
        tmp = _sibling(path, suffix)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path} after {_TRIES} tries")


def _new_dir(path: Path, tag: str) -> Path:
    """Create an empty directory with a fresh hidden name beside ``path``."""
    for _ in range(_TRIES):
        tmp = _sibling(path, tag)
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {path} after {_TRIES} tries")


def _fsync_file(path: Path) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp", fsync: bool = True) -> Iterator[Path]:
    """A temporary file beside ``path`` for a writer that takes a file name; renamed to ``path`` on success.

    The block gets the name of an empty file it may overwrite or re-create (a compiler's ``-o``, a library's
    ``save(filename)``). When the block exits normally, the file is ``fsync``-ed (``fsync=True``) and renamed to
    ``path``, replacing any file there; when it raises, the temporary is removed and nothing else changes.
    Concurrent writers of one ``path`` each get their own temporary; the last rename wins, whole.

    Args:
        path: the file to write; its parent directories are created.
        suffix: the temporary name's ending (``.NAME.<random><suffix>``), for writers that look at it.
        fsync: flush the written data to the disk before the rename.

    Yields:
        The temporary file's path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path, suffix)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, encoding: str = "utf-8", newline: str | None = None,
                fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it becomes ``path`` when the block exits normally.

    Args:
        path: the file to write; its parent directories are created.
        mode: ``"wb"`` (binary) or ``"w"`` (text).
        encoding: text mode only (UTF-8 by default, whatever the locale).
        newline: text mode only, as for :func:`open` (``""`` for the :mod:`csv` module).
        fsync: flush the written data to the disk before the rename.

    Yields:
        The open file object.

    Raises:
        ValueError: ``mode`` is neither ``"w"`` nor ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode 'w' or 'wb', not {mode!r}")
    text = {"encoding": encoding, "newline": newline} if mode == "w" else {}
    with atomic_path(path, fsync=False) as tmp, open(tmp, mode, **text) as f:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview | Iterable[bytes], *,
                       fsync: bool = True) -> Path:
    """Write ``data`` (bytes, or an iterable of byte chunks written in turn) to ``path`` atomically.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    chunks = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    with atomic_open(path, "wb", fsync=fsync) as f:
        for chunk in chunks:
            f.write(chunk)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8 by default; newlines as :func:`open` writes them).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_open(path, "w", encoding=encoding, fsync=fsync) as f:
        f.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1, sort_keys: bool = False,
                      default: Callable[[Any], Any] | None = None, fsync: bool = True) -> Path:
    """Write ``json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default)`` to ``path`` atomically.

    No newline is added after the document.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default), fsync=fsync)


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A hidden sibling directory to fill; renamed to ``path`` when the block exits normally.

    The block writes its files into the yielded (empty) directory, each with the writers above so that
    their data is ``fsync``-ed. When it exits normally the directory is renamed to ``path``; a directory
    already at ``path`` is first moved aside into a hidden sibling, then removed once the new one is in place
    (should the second rename fail, the old directory is moved back). For the instant between the two
    renames ``path`` does not exist: point readers at directories through a pointer file written after
    (as checkpoints do with ``latest.json``). When the block raises, the temporary directory is removed
    and ``path`` is left as it was.

    Args:
        path: the directory to write; its parent directories are created.

    Yields:
        The temporary directory's path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_dir(path, ".tmp")
    try:
        yield tmp
        if path.exists():
            _swap_in(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, path: Path) -> None:
    """Replace the existing directory ``path`` by ``tmp``: move the old one aside, rename, remove the old one.

    A directory cannot be renamed over a non-empty one, hence the detour. Should the second rename fail,
    the old directory is moved back (and if even that fails, it stays whole in the hidden ``.old`` sibling).
    """
    aside = _new_dir(path, ".old")
    try:
        os.replace(path, aside / path.name)
    except BaseException:
        aside.rmdir()
        raise
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside / path.name, path)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)
