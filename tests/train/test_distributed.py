"""Two CPU processes under torchrun (gloo): ranks stay identical and match one process on the same global batch
(exactly, up to float rounding, with the default synchronised BatchNorm; as a replay of per-rank statistics
without it)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import sys, torch, torch.distributed as dist
    sys.path.insert(0, {conftest_dir!r})
    from conftest import synthetic_bundle
    from attnlab.train import TrainConfig, train

    out = sys.argv[1]
    cfg = TrainConfig(model="resnet20", dataset="synthetic", epochs=1, batch_size=16, lr=0.01, warmup_epochs=0,
                      device="cpu", augment=False, num_threads=1, sync_bn=sys.argv[2] == "sync",
                      data_on_device=sys.argv[3] if len(sys.argv) > 3 else "auto")
    res = train(cfg, out, progress=False, data=synthetic_bundle())
    from attnlab.models import create_model
    torch.manual_seed(cfg.seed)  # train() seeds the same way before building the model
    torch.save(create_model("resnet20", num_classes=4, in_chans=1).state_dict(), f"{{out}}/init.pt")
    rank = int(__import__("os").environ.get("RANK", "0"))
    torch.save(res.model.state_dict(), f"{{out}}/weights_rank{{rank}}.pt")
''')


def _torchrun(script, out, sync: str, data_on_device: str = "auto"):
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(out), sync, data_on_device], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    w0, w1 = (torch.load(out / f"weights_rank{r}.pt") for r in (0, 1))
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"ranks differ at {k}"
    return w0


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    from pathlib import Path

    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "job.py"
    script.write_text(SCRIPT.format(conftest_dir=str(Path(__file__).parent)))
    single_out = tmp / "single"
    single = subprocess.run([sys.executable, str(script), str(single_out), "sync"], capture_output=True, text=True,
                            timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    return script, tmp, torch.load(single_out / "weights_rank0.pt"), torch.load(single_out / "init.pt")


def test_two_gloo_ranks_with_sync_bn_equal_one_process_on_the_global_batch(job):
    script, tmp, single, init = job
    ddp_out = tmp / "ddp_sync"
    w0 = _torchrun(script, ddp_out, "sync")
    assert all(torch.equal(init[k], torch.load(ddp_out / "init.pt")[k]) for k in init)
    moved = 0
    for k in single:  # parameters and BatchNorm running statistics alike
        if single[k].is_floating_point():
            torch.testing.assert_close(w0[k], single[k], rtol=1e-4, atol=2e-6, msg=k)
            moved += int(not torch.equal(single[k], init[k]))
        else:
            assert torch.equal(w0[k], single[k]), k
    assert moved > 50  # the steps did train
    # Only rank 0 wrote the run's files.
    assert (ddp_out / "checkpoints" / "latest.json").is_file()
    assert json.loads((ddp_out / "summary.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_two_gloo_ranks_with_the_data_on_the_device_train_as_one_process(job):
    script, tmp, single, _ = job
    w0 = _torchrun(script, tmp / "ddp_on", "sync", "on")  # each rank deals its shard from the set on its "device"
    for k in single:
        torch.testing.assert_close(w0[k], single[k], rtol=1e-4, atol=2e-6, msg=k)


def test_two_gloo_ranks_without_sync_bn_replay_per_rank_statistics(job):
    script, tmp, single, init = job
    w0 = _torchrun(script, tmp / "ddp_local", "nosync")
    # Exact reference: one process replaying what two ranks do (each rank's half of every global batch
    # through its own BatchNorm statistics, gradients averaged, rank 0's buffers broadcast before each
    # forward, buffers averaged at the end of the epoch).
    ref = _two_rank_reference(init)
    for k in ref:
        torch.testing.assert_close(w0[k].float(), ref[k].float(), rtol=1e-4, atol=1e-5, msg=k)
    # Against one process on the same global batch (16 samples per BatchNorm instead of 8): close, not equal.
    params = [k for k in single if single[k].is_floating_point() and "running" not in k]
    d_ddp = torch.cat([(w0[k] - init[k]).flatten() for k in params])
    d_one = torch.cat([(single[k] - init[k]).flatten() for k in params])
    assert torch.nn.functional.cosine_similarity(d_ddp, d_one, dim=0).item() > 0.5
    assert not torch.allclose(d_ddp, d_one, rtol=1e-4, atol=2e-6)


def _two_rank_reference(init: dict) -> dict:
    import sys
    from pathlib import Path

    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).parent))
    from attnlab.models import create_model
    from attnlab.train import create_optimizer, iterate_batches, warmup_cosine
    from conftest import synthetic_bundle

    torch.set_num_threads(1)
    data = synthetic_bundle()
    model = create_model("resnet20", num_classes=4, in_chans=1)
    model.load_state_dict(init)
    model.train()
    opt = create_optimizer(model, "sgd", 0.01, 0.9, 5e-4)
    sched = warmup_cosine(opt, 4, 0)
    shards = [list(iterate_batches(data.train, 8, epoch=0, seed=0, rank=r, world=2, shuffle=True)) for r in (0, 1)]
    buffers = lambda: {k: v.clone() for k, v in model.named_buffers()}  # noqa: E731
    for (x0, y0), (x1, y1) in zip(*shards, strict=True):
        start = buffers()
        grads = []
        ends = []
        for x, y in ((x0, y0), (x1, y1)):
            model.load_state_dict(start, strict=False)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x).float(), y).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
            ends.append(buffers())
        for p, g0, g1 in zip(model.parameters(), *grads, strict=True):
            p.grad = (g0 + g1) / 2
        opt.step()
        sched.step()
        model.load_state_dict(ends[0], strict=False)  # rank 0's buffers are broadcast before the next forward
    final = {k: v for k, v in ends[0].items()}
    for k, v in ends[1].items():
        if v.is_floating_point():
            final[k] = (ends[0][k] + v) / 2
    model.load_state_dict(final, strict=False)
    return model.state_dict()
