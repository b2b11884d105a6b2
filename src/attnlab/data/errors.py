"""Errors raised by ``attnlab.data``: each names the file at fault and how to get a good one."""

from __future__ import annotations

__all__ = ["DataError", "DataFileNotFoundError"]


class DataError(ValueError):
    """A data file exists but cannot be used (bad magic, wrong size, truncated, undecodable)."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file or folder is missing; the message says how to get it.

    It is both a :class:`DataError` and a :class:`FileNotFoundError`, so either ``except`` catches it.
    """
