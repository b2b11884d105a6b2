"""What every attention module shares: the channel contract and the attention-recording protocol.

Recording protocol
------------------
Each module derived from :class:`AttentionModule` can report the attention it applied on its last
input as an :class:`AttentionMaps`: channel weights (N, C) and/or a spatial map (N, 1, H, W).
Nothing is recorded by default. A consumer (``attnlab.attention.record_attention``, later the CAM
tools) sets ``module.attention_sink`` to a callable; the module then calls it with the maps it
applied. When no sink is set the check is one attribute read per forward and no map is computed
or kept, so the protocol costs nothing when unused (and ``torch.compile`` guards on it as a
constant).

What a module tells the networks
--------------------------------
Two class-level declarations, read duck-typed (``getattr``), so any ``nn.Module`` class may make them
and a new family needs no edit in :mod:`attnlab.models`:

* ``placement``: where a network puts the module unless told otherwise, one of :data:`PLACEMENTS`:
  ``"blocks"`` (on the residual branch of every block: SE, CBAM, ...; the default), ``"stages"``
  (between stages: BAM) or ``"after_blocks"`` (on the output of chosen blocks: Non-Local).
* ``channel_scale(x)``: the (N, C) weights ``w`` with ``module(x) == x * w[:, :, None, None]``, or None.
  A residual block fuses such a gate with its addition in inference (one pass instead of two); the
  default returns None (no fusion). :class:`~attnlab.attention.channel_gate.ChannelGateModule` (SE, ECA)
  answers it, and so may any new module. A subclass that writes its own ``forward`` stops answering
  (its ``channel_scale`` is reset to the default) unless it defines ``channel_scale`` again, so a
  changed forward is never silently replaced by the fused product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["AttentionMaps", "AttentionModule", "PLACEMENTS", "reduced_channels", "check_channels"]

#: Where a network may put an attention module (see the module docstring): the values of ``placement``.
PLACEMENTS = ("blocks", "stages", "after_blocks")


@dataclass
class AttentionMaps:
    """The attention a module applied to one batch.

    Attributes:
        channel: channel weights (N, C) in the module's own scale (a sigmoid gate is in [0, 1]), or None.
        spatial: spatial map (N, 1, H, W) at the module's input resolution, or None.
        extra: module-specific maps (e.g. Non-Local's pairwise affinity (N, HW, HW')), by name.
    """

    channel: Tensor | None = None
    spatial: Tensor | None = None
    extra: dict[str, Tensor] = field(default_factory=dict)


AttentionSink = Callable[["AttentionModule", AttentionMaps], None]


def check_channels(channels: int) -> int:
    """Validate a channel count given to a module constructor."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    return channels


def reduced_channels(channels: int, reduction: float, min_channels: int = 1) -> int:
    """Width of a bottleneck layer: ``max(min_channels, channels // reduction)``.

    The floor division matches the papers' (and the seed's) ``C // r`` wherever that is at least
    ``min_channels``; below it the width is clamped, so a hidden layer is never zero wide.

    Args:
        channels: input channels C.
        reduction: reduction ratio r (> 0).
        min_channels: the minimum width (>= 1).
    """
    if reduction <= 0:
        raise ValueError(f"reduction ratio must be > 0, got {reduction!r}")
    if min_channels < 1:
        raise ValueError(f"min_channels must be >= 1, got {min_channels!r}")
    return max(int(min_channels), int(channels // reduction))


class AttentionModule(nn.Module):
    """Base of every attnlab attention module: (N, C, H, W) -> (N, C, H, W).

    Subclasses call ``self._check_input(x)`` first in ``forward`` and, when
    ``self.attention_sink is not None``, ``self._emit(...)`` with the maps they applied.

    Attributes:
        channels: the channel count C the module was built for.
        attention_sink: None (default: record nothing) or a callable receiving (module, AttentionMaps).
        placement: where a network puts the module by default, one of :data:`PLACEMENTS` (class attribute;
            ``"blocks"`` unless the family's paper puts it elsewhere).
    """

    registry_name: str = ""
    placement: str = "blocks"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class whose ``forward`` is defined below its ``channel_scale`` answers None there (not silently fused)."""
        super().__init_subclass__(**kwargs)

        def owner(name: str) -> int:  # position in the MRO of the class that defines ``name``
            return next(i for i, k in enumerate(cls.__mro__) if name in vars(k))

        if owner("forward") < owner("channel_scale") and cls.channel_scale is not AttentionModule.channel_scale:
            cls.channel_scale = AttentionModule.channel_scale  # its own forward: its output may be another

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.attention_sink: AttentionSink | None = None

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(
                f"{type(self).__name__} expects a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} was built for {self.channels} channels but the input has "
                f"{x.shape[1]} (shape {tuple(x.shape)}); build it with channels={x.shape[1]}"
            )

    def _emit(self, channel: Tensor | None = None, spatial: Tensor | None = None, **extra: Tensor) -> None:
        """Hand the maps just applied to the sink (call only when ``attention_sink`` is set)."""
        sink = self.attention_sink
        if sink is None:
            return
        with torch.no_grad():
            maps = AttentionMaps(
                channel=None if channel is None else channel.detach().reshape(channel.shape[0], -1),
                spatial=None if spatial is None else spatial.detach(),
                extra={k: v.detach() for k, v in extra.items()},
            )
        sink(self, maps)

    def channel_scale(self, x: Tensor) -> Tensor | None:
        """The channel weights (N, C) this module would scale ``x`` (N, C, H, W) by, or None.

        Not None only where ``self(x)`` is exactly ``x * w[:, :, None, None]`` for the returned ``w``,
        so a caller may compute that product itself, fused with other work. The default: None.
        """
        return None

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
