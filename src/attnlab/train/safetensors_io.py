"""Read and write the safetensors format with torch alone (no extra dependency).

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a
JSON header mapping each name to its dtype, shape and [begin, end) byte offsets in the data block
(plus an optional ``__metadata__`` dict of strings), then the raw little-endian tensor bytes. Files
written here load with the ``safetensors`` package and vice versa.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["save_safetensors", "load_safetensors", "SafetensorsError"]

_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
_FROM_NAME = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 2**20


class SafetensorsError(ValueError):
    """A file that is not valid safetensors (truncated, corrupt header, bad offsets)."""


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` to ``path`` atomically (temporary file in the same directory, then rename).

    Args:
        tensors: name -> tensor (any device; stored contiguous, on CPU).
        metadata: optional str -> str pairs stored in the header.
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; returns (tensors, metadata).

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
