"""ImageFolder with .npy and binary PGM/PPM files (no Pillow needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data import DataError, DataFileNotFoundError, ImageFolder, read_npy, read_pnm
from attnlab.data.folder import _pil_available


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_npy_and_pnm_folder(tmp_path, build):
    a = _rng().integers(0, 256, (8, 6), dtype=np.uint8)
    (tmp_path / "cat").mkdir()
    np.save(tmp_path / "cat" / "a.npy", a)
    np.save(tmp_path / "cat" / "b.npy", a.astype(np.float32) / 255)
    build.write_pgm(tmp_path / "ant" / "x.pgm", a, comment=True)
    (tmp_path / "ant" / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["ant", "cat"] and len(ds) == 3 and ds.targets == [0, 1, 1]
    assert (ds.num_classes, ds.in_chans, ds.image_size) == (2, 1, (8, 6))
    want = torch.from_numpy(a).float().div(255)[None]
    for i in range(3):
        x, _ = ds[i]
        assert x.shape == (1, 8, 6) and torch.allclose(x, want, atol=1 / 255 / 2 + 1e-6)


def test_channel_conversion(tmp_path, build):
    rgb = _rng(1).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    build.write_pgm(tmp_path / "a" / "c.ppm", rgb)
    build.write_pgm(tmp_path / "a" / "g.pgm", rgb[..., 0])
    ds = ImageFolder(tmp_path)  # channels from the first file (c.ppm): grey is repeated
    assert ds.in_chans == 3 and torch.equal(ds[1][0], torch.from_numpy(rgb[..., 0]).float().div(255).expand(3, -1, -1))
    grey = ImageFolder(tmp_path, channels=1)
    luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).clip(0, 255) / 255
    assert grey[0][0].shape == (1, 5, 4) and np.allclose(grey[0][0][0].numpy(), luma, atol=1 / 255 + 1e-6)


def test_pnm_variants(tmp_path, build):
    a16 = np.array([[0, 1000], [65535, 30000]], dtype=np.uint16)
    build.write_pgm(tmp_path / "w.pgm", a16, maxval=65535)
    assert read_pnm(tmp_path / "w.pgm")[0].tolist() == [[0, 4], [255, 117]]
    a7 = np.array([[0, 7]], dtype=np.uint8)
    build.write_pgm(tmp_path / "s.pgm", a7, maxval=7)
    assert read_pnm(tmp_path / "s.pgm")[0].tolist() == [[0, 255]]
    (tmp_path / "ascii.pgm").write_bytes(b"P2\n1 1\n255\n0\n")
    with pytest.raises(DataError, match="P5/P6"):
        read_pnm(tmp_path / "ascii.pgm")
    (tmp_path / "cut.ppm").write_bytes(b"P6\n2 2\n255\n" + bytes(5))
    with pytest.raises(DataError, match=r"cut.ppm: pixel data cut short \(5 of 12 bytes\)"):
        read_pnm(tmp_path / "cut.ppm")


def test_npy_validation(tmp_path):
    np.save(tmp_path / "bool.npy", np.eye(3, dtype=bool))
    assert read_npy(tmp_path / "bool.npy")[0, 0].tolist() == [255, 0, 0]
    np.save(tmp_path / "chw.npy", np.zeros((3, 8, 8), np.uint8))  # (C, H, W) is not an (H, W, C) image
    with pytest.raises(DataError, match=r"chw.npy: expected an \(H, W\) or \(H, W, C\) image"):
        read_npy(tmp_path / "chw.npy")
    np.save(tmp_path / "f.npy", np.full((2, 2), 1.5, np.float32))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        read_npy(tmp_path / "f.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npy: not a readable .npy"):
        read_npy(tmp_path / "obj.npy")


def test_folder_errors(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="missing image folder"):
        ImageFolder(tmp_path / "nope")
    with pytest.raises(DataFileNotFoundError, match="holds no class subfolder"):
        ImageFolder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "x.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"class folder .*/b holds no image"):
        ImageFolder(tmp_path)
    (tmp_path / "b" / "y.npy").write_bytes(b"not an array")
    ds = ImageFolder(tmp_path)  # decoding happens on access, and names the file
    with pytest.raises(DataError, match=r"b/y.npy: not a readable .npy"):
        ds[1]
    with pytest.raises(ValueError, match="channels"):
        ImageFolder(tmp_path, channels=2)


def test_png_without_pillow_is_an_error_not_a_skip(tmp_path, monkeypatch):
    monkeypatch.setattr("attnlab.data.folder._pil_available", lambda: False)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(DataError, match=r"x.png: decoding .png files needs Pillow \(pip install Pillow\)"):
        ImageFolder(tmp_path)


@pytest.mark.skipif(not _pil_available(), reason="Pillow is not installed (optional)")
def test_png_and_jpeg_with_pillow(tmp_path):
    from PIL import Image

    rgb = _rng(2).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "a").mkdir()
    Image.fromarray(rgb).save(tmp_path / "a" / "x.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "a" / "y.png")
    (tmp_path / "a" / "z.jpg").write_bytes(b"not a jpeg")
    ds = ImageFolder(tmp_path)
    assert ds.in_chans == 3 and ds.image_size == (6, 5)
    assert torch.equal(ds[0][0], torch.from_numpy(rgb).permute(2, 0, 1).float().div(255))
    assert torch.equal(ds[1][0], torch.from_numpy(rgb[..., 0]).float().div(255).expand(3, -1, -1))
    with pytest.raises(DataError, match="z.jpg: cannot decode the image"):
        ds[2]


def test_convert_channels_repeats_grey_and_reduces_rgb_by_luma():
    from attnlab.data import convert_channels

    grey = torch.tensor([[[10, 200]]], dtype=torch.uint8)  # (1, 1, 2)
    assert torch.equal(convert_channels(grey, 3), grey.expand(3, 1, 2))
    assert convert_channels(grey, 1) is grey
    rgb = torch.tensor([[[255]], [[0]], [[0]]], dtype=torch.uint8)  # pure red
    assert convert_channels(rgb, 1).tolist() == [[[76]]]  # round(0.299 * 255)


@pytest.mark.parametrize("channels_in,channels", [(1, 2), (4, 3), (3, 4)])
def test_convert_channels_refuses_what_it_cannot_convert(channels_in, channels):
    from attnlab.data import convert_channels

    with pytest.raises(ValueError, match=f"cannot convert a {channels_in}-channel image to {channels} channels"):
        convert_channels(torch.zeros(channels_in, 2, 2, dtype=torch.uint8), channels)  # 1 -> 2 gave 1 channel
