"""Small building blocks shared by the attention modules: activation/gate lookup by name or class."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from ..names import lookup

__all__ = ["ActLike", "make_act", "ACTIVATIONS"]

ActLike = str | type[nn.Module] | Callable[[Tensor], Tensor] | None

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "hard_swish": nn.Hardswish,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def make_act(act: ActLike, default: str) -> nn.Module:
    """An activation module from a name (see ``ACTIVATIONS``), an ``nn.Module`` class, a callable or None.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if act is None:
        act = default
    if isinstance(act, str):
        return lookup(ACTIVATIONS, act, "activation")()
    if isinstance(act, type) and issubclass(act, nn.Module):
        return act()
    if isinstance(act, nn.Module):
        return act
    if callable(act):
        return _Lambda(act)
    raise TypeError(f"an activation is a name, an nn.Module class or a callable, got {act!r}")


class _Lambda(nn.Module):
    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)



def apply_act(module: nn.Module, x: Tensor) -> Tensor:
    """Apply an activation module, through the functional form for the common ones (no module call cost)."""
    t = type(module)
    if t is nn.ReLU:
        return F.relu(x)
    if t is nn.Sigmoid:
        return x.sigmoid()
    return module(x)
