"""Read and write the safetensors format with torch alone (no extra dependency).

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a
JSON header mapping each name to its dtype, shape and [begin, end) byte offsets in the data block
(plus an optional ``__metadata__`` dict of strings), then the raw little-endian tensor bytes. Files
written here load with the ``safetensors`` package and vice versa. Dtypes: those of the package's torch
binding (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, and where this torch has them F8_E4M3,
F8_E4M3FNUZ, F8_E5M2, F8_E5M2FNUZ, C64, U64, U32, U16).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import torch

from .atomic import atomic_write_bytes

__all__ = ["save_safetensors", "load_safetensors", "SafetensorsError"]

_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
# The safetensors package's other names, where this torch has the dtype (float8 from 2.1/2.2, wide uints from 2.3).
_DTYPES.update({getattr(torch, attr): name for attr, name in (
    ("float8_e4m3fn", "F8_E4M3"), ("float8_e4m3fnuz", "F8_E4M3FNUZ"), ("float8_e5m2", "F8_E5M2"),
    ("float8_e5m2fnuz", "F8_E5M2FNUZ"), ("complex64", "C64"), ("uint64", "U64"), ("uint32", "U32"),
    ("uint16", "U16"),
) if hasattr(torch, attr)})
_FROM_NAME = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20


class SafetensorsError(ValueError):
    """A file that is not valid safetensors (truncated, corrupt header, bad offsets)."""


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` to ``path`` atomically (see :mod:`attnlab.fileio.atomic`), in name order.

    Args:
        tensors: name -> tensor of any shape (any device; stored contiguous, on CPU).
        path: the file to write; its parent directories are created.
        metadata: optional str -> str pairs stored in the header.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: a tensor's dtype has no safetensors name (complex128, the quantised dtypes, ...).
    """
    path = Path(path)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"cannot store {name!r} of dtype {t.dtype} in safetensors")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # align the data block to 8 bytes
    atomic_write_bytes(path, [struct.pack("<Q", len(raw)), raw, *blobs])
    return path


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file (written here or by the ``safetensors`` package).

    Returns:
        (name -> tensor on the CPU with its stored dtype and shape, the header's metadata dict).

    Raises:
        FileNotFoundError: the file does not exist.
        SafetensorsError: the file is truncated or its header is corrupt (the message names the file).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise SafetensorsError(f"{path}: truncated safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise SafetensorsError(f"{path}: corrupt safetensors header (length {n}, file {len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SafetensorsError(f"{path}: corrupt safetensors header ({err})") from err
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n:]
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        try:
            dtype = _FROM_NAME[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as err:
            raise SafetensorsError(f"{path}: bad header entry for {name!r}: {info!r}") from err
        itemsize = torch.empty((), dtype=dtype).element_size()
        numel = 1
        for s in shape:
            numel *= s
        if not 0 <= begin <= end <= len(body) or end - begin != numel * itemsize:
            raise SafetensorsError(f"{path}: tensor {name!r} has offsets [{begin}, {end}) outside the file or "
                                   f"not matching its shape {shape} ({info['dtype']}); the file is truncated or "
                                   "corrupt")
        buf = bytearray(body[begin:end])
        t = torch.frombuffer(buf, dtype=torch.uint8) if buf else torch.empty(0, dtype=torch.uint8)
        out[name] = t.view(dtype).reshape(shape).clone() if numel else torch.empty(shape, dtype=dtype)
    return out, dict(meta)
