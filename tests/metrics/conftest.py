"""Models shared by the faithfulness tests (deletion / insertion, ROAD) whose answers are known by hand."""

from __future__ import annotations

import torch
from torch import nn


class Linear(nn.Module):
    """logits = [sum(x * w), 0]: deleting a pixel removes exactly its weight from the first logit."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)
