"""An epoch's running statistics, kept where the model runs and read only now and then.

A read of a number on a GPU waits for every step queued before it; reading the loss and accuracy at every step
(for the progress bar, and to stop at a NaN) kept the GPU idle between steps. :class:`EpochTally` adds each
step's loss, correct count and a not-finite flag to tensors on the device, with no wait, and the loop reads them
when :meth:`EpochTally.due` says (a few times a second on a GPU, every step on the CPU, where a read costs
nothing) and at the end of the epoch.

A NaN or infinite loss is therefore found at the first read after it, and named by the steps since the read
before: "between step 41 and 60 of epoch 2". The optimiser may have taken steps on NaN weights within that
range; that is harmless, since the loop raises before anything of the epoch (checkpoint, metrics) is saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["READ_EVERY_S", "EpochTally", "Reading", "read_interval"]

#: Seconds between reads of the running statistics where a read waits for the device (a GPU).
READ_EVERY_S = 0.25


def read_interval(device: torch.device) -> float:
    """Seconds between reads on ``device``: 0 (every step) on the CPU, :data:`READ_EVERY_S` elsewhere."""
    return 0.0 if device.type == "cpu" else READ_EVERY_S


@dataclass(frozen=True)
class Reading:
    """The running statistics of this rank at a read."""

    loss: float  # mean training loss so far
    acc: float  # training accuracy so far
    images: int  # images trained on so far
    seconds: float  # since the epoch started


class EpochTally:
    """Loss sum, correct count and a not-finite flag of one epoch on ``device``, added with no host sync.

    Args:
        device: where the losses and logits are.
        epoch: the epoch (from 0), for messages.
        read_every: seconds between the reads :meth:`due` asks for (0: every step).
        fix: what the message of a non-finite loss advises (e.g. ``"Lower --lr (now 0.1) or check the data."``).
    """

    def __init__(self, device: torch.device | str, epoch: int, read_every: float, fix: str) -> None:
        device = torch.device(device)
        self.epoch, self.read_every, self.fix = epoch, read_every, fix
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)  # (2,): loss sum, correct
        self.not_finite = torch.zeros((), dtype=torch.bool, device=device)
        self.steps = self.images = self.checked = 0  # ``checked``: steps known finite at the last read
        self.start = self.last_read = time.perf_counter()

    @torch.no_grad()
    def add(self, loss: Tensor, logits: Tensor, y: Tensor) -> None:
        """Count one step: its mean loss (), logits (B, classes) and labels (B,). Launches work, waits for none."""
        n = int(y.shape[0])
        loss = loss.detach()
        self.sums += torch.stack([loss.double() * n, (logits.argmax(1) == y).sum().double()])
        self.not_finite |= ~torch.isfinite(loss)
        self.steps += 1
        self.images += n

    def due(self) -> bool:
        """Whether :attr:`read_every` seconds have passed since the last read."""
        return time.perf_counter() - self.last_read >= self.read_every

    def read(self) -> Reading:
        """The statistics so far (one wait for the device).

        Raises:
            FloatingPointError: a loss since the last read was NaN or infinite; the message names the steps.
        """
        loss_sum, correct, bad = torch.cat([self.sums, self.not_finite.double().view(1)]).tolist()
        self.last_read = now = time.perf_counter()
        if bad:
            raise FloatingPointError(self._message())
        self.checked = self.steps
        return Reading(loss_sum / max(self.images, 1), correct / max(self.images, 1), self.images, now - self.start)

    def _message(self) -> str:
        first, last = self.checked + 1, self.steps
        where = f"at step {last}" if first == last else f"between step {first} and {last}"
        return (f"the training loss became NaN or infinite {where} of epoch {self.epoch + 1}; nothing was saved for "
                f"this epoch. {self.fix}")

    def totals(self) -> Tensor:
        """(4,) float64 on the device: loss sum, correct, images, not-finite (0 or 1), to sum over ranks."""
        images = torch.full((1,), float(self.images), dtype=torch.float64, device=self.sums.device)
        return torch.cat([self.sums, images, self.not_finite.double().view(1)])

    def check_totals(self, totals: Tensor) -> None:
        """Raise when :meth:`totals`, summed over the ranks, count a non-finite loss (on another rank, when this
        one's last :meth:`read` passed).

        Raises:
            FloatingPointError: naming the epoch and the fix.
        """
        if float(totals[3]) > 0:
            raise FloatingPointError(f"the training loss became NaN or infinite on another rank in epoch "
                                     f"{self.epoch + 1}; nothing was saved for this epoch. {self.fix}")
