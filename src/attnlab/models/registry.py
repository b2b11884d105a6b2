"""Registry of networks: one name, one builder function, one factory.

Example:
    >>> import attnlab
    >>> model = attnlab.create_model("resnet20", attention="se")  # CIFAR layout, 10 classes
    >>> "resnet50" in attnlab.list_models()
    True
"""

from __future__ import annotations

import fnmatch
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..names import lookup, register

__all__ = ["register_model", "create_model", "list_models", "get_model_builder"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(name: str | None = None) -> Callable[[F], F]:
    """Function decorator that registers a model builder under ``name`` (default: the function's name).

    Args:
        name: registry name, lower case (``"resnet50"``).

    Raises:
        ValueError: if the name is not lower case or is already registered to another builder
            (see :func:`attnlab.names.register`).
    """

    def decorator(fn: F) -> F:
        return register(_MODELS, fn.__name__ if name is None else name, fn, "model")

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models, optionally filtered by a shell pattern (``"resnet*"``)."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known names and the closest match.
    """
    return lookup(_MODELS, name, "model")


def create_model(name: str, *, num_classes: int | None = None, attention: str | type[nn.Module] | None = None,
                 attention_kwargs: dict[str, Any] | None = None, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name``, with attention placed where its paper puts it.

    Args:
        name: a registry name, see :func:`list_models`.
        num_classes: classifier outputs; None keeps the builder's default (1000 for the ImageNet
            ResNets, 10 for the CIFAR ones).
        attention: an attention registry name (``"se"``, ``"cbam"``, ``"bam"``, ``"non_local"``, ...;
            see :func:`attnlab.list_attention`), an ``nn.Module`` class taking ``channels`` first, or
            None for the vanilla network.
        attention_kwargs: options for every attention module built (``reduction``, ``kernel_size``, ...).
        in_chans: input image channels.
        **kwargs: builder options (``zero_init_residual``, ``nonlocal_setting``, ...; see
            :class:`attnlab.models.ResNet`). An option the builder does not take raises ``TypeError``.

    Returns:
        The model, in training mode, with freshly initialised weights.

    Raises:
        ValueError: for an unknown model or attention name, or a ``num_classes`` or ``in_chans`` below 1.
    """
    builder = get_model_builder(name)
    for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{arg} must be a whole number >= 1, got {value!r}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return builder(attention=attention, attention_kwargs=attention_kwargs, in_chans=in_chans, **kwargs)
