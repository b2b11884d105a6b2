import struct

import pytest
import torch

from attnlab.train import SafetensorsError, load_safetensors, save_safetensors

TENSORS = {
    "w": torch.randn(3, 4), "i": torch.arange(5), "scalar": torch.tensor(7), "bf": torch.randn(2, 2).bfloat16(),
    "empty": torch.zeros(0, 3), "mask": torch.tensor([True, False]),
    "u8": torch.randint(0, 255, (4,), dtype=torch.uint8),
}


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
