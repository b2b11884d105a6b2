"""File I/O at the bottom floor: atomic file and directory writes, safetensors read/write, and the checks that
an output path can be written (:mod:`attnlab.fileio.paths`).

Every module of attnlab that replaces a file it or a reader may read back (checkpoints, caches, results, reports,
benchmark tables, compiled kernels) writes it through :mod:`attnlab.fileio.atomic`, so a reader never sees
half a file; safetensors files are read and written with torch alone (:mod:`attnlab.fileio.safetensors`),
so loading a ``.safetensors`` backbone needs no extra package. This package imports nothing else from attnlab.
"""

from .atomic import (
    atomic_directory,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from .paths import check_directory, check_file
from .safetensors import SafetensorsError, load_safetensors, save_safetensors

__all__ = [
    "SafetensorsError", "atomic_directory", "atomic_open", "atomic_path", "atomic_write_bytes", "atomic_write_json",
    "atomic_write_text", "check_directory", "check_file", "load_safetensors", "save_safetensors",
]
