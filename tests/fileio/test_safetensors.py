"""attnlab.fileio.safetensors: round trips, compatibility with the safetensors package, clear errors, atomic writes."""

import struct

import pytest
import torch

from attnlab.fileio import SafetensorsError, load_safetensors, save_safetensors
from attnlab.fileio.safetensors import _DTYPES

TENSORS = {
    "w": torch.randn(3, 4), "i": torch.arange(5), "scalar": torch.tensor(7), "bf": torch.randn(2, 2).bfloat16(),
    "empty": torch.zeros(0, 3), "mask": torch.tensor([True, False]),
    "u8": torch.randint(0, 255, (4,), dtype=torch.uint8),
}


def _one_of_each(shape=(3, 2)) -> dict[str, torch.Tensor]:
    """A tensor of every supported dtype, named after its safetensors dtype: random bytes (random 0/1 for bool)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for dtype, name in _DTYPES.items():
        if dtype == torch.bool:
            out[name] = torch.randint(0, 2, shape, generator=g).bool()
            continue
        n = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        out[name] = torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8).view(dtype).view(shape)
    return out


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and bytes (NaN-safe, and defined for float8 where torch.equal is not)."""
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


def test_every_dtype_round_trips_bit_exact(tmp_path):
    assert {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"} <= set(_DTYPES.values())
    tensors = _one_of_each()
    out, meta = load_safetensors(save_safetensors(tensors, tmp_path / "all.safetensors"))
    assert meta == {} and set(out) == set(tensors)
    for name, t in tensors.items():
        assert _same_bits(out[name], t), name


def test_unsupported_dtype_is_refused(tmp_path):
    with pytest.raises(TypeError, match="complex128"):
        save_safetensors({"z": torch.zeros(2, dtype=torch.complex128)}, tmp_path / "z.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_round_trip_with_metadata(tmp_path):
    path = save_safetensors(TENSORS, tmp_path / "a.safetensors", {"k": "v"})
    out, meta = load_safetensors(path)
    assert meta == {"k": "v"} and set(out) == set(TENSORS)
    for k, v in TENSORS.items():
        assert out[k].dtype == v.dtype and torch.equal(out[k], v)


def test_interoperates_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    save_safetensors(TENSORS, tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert all(torch.equal(theirs[k], v) for k, v in TENSORS.items())
    st.save_file(TENSORS, str(tmp_path / "theirs.safetensors"))
    ours, _ = load_safetensors(tmp_path / "theirs.safetensors")
    assert all(torch.equal(ours[k], v) for k, v in TENSORS.items())


def test_every_dtype_interoperates_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    tensors = _one_of_each((2, 3))
    save_safetensors(tensors, tmp_path / "ours.safetensors", {"format": "x"})
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert all(_same_bits(theirs[k], v) for k, v in tensors.items())
    st.save_file(tensors, str(tmp_path / "theirs.safetensors"), metadata={"format": "x"})
    ours, meta = load_safetensors(tmp_path / "theirs.safetensors")
    assert meta == {"format": "x"} and all(_same_bits(ours[k], v) for k, v in tensors.items())


def test_truncated_file_is_a_clear_error(tmp_path):
    path = save_safetensors({"w": torch.randn(100)}, tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(SafetensorsError, match="truncated or corrupt"):
        load_safetensors(path)
    path.write_bytes(data[:5])
    with pytest.raises(SafetensorsError, match="truncated"):
        load_safetensors(path)


def test_corrupt_header_is_a_clear_error(tmp_path):
    path = tmp_path / "c.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"{not")
    with pytest.raises(SafetensorsError, match="corrupt safetensors header"):
        load_safetensors(path)
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(SafetensorsError, match="corrupt"):
        load_safetensors(path)


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    path = save_safetensors({"w": torch.ones(3)}, tmp_path / "x.safetensors")
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    import os as _os

    def fail(*a, **k):
        raise Boom

    monkeypatch.setattr(_os, "fsync", fail)
    with pytest.raises(Boom):
        save_safetensors({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]


def test_bytes_on_disk_are_pinned(tmp_path):
    """Sorted names, compact JSON header padded with spaces to 8 bytes, metadata first: the checkpoint format."""
    path = save_safetensors({"b": torch.tensor([1, -2], dtype=torch.int16), "a": torch.tensor([1.5])},
                            tmp_path / "p.safetensors", {"format": "x"})
    header = (b'{"__metadata__":{"format":"x"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
              b'"b":{"dtype":"I16","shape":[2],"data_offsets":[4,8]}}')
    header += b" " * (-len(header) % 8)
    expected = struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.5) + struct.pack("<2h", 1, -2)
    assert path.read_bytes() == expected
