"""train_epoch against the loop as it was before the device pipeline and the device tally: on the CPU, the same
figures and the same weights, bit for bit, with the batches made on the host (``auto``) or on the "device"
(``on``, the CPU itself)."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip
from attnlab.train import TrainConfig, iterate_batches
from attnlab.train.epoch import train_epoch, train_step
from attnlab.train.loop import build_train_state
from attnlab.train.tally import EpochTally

BASE = dict(model="resnet20", dataset="synthetic", epochs=2, batch_size=16, lr=0.05, warmup_epochs=0.5, device="cpu")


def _old_train_epoch(state, epoch: int) -> torch.Tensor:
    """The training epoch as attnlab ran it until the device pipeline came (a copy of that code, one process):
    host batches with the augmentation generator seeded per (seed, epoch, rank), a check of the loss and three
    reads at every step. Returns (loss sum, correct, count) float64 (3,)."""
    config, device = state.config, state.device
    state.model.train()
    gen = torch.Generator().manual_seed((config.seed * 1_000_003 + epoch) * 4099 + 0)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for x, y in iterate_batches(state.batches.ts, state.per_rank, epoch=epoch, seed=config.seed,
                                transform=state.batches.transform, generator=gen, device=device):
        logits = state.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        assert torch.isfinite(loss)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        with torch.no_grad():
            sums += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
        float(sums[0] / sums[2]), float(sums[1] / sums[2]), float(sums[2])  # the progress bar's reads
    return sums


def _state(bundle, data_on_device: str):
    bundle.train_transform = Compose([RandomCrop(12, padding=2), RandomHorizontalFlip(), Normalize(0.3, 0.3)])
    config = TrainConfig(**BASE, data_on_device=data_on_device)
    torch.manual_seed(config.seed)  # as train() does before building the model
    return build_train_state(config, bundle)


@pytest.mark.parametrize("data_on_device", ["auto", "on"])
def test_a_cpu_run_matches_the_old_loop_bit_for_bit(bundle, data_on_device):
    old, new = _state(bundle, "off"), _state(bundle, data_on_device)
    assert new.batches.where == ("host" if data_on_device == "auto" else "device")
    for epoch in range(2):
        want = _old_train_epoch(old, epoch)
        got, seconds = train_epoch(new, new.model, epoch)
        assert got[:3].tolist() == want.tolist() and got[3] == 0 and seconds > 0
        assert float(got[0] / got[2]) == float(want[0] / want[2])  # the metrics row's train_loss, as stored
    a, b = old.model.state_dict(), new.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_device_pipeline_and_the_steps_never_wait_for_the_gpu(bundle):
    bundle.train_transform = Compose([RandomCrop(12, padding=2), RandomHorizontalFlip(), Normalize(0.3, 0.3)])
    config = TrainConfig(**{**BASE, "device": "cuda"}, amp="bf16", channels_last=True)  # data_on_device auto: on
    state = build_train_state(config, bundle)
    assert state.batches.where == "device"
    train_epoch(state, state.model, 0)  # first calls: lazy initialisation may wait
    tally = EpochTally(state.device, 1, float("inf"), "")
    batches = state.batches.epoch(state.per_rank, epoch=1, seed=0)  # the epoch's one copy (its order) is made here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any wait for the GPU raises
    try:
        for x, y in batches:
            loss, logits = train_step(state, state.model, x, y)
            tally.add(loss, logits, y)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert tally.read().images == len(bundle.train)
