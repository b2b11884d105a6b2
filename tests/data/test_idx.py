"""IDX reader: gzip and raw files, and each way a file can be bad."""

from __future__ import annotations

import gzip

import pytest
import torch

from attnlab.data import DataError, DataFileNotFoundError, fashion_mnist_files, find_idx_file, read_idx, write_idx
from attnlab.data.fashion_mnist import load_fashion_mnist


def _idx_bytes(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(s.to_bytes(4, "big") for s in shape) + payload


@pytest.mark.parametrize("compress", [False, True])
def test_reads_hand_built_files(tmp_path, compress):
    labels = _idx_bytes(0x08, (3,), bytes([1, 2, 9]))
    images = _idx_bytes(0x08, (2, 2, 3), bytes(range(12)))
    for name, data in (("labels", labels), ("images", images)):
        (tmp_path / name).write_bytes(gzip.compress(data) if compress else data)
    assert read_idx(tmp_path / "labels", ndim=1, dtype=torch.uint8).tolist() == [1, 2, 9]
    img = read_idx(tmp_path / "images", ndim=3, dtype=torch.uint8)
    assert img.shape == (2, 2, 3) and torch.equal(img.flatten(), torch.arange(12, dtype=torch.uint8))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.float32, torch.float64])
def test_write_read_round_trip_big_endian(tmp_path, dtype):
    t = (torch.arange(-12, 12) * 37).to(dtype).reshape(2, 3, 4) if dtype != torch.uint8 else \
        torch.arange(24, dtype=dtype).reshape(2, 3, 4)
    for name in ("x.gz", "x"):
        write_idx(tmp_path / name, t)
        got = read_idx(tmp_path / name)
        assert got.dtype == dtype and torch.equal(got, t)
    assert (tmp_path / "x.gz").read_bytes()[:2] == b"\x1f\x8b"  # compressed by name
    assert (tmp_path / "x").read_bytes()[:4] == bytes([0, 0, {torch.uint8: 8, torch.int8: 9, torch.int16: 0x0B,
                                                              torch.int32: 0x0C, torch.float32: 0x0D,
                                                              torch.float64: 0x0E}[dtype], 3])


def test_gz_name_with_raw_content_still_reads(tmp_path):
    (tmp_path / "a.gz").write_bytes(_idx_bytes(0x08, (2,), b"\x03\x04"))
    assert read_idx(tmp_path / "a.gz").tolist() == [3, 4]


def test_find_prefers_gz_and_accepts_raw(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    assert find_idx_file(tmp_path, "f") == tmp_path / "f"
    (tmp_path / "f.gz").write_bytes(b"")
    assert find_idx_file(tmp_path, "f") == tmp_path / "f.gz"


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("ATTNLAB_FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DataFileNotFoundError) as e:
        fashion_mnist_files(tmp_path, "train")
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, DataError)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "github.com/zalandoresearch/fashion-mnist" in msg and "ATTNLAB_FASHION_MNIST_DIR" in msg
    with pytest.raises(DataFileNotFoundError, match="missing"):
        read_idx(tmp_path / "nothing-here")


def test_bad_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DataError, match=r"/bad: bad magic number 0x12340801: not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DataError, match="bad magic number 0x00000701"):
        read_idx(tmp_path / "type")
    # a labels file where images are expected: valid IDX, wrong magic for the caller
    (tmp_path / "labels").write_bytes(_idx_bytes(0x08, (2,), b"\x01\x02"))
    with pytest.raises(DataError, match=r"0x00000801 .*expected 0x00000803"):
        read_idx(tmp_path / "labels", ndim=3, dtype=torch.uint8)


def test_truncated_raw_and_gzip(tmp_path):
    data = _idx_bytes(0x08, (4, 28, 28), bytes(4 * 784))
    (tmp_path / "raw").write_bytes(data[:-10])
    with pytest.raises(DataError, match=r"raw: truncated: header says shape \(4, 28, 28\) \(3136 data bytes\)"):
        read_idx(tmp_path / "raw", hint="reinstall it")
    gz = gzip.compress(data)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataError, match=r"cut.gz: corrupt or truncated gzip data.*; reinstall it"):
        read_idx(tmp_path / "cut.gz", hint="reinstall it")
    (tmp_path / "head").write_bytes(data[:9])
    with pytest.raises(DataError, match="header cut short"):
        read_idx(tmp_path / "head")
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "tiny")


def test_wrong_count(tmp_path, build):
    # header says 5 labels, 4 present; and trailing bytes
    (tmp_path / "short").write_bytes(_idx_bytes(0x08, (5,), bytes(4)))
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(_idx_bytes(0x08, (5,), bytes(6)))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(tmp_path / "long")
    # image and label files that disagree on the count
    root = tmp_path / "fm"
    build.write_fashion(root, "train", build.blob_items(5), torch.arange(4))
    with pytest.raises(DataError, match=r"holds 5 images but .*train-labels-idx1-ubyte.gz holds 4 labels"):
        load_fashion_mnist(root, "train")


def test_wrong_item_size_and_label_range(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", torch.zeros(2, 32, 32, dtype=torch.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", torch.tensor([0, 1], dtype=torch.uint8))
    with pytest.raises(DataError, match=r"\(32, 32\), Fashion-MNIST's are \(28, 28\)"):
        load_fashion_mnist(tmp_path, "train")
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", torch.zeros(2, 28, 28, dtype=torch.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", torch.tensor([0, 10], dtype=torch.uint8))
    with pytest.raises(DataError, match="label 10 out of range"):
        load_fashion_mnist(tmp_path, "train")
