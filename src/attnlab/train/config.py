"""The training configuration: one dataclass, JSON round-trippable, stored in every checkpoint.

:class:`TrainConfig` is the one definition of every training option. Each field carries, in its
``metadata``, the help text and (where it differs from the field) the command-line flag, its choices and
how the flag's text becomes the value; ``attnlab train`` and ``attnlab bench train`` build their flags
from these fields, and a study preset holds a ``TrainConfig`` for its training budget. Adding an option
is one field here.

Metadata keys (all optional but ``help``):
    help: what the option does (shown by ``attnlab train --help`` and in the class docstring).
    flag: the command-line flag when it is not ``--field-name`` (e.g. ``--threads``); a ``--no-...`` flag
        on a bool field that defaults to True turns it off.
    choices: the allowed values (checked here and by the CLI).
    negatable: a bool field given as ``--flag``/``--no-flag``.
    default_text: how ``--help`` shows a default that reads badly as a value (e.g. ``None``).
    parse: turns the flag's text into the field's value (a ``ValueError`` for bad text).
    cli: False for a field with no flag.
    affects_result: False for a setting that cannot change what the run computes (where it runs, how fast),
        True (the default) for everything else. A run may be resumed, and a finished run reused by a study,
        with other values of such settings only (:func:`result_changes` is that one check).
"""

from __future__ import annotations

import inspect
import json
import math
from collections import abc
from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from ..names import suggest

__all__ = ["NUMBER_RANGES", "Range", "TrainConfig", "affects_result", "flag_text", "option", "result_changes"]


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, **cli: Any) -> Any:
    """A dataclass field with its help text and command-line metadata (see the module docstring)."""
    if not help:
        raise ValueError("every option needs its help text")
    return field(default=default, default_factory=default_factory, metadata={"help": help, **cli})


def _attention_name(text: str) -> str | None:
    """``--attention`` text -> registry name; ``none``/``vanilla``/empty -> None (the vanilla network)."""
    return None if text.strip().lower() in ("", "none", "vanilla") else text


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Each field's ``help`` metadata is the one description of the option: the CLI's ``--help`` and the
    ``Attributes`` below are made from it.
    """

    model: str = option("resnet20", "model name (attnlab.list_models())")
    attention: str | None = option(None, "attention module name (attnlab.list_attention()), or none for the "
                                   "vanilla network", parse=_attention_name, default_text="none")
    attention_kwargs: dict[str, Any] = option(
        default_factory=dict, help="options for the attention modules, on the command line a JSON object, "
                                   "e.g. '{\"reduction\": 8}'")
    dataset: str = option("fashion-mnist", "dataset name (attnlab.data.list_datasets())")
    data_root: str | None = option(None, "directory of the dataset files",
                                   default_text="the dataset's own default folder")
    dataset_kwargs: dict[str, Any] = option(default_factory=dict, help="options for the dataset class, e.g. "
                                            "canvas or seed for cluttered-fashion-mnist", cli=False)
    epochs: int = option(10, "training epochs")
    batch_size: int = option(128, "global batch size (split evenly over ranks under torchrun)")
    optimizer: str = option("sgd", "sgd (Nesterov momentum) or adamw (momentum is its beta1)",
                            choices=("sgd", "adamw"))
    lr: float = option(0.1, "peak learning rate, reached after the warm-up")
    momentum: float = option(0.9, "SGD momentum, or AdamW's beta1")
    weight_decay: float = option(5e-4, "weight decay (not on norm and bias parameters)")
    warmup_epochs: float = option(1.0, "linear warm-up length in epochs, then cosine decay to zero")
    label_smoothing: float = option(0.0, "cross-entropy label smoothing")
    amp: str = option("auto", "mixed precision: auto (bf16, else fp16 with loss scaling, on CUDA; off on CPU), "
                      "bf16, fp16 or off", choices=("auto", "bf16", "fp16", "off"))
    channels_last: bool = option(False, "run the model in channels_last memory format", negatable=True,
                                 affects_result=False)
    compile: bool = option(False, "torch.compile the model", affects_result=False)
    data_on_device: str = option(
        "auto", "keep the training set on the device (as stored, uint8 for images) and gather, augment and "
        "normalise its batches there, with no wait for the device at each step: auto (on with CUDA, when the set "
        "takes at most a quarter of the free GPU memory and the augmentation is attnlab's own; off elsewhere), on "
        "or off. On a GPU its augmentation draws other random numbers than the host pipeline's, so it is part of "
        "a run's result; on a CPU both give the same batches", choices=("auto", "on", "off"))
    augment: bool = option(True, "the dataset's training augmentation (random crop with padding, flips where "
                           "they make sense)", flag="--no-augment")
    seed: int = option(0, "seeds model init, data order and augmentation; CPU runs are repeatable")
    device: str = option("auto", "auto, cpu, cuda, cuda:N", affects_result=False)
    limit_train: int | None = option(None, "use only the first N training samples", default_text="all")
    limit_test: int | None = option(None, "use only the first N test samples", default_text="all")
    num_threads: int | None = option(None, "torch intra-op threads", flag="--threads",
                                     default_text="torch's default", affects_result=False)
    sync_bn: bool = option(True, "under torchrun, BatchNorm statistics span the global batch (synchronised "
                           "across ranks), so N processes train the same model as one process on the same "
                           "global batch; off keeps per-rank statistics (plain DDP); no effect in one process",
                           flag="--no-sync-bn")

    def __post_init__(self) -> None:
        """Refuse, in one ``ValueError`` naming the field, its flag and the value, any setting that cannot
        train: a number of the wrong kind, not finite or out of its range (:data:`NUMBER_RANGES`), a value
        not among a field's choices, an unknown model, attention or device name, or an attention option the
        module does not take."""
        hints = get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            _check_kind(f, value, hints[f.name])
            if f.name in NUMBER_RANGES and value is not None:
                _check_range(f, value, NUMBER_RANGES[f.name], _number_kind(hints[f.name]))
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {value!r}")
        _check_names(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_config(self, num_classes: int, in_chans: int) -> dict[str, Any]:
        """What ``attnlab.create_model`` needs to rebuild the network."""
        return {"name": self.model, "attention": self.attention, "attention_kwargs": dict(self.attention_kwargs),
                "num_classes": int(num_classes), "in_chans": int(in_chans)}


@dataclass(frozen=True)
class Range:
    """The values a number field takes: ``low`` to ``high`` (None: unbounded), each end included unless
    ``low_open``/``high_open``."""

    low: float | None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` (a finite number) lies in the range."""
        v = float(value)
        above = self.low is None or v > self.low or (v == self.low and not self.low_open)
        below = self.high is None or v < self.high or (v == self.high and not self.high_open)
        return above and below

    def describe(self) -> str:
        """``>= 1``, ``> 0``, ``in [0, 1)``."""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


#: The range of every number field of :class:`TrainConfig`; every number is also finite (a test keeps every
#: int and float field listed here).
NUMBER_RANGES: dict[str, Range] = {
    "epochs": Range(1),
    "batch_size": Range(1),
    "lr": Range(0, low_open=True),
    "momentum": Range(0, 1, high_open=True),
    "weight_decay": Range(0),
    "warmup_epochs": Range(0),
    "label_smoothing": Range(0, 1, high_open=True),
    "seed": Range(0, 2**32 - 1),
    "limit_train": Range(1),
    "limit_test": Range(1),
    "num_threads": Range(1),
}


def _name(f: Field) -> str:
    """How a message names a field: ``--flag (field)``, or the field alone when it has no flag."""
    if not f.metadata.get("cli", True):
        return f.name
    return f"{f.metadata.get('flag', '--' + f.name.replace('_', '-'))} ({f.name})"


def _number_kind(hint: Any) -> type | None:
    """int or float for a field typed ``int``, ``float`` or either ``| None``; None for other fields."""
    args = set(get_args(hint)) - {type(None)} if get_origin(hint) in (Union, UnionType) else {hint}
    return next(iter(args)) if len(args) == 1 and next(iter(args)) in (int, float) else None


def _check_kind(f: Field, value: Any, hint: Any) -> None:
    """The value is of the field's kind: a whole number (not a bool) for int fields, a finite real number for
    float fields, True/False for bool fields, a JSON-like dict with string keys for dict fields."""
    optional = get_origin(hint) in (Union, UnionType) and type(None) in get_args(hint)
    if value is None and optional:
        return
    kind = _number_kind(hint)
    none_hint = " (or None)" if optional else ""
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{_name(f)} must be a whole number{none_hint}, got {value!r}")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
        raise ValueError(f"{_name(f)} must be a finite number{none_hint}, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"{_name(f)} must be True or False, got {value!r}")
    if get_origin(hint) is dict and not (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        raise ValueError(f"{_name(f)} must be a dict with string keys (a JSON object), got {value!r}")
    if hint is str and not (isinstance(value, str) and value.strip()):
        raise ValueError(f"{_name(f)} must be a non-empty string, got {value!r}")


def _check_range(f: Field, value: float, allowed: Range, kind: type | None) -> None:
    """``value`` lies in ``allowed``; the message states the range (``kind``: the field's number type)."""
    if allowed.holds(value):
        return
    whole = "a whole number" if kind is int else "a number"
    tail = " (leave it out for all)" if f.name.startswith("limit_") else ""
    raise ValueError(f"{_name(f)} must be {whole} {allowed.describe()}{tail}; got {value!r}")


def _check_names(cfg: TrainConfig) -> None:
    """The model and attention names are registered (the message suggests the closest), the device is one
    ``--device`` takes, and the attention options are ones the module takes."""
    from ..attention import get_attention_class
    from ..models import get_model_builder
    from .distributed import check_device

    get_model_builder(cfg.model)
    check_device(cfg.device)
    if cfg.attention is not None:
        _check_attention_options(get_attention_class(cfg.attention), cfg.attention, cfg.attention_kwargs)


def _check_attention_options(cls: type, name: str, options: dict[str, Any]) -> None:
    """Every key of ``options`` is a keyword ``cls`` takes after its channel count, and every value is of a
    kind its annotation allows (a number for ``float``, a string or null for ``str | None``, ...), so that a
    mistake in ``--attention-kwargs`` is a ``ValueError`` here, not a ``TypeError`` inside the module.

    Raises:
        ValueError: naming the option, the module and what it takes (with the closest name when one is close).
    """
    params = list(inspect.signature(cls).parameters.values())[1:]  # the first is the channel count
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in options:
        if key not in takes:
            close = suggest(key, takes)
            hint = f" Did you mean {close!r}?" if close else ""
            raise ValueError(f"--attention-kwargs: {name} ({cls.__name__}) takes no option {key!r}.{hint} Its "
                             f"options: {', '.join(takes) or 'none'}.")
    try:
        hints = get_type_hints(cls.__init__)
    except (NameError, TypeError):  # annotations this module cannot resolve: the module checks its own values
        return
    for key, value in options.items():
        kinds = _value_kinds(hints.get(key))
        if kinds is not None and not _is_one_of(value, kinds):
            named = [k for k in _KIND_NAMES if k in kinds and not (k is int and float in kinds)]
            want = " or ".join(_KIND_NAMES[k] for k in named) or "set in Python (no JSON value fits it)"
            raise ValueError(f"--attention-kwargs: option {key!r} of {name} must be {want}, got {value!r}")


#: How a message names the kinds of value a JSON object can hold.
_KIND_NAMES: dict[type, str] = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
                                list: "a list", dict: "an object", type(None): "null"}


def _value_kinds(hint: Any) -> set[type] | None:
    """The kinds of JSON value (keys of :data:`_KIND_NAMES`) a parameter annotated ``hint`` takes; None when
    the annotation does not say (no annotation, ``Any``, a ``Literal``, ...): the module checks those itself."""
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        parts = [_value_kinds(a) for a in get_args(hint)]
        return None if any(p is None for p in parts) else set().union(*parts)
    base = origin or hint
    if base is float:
        return {int, float}
    if base in _KIND_NAMES:
        return {base}
    if base in (tuple, list) or base is abc.Sequence:
        return {list}
    if base is type or base is abc.Callable or (isinstance(base, type) and origin is None and hint is not Any):
        return set()  # a class or a function: nothing a JSON object can hold
    return None


def _is_one_of(value: Any, kinds: set[type]) -> bool:
    """Whether ``value`` is of one of ``kinds`` (True/False count as bool only, not as whole numbers)."""
    if isinstance(value, bool):
        return bool in kinds
    return any(isinstance(value, k) for k in kinds)


def affects_result(f: Field) -> bool:
    """Whether the :class:`TrainConfig` field ``f`` can change what a run computes (its ``affects_result``
    metadata; True unless declared otherwise)."""
    return bool(f.metadata.get("affects_result", True))


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from a run's JSON (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def result_changes(stored: Mapping[str, Any], given: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """The settings that can change what a run computes and differ between a run's stored config and ``given``.

    The one check behind resuming a run (``train(..., resume=True)`` refuses any change) and reusing a finished
    run in a study; settings declared ``affects_result=False`` (device, threads, ...) may differ.

    Args:
        stored: the run's ``TrainConfig.to_dict()`` as read back from its JSON; a field it lacks (a run written
            before the field existed) counts as the field's default.
        given: the configuration asked for now.

    Returns:
        field name -> (stored value, given value), in field order; empty when nothing that matters differs.
    """
    now = given.to_dict()
    changes = {}
    for f in fields(TrainConfig):
        if not affects_result(f):
            continue
        before = _as_stored(stored[f.name] if f.name in stored else _default(f))
        after = _as_stored(now[f.name])
        if before != after:
            changes[f.name] = (before, after)
    return changes


def flag_text(name: str, value: Any) -> str:
    """How the command line sets the field ``name`` to ``value``, for messages: ``--lr 0.1``, ``--no-augment``,
    ``without --limit-train`` (the default); a field without a flag as ``name=value``."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    if not f.metadata.get("cli", True):
        return f"{name}={json.dumps(value)}"
    flag = f.metadata.get("flag", "--" + name.replace("_", "-"))
    if isinstance(value, bool):
        if f.metadata.get("negatable"):
            return flag if value else "--no-" + flag[2:]
        sets = not flag.startswith("--no-")  # the value the bare flag gives
        return flag if value == sets else f"without {flag}"
    if value is None:  # the default, or a word the flag's parser reads as None (``--attention none``)
        parse = f.metadata.get("parse")
        return f"{flag} none" if parse is not None and parse("none") is None else f"without {flag}"
    return f"{flag} '{json.dumps(value)}'" if isinstance(value, dict) else f"{flag} {value}"


def _attributes_doc(cls: type) -> str:
    """A Google-style ``Attributes:`` section from the fields' help texts."""
    lines = ["", "    Attributes:"]
    lines += [f"        {f.name}: {f.metadata['help']}." for f in fields(cls)]
    return "\n".join(lines) + "\n"


TrainConfig.__doc__ = (TrainConfig.__doc__ or "") + "\n" + _attributes_doc(TrainConfig)
