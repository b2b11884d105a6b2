"""Device names: auto, cpu, cuda, cuda:N and mps, checked before anything is built; a device the machine lacks is
one clear ValueError, never torch's RuntimeError."""

import pytest
import torch

from attnlab.train.distributed import check_device, pick_device


@pytest.mark.parametrize("name, canonical", [(None, "auto"), ("", "auto"), ("auto", "auto"), (" CPU ", "cpu"),
                                             ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps")])
def test_known_names_are_canonical(name, canonical):
    assert check_device(name) == canonical


@pytest.mark.parametrize("name", ["gpu", "GPU:0", "cuda:x", "cpu:1", "auto:0", "cuda0", "tpu"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match=r"unknown device .*: use auto, cpu, cuda, cuda:N \(N: the GPU index\) or "
                                         r"mps"):
        pick_device(name)


def test_gpu_points_to_cuda():
    with pytest.raises(ValueError, match="for an NVIDIA GPU use cuda"):
        check_device("gpu")


def test_auto_and_cpu():
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available on this machine; use --device cpu"):
        pick_device("cuda")


def test_a_gpu_index_past_the_last_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="has 2 CUDA device"):
        pick_device("cuda:2")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps_is_a_clear_error():
    with pytest.raises(ValueError, match="MPS"):
        pick_device("mps")
