"""The IDX file format (LeCun's MNIST format, also used by Fashion-MNIST), gzip-compressed or raw.

Layout: two zero bytes, a type byte, a byte with the number of dimensions ``d``; then ``d`` big-endian
uint32 sizes; then the values, big-endian, row-major. MNIST-style labels have magic ``0x00000801``
(uint8, 1-D) and images ``0x00000803`` (uint8, 3-D).

Whether a file is gzip-compressed is decided from its first two bytes (``1f 8b``), not its name, so a
``.gz`` that a browser already decompressed still reads.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, DataFileNotFoundError

__all__ = ["IDX_DTYPES", "find_idx_file", "read_idx", "write_idx"]

#: IDX type byte -> (big-endian numpy dtype, torch dtype)
IDX_DTYPES: dict[int, tuple[str, torch.dtype]] = {
    0x08: (">u1", torch.uint8),
    0x09: (">i1", torch.int8),
    0x0B: (">i2", torch.int16),
    0x0C: (">i4", torch.int32),
    0x0D: (">f4", torch.float32),
    0x0E: (">f8", torch.float64),
}
_TYPE_OF_TORCH = {tdt: code for code, (_, tdt) in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def find_idx_file(root: str | os.PathLike, name: str, hint: str = "") -> Path:
    """The path of IDX file ``name`` under ``root``: ``name.gz`` if present, else the raw ``name``.

    Args:
        root: folder to look in.
        name: file name without ``.gz`` (``"train-images-idx3-ubyte"``).
        hint: how to get the file, appended to the error message.

    Raises:
        DataFileNotFoundError: neither ``name.gz`` nor ``name`` exists; the message names both.
    """
    root = Path(root)
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    msg = f"missing {root / name}.gz (or the uncompressed {name})"
    raise DataFileNotFoundError(f"{msg}: {hint}" if hint else msg)


def _read_bytes(path: Path, hint: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        msg = f"missing {path}"
        raise DataFileNotFoundError(f"{msg}: {hint}" if hint else msg) from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:  # truncated stream, bad CRC, corrupt deflate data
        raise _error(path, f"corrupt or truncated gzip data ({e})", hint) from None


def _error(path: Path, what: str, hint: str) -> DataError:
    return DataError(f"{path}: {what}" + (f"; {hint}" if hint else ""))


def read_idx(path: str | os.PathLike, *, ndim: int | None = None, dtype: torch.dtype | None = None,
             hint: str = "") -> torch.Tensor:
    """Read an IDX file (gzip or raw) into a tensor, validating its header and size.

    Args:
        path: the file.
        ndim: the number of dimensions the caller expects (``None``: any).
        dtype: the element type the caller expects (``None``: any IDX type).
        hint: how to get a good copy of the file, appended to every error message.

    Returns:
        A tensor of the file's shape and type (native byte order, writable, contiguous).

    Raises:
        DataFileNotFoundError: ``path`` does not exist.
        DataError: bad magic (non-zero leading bytes, unknown type, or a type/rank other than ``dtype``/``ndim``),
            a header cut short, corrupt gzip data, or a payload whose byte count differs from the header's
            sizes (truncated or with trailing bytes). The message names the file.

    Example:
        >>> labels = read_idx("train-labels-idx1-ubyte.gz", ndim=1, dtype=torch.uint8)  # doctest: +SKIP
    """
    path = Path(path)
    data = _read_bytes(path, hint)
    if len(data) < 4:
        raise _error(path, f"only {len(data)} bytes, too short for an IDX header (truncated?)", hint)
    magic = int.from_bytes(data[:4], "big")
    zero, type_code, rank = data[0] | data[1] << 8, data[2], data[3]
    if zero != 0 or type_code not in IDX_DTYPES:
        raise _error(path, f"bad magic number 0x{magic:08X}: not an IDX file", hint)
    np_dtype, torch_dtype = IDX_DTYPES[type_code]
    if dtype is not None and torch_dtype != dtype or ndim is not None and rank != ndim:
        want_type = f"{_TYPE_OF_TORCH[dtype]:02X}" if dtype in _TYPE_OF_TORCH else "??"
        want_rank = f"{ndim:02X}" if ndim is not None else "??"
        want = f"{dtype or 'any type'}, {ndim if ndim is not None else 'any'}-D"
        raise _error(path, f"bad magic number 0x{magic:08X} ({torch_dtype}, {rank}-D), "
                           f"expected 0x0000{want_type}{want_rank} ({want})", hint)
    header = 4 + 4 * rank
    if len(data) < header:
        raise _error(path, f"header cut short: {len(data)} bytes, {rank}-D header needs {header} (truncated?)", hint)
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(np_dtype).itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "trailing bytes"
        raise _error(path, f"{kind}: header says shape {shape} ({expected} data bytes), file has {got}", hint)
    array = np.frombuffer(data, dtype=np_dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))


def write_idx(path: str | os.PathLike, tensor: torch.Tensor | np.ndarray, compress: bool | None = None) -> Path:
    """Write ``tensor`` as an IDX file (gzip-compressed when ``compress`` or when ``path`` ends in ``.gz``).

    Used by the tests to build small files, and handy to export subsets.

    Raises:
        ValueError: the dtype has no IDX type code.
    """
    path = Path(path)
    t = torch.as_tensor(tensor).contiguous()
    if t.dtype not in _TYPE_OF_TORCH:
        raise ValueError(f"IDX has no type for {t.dtype}; use one of {sorted(map(str, _TYPE_OF_TORCH))}")
    code = _TYPE_OF_TORCH[t.dtype]
    head = bytes([0, 0, code, t.dim()]) + b"".join(int(s).to_bytes(4, "big") for s in t.shape)
    payload = head + t.numpy().astype(IDX_DTYPES[code][0]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    path.write_bytes(payload)
    return path
