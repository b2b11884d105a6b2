"""Read the attention that modules applied: a context manager over the recording protocol."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from .base import AttentionMaps, AttentionModule

__all__ = ["record_attention", "attention_modules"]


def attention_modules(model: nn.Module) -> list[tuple[str, AttentionModule]]:
    """Every attnlab attention module in ``model`` with its dotted name (``""`` for the model itself)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AttentionModule)]


@contextmanager
def record_attention(model: nn.Module) -> Iterator[dict[str, AttentionMaps]]:
    """Record, for every attention module in ``model``, the maps it applies inside the block.

    Yields a dict filled during forward passes: dotted module name -> :class:`AttentionMaps` of the
    latest call. Sinks are removed on exit, also after an exception, and any sink a module had before
    is restored.

    Example:
        >>> with record_attention(model) as maps:
        ...     model(x)
        >>> maps["layer1.0.attn"].spatial.shape  # (N, 1, H, W)
    """
    found = attention_modules(model)
    if not found:
        raise ValueError(
            f"{type(model).__name__} contains no attnlab attention module; build it with attnlab.create_attention"
        )
    records: dict[str, AttentionMaps] = {}
    previous = [(m, m.attention_sink) for _, m in found]
    names = {id(m): name for name, m in found}

    def sink(module: AttentionModule, maps: AttentionMaps) -> None:
        records[names[id(module)]] = maps

    try:
        for _, m in found:
            m.attention_sink = sink
        yield records
    finally:
        for m, old in previous:
            m.attention_sink = old
