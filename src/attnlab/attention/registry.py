"""Registry of attention modules: one name, one class, one factory.

Example:
    >>> from attnlab.attention import create_attention, list_attention
    >>> m = create_attention("se", 64, reduction=16)
    >>> "cbam" in list_attention()
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from torch import nn

from ..names import check_name, lookup, register

__all__ = ["register_attention", "create_attention", "list_attention", "get_attention_class"]

_REGISTRY: dict[str, type[nn.Module]] = {}
_KIND = "attention module"
T = TypeVar("T", bound=type[nn.Module])


def register_attention(name: str) -> Callable[[T], T]:
    """Class decorator that registers an attention module under ``name``.

    Args:
        name: registry name, lower case (``"se"``, ``"cbam"``, ...).

    Raises:
        ValueError: ``name`` is not lower case (at once), or is already registered to another class (when
            decorating; names are never silently replaced). See :func:`attnlab.names.register`.
    """
    check_name(name, _KIND)

    def decorator(cls: T) -> T:
        register(_REGISTRY, name, cls, _KIND)
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def list_attention() -> list[str]:
    """Sorted names of every registered attention module."""
    return sorted(_REGISTRY)


def get_attention_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known names and the closest match.
    """
    return lookup(_REGISTRY, name, _KIND)


def create_attention(name: str, channels: int, **kwargs) -> nn.Module:
    """Build the attention module registered as ``name`` for ``channels`` input channels.

    Args:
        name: a registry name, see :func:`list_attention`.
        channels: channel count C of the (N, C, H, W) input; ignored by no module.
        **kwargs: module-specific options (``reduction``, ``kernel_size``, ...). An option the module
            does not take raises ``TypeError`` naming it.

    Returns:
        An ``nn.Module`` mapping (N, C, H, W) to (N, C, H, W).
    """
    cls = get_attention_class(name)
    return cls(channels, **kwargs)
