"""SyncBatchNorm on gloo: two ranks holding halves of a batch give what one BatchNorm gives on the whole batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from attnlab.train.sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _whole_batch(dim: int, channels_last: bool, dtype: torch.dtype = torch.float64):
    torch.manual_seed(0)
    shape = {1: (8, 5), 2: (8, 5, 6, 7), 3: (8, 5, 3, 4, 2)}[dim]
    x = (torch.randn(*shape, dtype=torch.float64) * 3 + 1).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim](5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2, 5))
        bn.bias.copy_(torch.linspace(-1, 1, 5))
    w = torch.randn(x.shape, dtype=torch.float64).to(dtype)  # a loss that is not symmetric in the samples
    return x, bn, w


def _worker(rank: int, world: int, port: int, dim: int, channels_last: bool, out: str) -> None:
    _run_rank(rank, world, port, out, lambda: _whole_batch(dim, channels_last))


def _bf16_worker(rank: int, world: int, port: int, out: str) -> None:
    _run_rank(rank, world, port, out, lambda: _bf16_case())


def _bf16_case():
    x, bn, w = _whole_batch(2, False, torch.bfloat16)
    return x, bn.float(), w


def _run_rank(rank: int, world: int, port: int, out: str, case) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, bn, w = case()
        convert_sync_batchnorm(bn)
        assert isinstance(bn, SyncBatchNorm)
        half = x.shape[0] // world
        xs = x[rank * half:(rank + 1) * half].clone().requires_grad_()
        y = bn(xs)
        # the global objective is the sum over ranks of each rank's part; DDP would average weight grads
        (y * w[rank * half:(rank + 1) * half]).sum().backward()
        grads = torch.cat([bn.weight.grad, bn.bias.grad])
        dist.all_reduce(grads)
        torch.save({"y": y.detach(), "gx": xs.grad, "gwb": grads, "rm": bn.running_mean, "rv": bn.running_var,
                    "n": bn.num_batches_tracked}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("dim,channels_last", [(2, False), (2, True), (1, False), (3, False)])
def test_two_ranks_equal_one_batchnorm_on_the_whole_batch(tmp_path, dim, channels_last):
    mp.spawn(_worker, args=(2, _free_port(), dim, channels_last, str(tmp_path)), nprocs=2, join=True)
    x, bn, w = _whole_batch(dim, channels_last)
    x = x.clone().requires_grad_()
    y = bn(x)
    (y * w).sum().backward()
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    torch.testing.assert_close(torch.cat([r0["y"], r1["y"]]), y.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(torch.cat([r0["gx"], r1["gx"]]), x.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(r0["gwb"], torch.cat([bn.weight.grad, bn.bias.grad]), rtol=1e-10, atol=1e-10)
    for r in (r0, r1):  # running statistics: the global batch's, on every rank
        torch.testing.assert_close(r["rm"], bn.running_mean, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(r["rv"], bn.running_var, rtol=1e-10, atol=1e-12)
        assert int(r["n"]) == int(bn.num_batches_tracked) == 1


def test_bfloat16_input_is_normalised_in_float32_and_returned_in_bfloat16(tmp_path):
    mp.spawn(_bf16_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    x, bn, w = _bf16_case()
    y = bn(x.float())
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["y"].dtype == r0["gx"].dtype == torch.bfloat16
    torch.testing.assert_close(torch.cat([r0["y"], r1["y"]]).float(), y.detach(), rtol=1e-2, atol=2e-2)
    torch.testing.assert_close(r0["rm"], bn.running_mean, rtol=1e-5, atol=1e-6)


def test_single_process_and_eval_are_plain_batchnorm():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model = convert_sync_batchnorm(__import__("copy").deepcopy(ref))
    assert isinstance(model[1], SyncBatchNorm) and isinstance(model[1], nn.modules.batchnorm._BatchNorm)
    assert list(model.state_dict()) == list(ref.state_dict())
    x = torch.randn(4, 3, 9, 9)
    assert torch.equal(model(x), ref(x))  # no process group: exactly F.batch_norm
    assert torch.equal(model[1].running_mean, ref[1].running_mean)
    model.eval(), ref.eval()
    assert torch.equal(model(x), ref(x))


def test_conversion_keeps_the_module_objects_and_their_hooks():
    bn = nn.BatchNorm2d(3)
    seen = []
    bn.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net = nn.Sequential(nn.Identity(), bn)
    convert_sync_batchnorm(net)
    assert net[1] is bn and isinstance(bn, SyncBatchNorm)
    net(torch.randn(2, 3, 4, 4))
    assert seen == [torch.Size([2, 3, 4, 4])]


def test_a_custom_batchnorm_subclass_is_refused():
    class MyBN(nn.BatchNorm2d):
        pass

    with pytest.raises(TypeError, match="cannot synchronise MyBN"):
        convert_sync_batchnorm(nn.Sequential(MyBN(3)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_models_get_torch_sync_batchnorm_in_place():
    bn = nn.BatchNorm2d(3).cuda()
    net = nn.Sequential(nn.Conv2d(3, 3, 1), bn).cuda()
    convert_sync_batchnorm(net)
    assert net[1] is bn and type(bn) is nn.SyncBatchNorm
    ref = nn.BatchNorm2d(3).cuda()
    x = torch.randn(4, 3, 5, 5, device="cuda")
    torch.testing.assert_close(bn(x), ref(x))  # no process group: plain BatchNorm
