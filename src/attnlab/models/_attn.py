"""Building attention modules for the networks, and telling them apart from the backbone afterwards.

Every attention module that ``attnlab.models`` builds (into a model-zoo network or into a user's model
by :func:`attnlab.attach`) carries a small mark, ``module._attnlab_placed``: ``"model"`` for the ones a
network was built with, ``"attached"`` for the ones :func:`attnlab.attach` inserted. The mark is a
plain attribute, so it survives ``copy.deepcopy`` and ``torch.save(model)``. :func:`attention_prefixes`
uses it (and the :class:`~attnlab.attention.AttentionModule` base class) to say which state_dict keys
are attention keys, which :func:`attnlab.load_backbone` reports as new rather than missing.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..attention import AttentionModule, create_attention, get_attention_class

__all__ = ["AttentionOptionError", "AttentionSpec", "make_attention", "attention_class", "attention_name",
           "attention_prefixes", "MARK"]

AttentionSpec = str | type[nn.Module] | None
MARK = "_attnlab_placed"


def attention_name(spec: AttentionSpec) -> str:
    """The registry name of an attention spec (``""`` for an unregistered class or None)."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        return spec.strip().lower()
    return getattr(spec, "registry_name", "") or ""


def attention_class(spec: AttentionSpec) -> type[nn.Module] | None:
    """The class an attention spec builds: the registered class of a name, the class itself, or None.

    Raises:
        ValueError: for an unknown registry name.
    """
    if isinstance(spec, str):
        return get_attention_class(spec)
    return spec


def make_attention(spec: AttentionSpec, channels: int, kwargs: dict[str, Any] | None, placed: str) -> nn.Module | None:
    """Build one attention module for ``channels`` channels, marked with ``placed``.

    Args:
        spec: a registry name, an ``nn.Module`` class taking ``channels`` first, or None (returns None).
        channels: the channel count C of the (N, C, H, W) tensor it will see.
        kwargs: module options, or None.
        placed: ``"model"`` or ``"attached"`` (see the module docstring).

    Raises:
        ValueError: for an unknown registry name, or an option the module does not take
            (:class:`AttentionOptionError`, also a ``TypeError``).
        TypeError: for a spec that is neither a name nor an ``nn.Module`` class.
    """
    if spec is None:
        return None
    kwargs = dict(kwargs or {})
    if isinstance(spec, str):
        _check_options(get_attention_class(spec), spec, kwargs)
        module = create_attention(spec, channels, **kwargs)
    elif isinstance(spec, type) and issubclass(spec, nn.Module):
        _check_options(spec, spec.__name__, kwargs)
        module = spec(channels, **kwargs)
    else:
        raise TypeError(f"attention is a registry name or an nn.Module class taking channels first, got {spec!r}")
    setattr(module, MARK, placed)
    return module


class AttentionOptionError(ValueError, TypeError):
    """An option the attention module does not take: a ``ValueError`` (a user's mistake, named with the module's
    options) that is also the ``TypeError`` Python raises for an unexpected keyword, for code catching that."""


def _check_options(cls: type, label: str, kwargs: dict[str, Any]) -> None:
    """Raise :class:`AttentionOptionError` for keyword options ``cls(channels, ...)`` does not take."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: let the call itself decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    options = [n for n, p in list(params.items())[1:] if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in kwargs if k not in options]
    if unknown:
        raise AttentionOptionError(f"attention module {label!r} has no option {', '.join(map(repr, unknown))} "
                                   f"(its options: {', '.join(options) or 'none'})")


def attention_prefixes(model: nn.Module) -> list[str]:
    """Dotted names of the outermost attention modules in ``model`` (each with a trailing ``"."``).

    A module counts as attention when it is an :class:`~attnlab.attention.AttentionModule` or carries the
    mark :func:`make_attention` sets; modules nested inside one are covered by its prefix.
    """
    prefixes: list[str] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(p) for p in prefixes):
            continue
        if isinstance(m, AttentionModule) or getattr(m, MARK, None):
            prefixes.append(name + ".")
    return prefixes
