"""What every CAM method shares: target layers, hooks as a context manager, targets, map post-processing.

A method is a context manager over forward hooks on one or more target layers::

    with GradCAM(model, "layer4") as cam:
        maps = cam(x)                  # (N, H, W) in [0, 1] at the input size
        raw = cam(x, raw=True)         # (N, h, w) >= 0 at the layer's resolution

Hooks are registered when the object is built and removed on ``__exit__`` (also after an exception;
removal is idempotent). They record only during the method's own forward pass, so the user's own
forwards inside the ``with`` block are unaffected. Each call leaves the model as it found it: it runs
in eval mode (no BatchNorm statistic update, no dropout) and restores every module's own
``training`` flag, and gradients are taken with :func:`torch.autograd.grad` on the stored
activations, so no parameter's ``.grad`` is touched.

Gradient methods make one forward and one backward per batch. The forward runs without autograd
up to the first target layer; its output is made a leaf that requires grad and the rest of the
forward is recorded, so the backward only traverses the network *after* the target layers (the
head, for ``layer4``) and nothing before them keeps tensors alive.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..names import suggest

__all__ = [
    "CAMResult",
    "LayerSpec",
    "TargetSpec",
    "check_finite",
    "combine_maps",
    "default_target_layer",
    "eval_mode",
    "normalize_maps",
    "resolve_target_layers",
    "resolve_targets",
    "upsample_maps",
]

LayerSpec = nn.Module | str
#: None (the predicted class), a class index, one index per image (sequence or tensor), or a callable
#: mapping the model output to one score per image (N,).
TargetSpec = int | Sequence[int] | Tensor | Callable[[Any], Tensor] | None


# ----------------------------------------------------------------------------------------------------------------
# Layers


def default_target_layer(model: nn.Module, input_shape: Sequence[int] | None = None) -> str:
    """The last module whose output is a 4-D map with more than one position (``layer4`` on a ResNet).

    Found with one dry forward pass of a zero batch (1, *input_shape) in eval mode without autograd.

    Args:
        model: the network.
        input_shape: (C, H, W) of one input; default (C of the first Conv2d, 224, 224).

    Raises:
        ValueError: when no module returns such a map.
    """
    if input_shape is None:
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if conv is None:
            raise ValueError("cannot guess the input shape (the model has no Conv2d): pass target_layer or input_shape")
        input_shape = (conv.in_channels, 224, 224)
    order: list[tuple[str, tuple[int, ...]]] = []

    def record(name: str, _m: nn.Module, _inp: object, out: object) -> None:
        if isinstance(out, Tensor):
            order.append((name, tuple(out.shape)))

    handles = [m.register_forward_hook(partial(record, n)) for n, m in model.named_modules() if n]
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        dtype = param.dtype if param is not None and param.is_floating_point() else None
        with eval_mode(model), torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    for name, shape in reversed(order):
        if len(shape) == 4 and shape[2] * shape[3] > 1:
            return name
    raise ValueError(f"no module of {type(model).__name__} returns a (N, C, h, w) map at input shape "
                     f"{tuple(input_shape)}; pass target_layer explicitly")


def resolve_target_layers(model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None,
                          input_shape: Sequence[int] | None = None) -> list[str]:
    """Dotted names of the target layers, given as modules, dotted names, a list of them, or None (guess).

    Raises:
        ValueError: an unknown name (with the closest name), a module not inside ``model``, a repeat, or an
            empty list.
        TypeError: anything else.
    """
    if target_layer is None:
        return [default_target_layer(model, input_shape)]
    specs = [target_layer] if isinstance(target_layer, (str, nn.Module)) else target_layer
    if not isinstance(specs, Sequence) or isinstance(specs, str):
        raise TypeError(f"target_layer must be a module, a dotted name or a list of them, got {type(target_layer)}")
    if not specs:
        raise ValueError("target_layer is an empty list")
    modules = dict(model.named_modules())
    by_id = {id(m): n for n, m in reversed(list(modules.items()))}  # first name of a module reached twice
    names: list[str] = []
    for spec in specs:
        if isinstance(spec, nn.Module):
            if id(spec) not in by_id:
                raise ValueError(f"the {type(spec).__name__} passed as target_layer is not a submodule of the model")
            name = by_id[id(spec)]
        elif isinstance(spec, str):
            if spec not in modules:
                close = suggest(spec, [n for n in modules if n])
                hint = f"; did you mean {close!r}?" if close else ""
                raise ValueError(f"no module named {spec!r} in {type(model).__name__}{hint} "
                                 "(see model.named_modules())")
            name = spec
        else:
            raise TypeError(f"target_layer entries must be modules or dotted names, got {type(spec).__name__}")
        if name in names:
            raise ValueError(f"target layer {name!r} given twice")
        names.append(name)
    return names


# ----------------------------------------------------------------------------------------------------------------
# Model state


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode, then give each its own ``training`` flag back (also after an error).

    Flags are set directly rather than through ``Module.train``, so an overridden ``train`` method runs
    neither on entry nor on exit.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in modes:
            m.training = False
        yield
    finally:
        for m, flag in modes:
            m.training = flag


# ----------------------------------------------------------------------------------------------------------------
# Targets


def resolve_targets(targets: TargetSpec, output: Any) -> tuple[Tensor, Tensor | None]:
    """The score of each image's target and, for class-index targets, the class of each image.

    Args:
        targets: None (the predicted class, ``output.argmax(1)``), an int (every image), a sequence or tensor
            of N class indices, or a callable mapping ``output`` to N scores.
        output: the model's output: (N, classes) logits, or anything a callable target understands.

    Returns:
        ``(scores (N,), classes (N,) long or None)``; the scores keep their autograd graph.

    Raises:
        ValueError: a class index out of range, a wrong count, or a callable returning the wrong shape.
        TypeError: class-index targets on an output that is not (N, classes), or a target of another type.
    """
    if callable(targets) and not isinstance(targets, Tensor):
        scores = targets(output)
        n = _batch_size(output)
        if not isinstance(scores, Tensor):
            raise TypeError(f"a callable target must return a tensor of N scores, got {type(scores).__name__}")
        if n is not None and scores.numel() != n:
            raise ValueError(f"a callable target must return N={n} scores (one per image), got shape "
                             f"{tuple(scores.shape)}")
        return scores.reshape(-1), None
    if not isinstance(output, Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise TypeError(f"class-index targets need (N, classes) logits, the model returned {shape}; "
                        "pass a callable target that maps the output to N scores")
    n, k = output.shape
    if targets is None:
        classes = output.detach().argmax(1)
    elif isinstance(targets, bool):
        raise TypeError("targets must be class indices, not a bool")
    elif isinstance(targets, numbers.Integral):
        classes = torch.full((n,), int(targets), dtype=torch.long, device=output.device)
    elif isinstance(targets, Tensor):
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise TypeError(f"target tensor must hold integer class indices, got dtype {targets.dtype}")
        classes = targets.reshape(-1).to(device=output.device, dtype=torch.long)
        if targets.dim() == 0:
            classes = classes.expand(n)
    elif isinstance(targets, Sequence) and not isinstance(targets, str):
        if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in targets):
            raise TypeError("a sequence of targets must hold int class indices")
        classes = torch.as_tensor([int(t) for t in targets], dtype=torch.long, device=output.device)
    else:
        raise TypeError(f"targets must be None, an int, a sequence or tensor of ints, or a callable; "
                        f"got {type(targets).__name__}")
    if classes.numel() != n:
        raise ValueError(f"got {classes.numel()} targets for a batch of {n} images")
    if n and (int(classes.min()) < 0 or int(classes.max()) >= k):
        raise ValueError(f"target class out of range [0, {k}): {classes.tolist()}")
    return output.gather(1, classes[:, None]).squeeze(1), classes


def _batch_size(output: Any) -> int | None:
    if isinstance(output, Tensor) and output.dim() > 0:
        return output.shape[0]
    return None


# ----------------------------------------------------------------------------------------------------------------
# Non-finite values


def check_finite(t: Tensor, what: str, hint: str) -> None:
    """Raise when ``t`` (N, ...) holds NaN or inf: a CAM of it would be silently all zero.

    Args:
        t: a batch, first dim = image (the input, activations, scores, gradients or maps).
        what: what ``t`` is, for the message (``"the input x"``).
        hint: what the user can do about it.

    Raises:
        ValueError: naming how many values are NaN and inf, and in which images.
    """
    finite = torch.isfinite(t)
    if bool(finite.all()):
        return
    bad = ~finite
    count, nan = int(bad.sum()), int(torch.isnan(t).sum())
    images = bad.reshape(bad.shape[0], -1).any(1).nonzero().flatten().tolist() if t.dim() else []
    where = f", in image{'s' if len(images) > 1 else ''} {_some(images)}" if images else ""
    raise ValueError(f"{count} non-finite value{'s' if count > 1 else ''} ({nan} NaN, {count - nan} inf) of "
                     f"{t.numel()} in {what}{where}; a CAM would be an all-zero map: {hint}")


def _some(items: list[int], k: int = 8) -> str:
    """``[0, 3, 5]``, or the first ``k`` and how many more."""
    return str(items) if len(items) <= k else f"{items[:k]} and {len(items) - k} more"


# ----------------------------------------------------------------------------------------------------------------
# Maps


def normalize_maps(maps: Tensor) -> Tensor:
    """Min-max normalise each map over its last two dims to [0, 1]; a constant map becomes zeros (no NaN).

    (..., H, W) -> (..., H, W)
    """
    lo = maps.amin((-2, -1), keepdim=True)
    shifted = maps - lo
    hi = shifted.amax((-2, -1), keepdim=True)
    return torch.where(hi > 0, shifted / hi.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(shifted))


def upsample_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling (align_corners=False) of (N, h, w) maps to (N, H, W), computed in float32 or wider."""
    size = tuple(int(s) for s in size)
    if maps.dtype in (torch.float16, torch.bfloat16):
        maps = maps.float()
    if tuple(maps.shape[-2:]) == size:
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def combine_maps(raw: Sequence[Tensor], size: Sequence[int]) -> Tensor:
    """Input-size maps in [0, 1] from one or several layers' raw maps.

    Each raw map (N, h_l, w_l) is upsampled to ``size`` and min-max normalised; several layers are then
    averaged and the mean normalised again, so each layer counts equally whatever its activation scale.
    """
    maps = [normalize_maps(upsample_maps(r, size)) for r in raw]
    if len(maps) == 1:
        return maps[0]
    return normalize_maps(torch.stack(maps).mean(0))


@dataclass
class CAMResult:
    """Everything one CAM call computed.

    Attributes:
        maps: (N, H, W) in [0, 1] at the input size.
        raw: target layer name -> (N, h, w) map before upsampling and normalisation (>= 0 after the method's ReLU).
        output: the model's output on the input (logits), detached.
        classes: (N,) target class of each image, or None for a callable target (or a class-agnostic method).
    """

    maps: Tensor
    raw: dict[str, Tensor] = field(default_factory=dict)
    output: Any = None
    classes: Tensor | None = None


# ----------------------------------------------------------------------------------------------------------------
# The base class


class _CAMBase:
    """Shared base of the CAM methods: a context manager owning forward hooks on the target layers.

    Args:
        model: any CNN (an ``nn.Module`` returning (N, classes) logits, or any output a callable target reads).
        target_layer: a module of ``model``, its dotted name, or a list of them (maps are combined, see
            :func:`combine_maps`); None picks the last module returning a (N, C, h, w) map.
        channels_last: feed the model channels-last inputs (the same maps, up to float rounding; often
            faster on CPU with oneDNN and on GPU). None (default) tries it and falls back to the input's own
            layout for good if the model raises on it (e.g. a ``.view`` on a feature map); True or False force it.
        input_shape: (C, H, W) used only to guess ``target_layer`` when it is None.

    Raises:
        ValueError: unknown layer name (with close matches) or a module outside ``model``.
    """

    #: the registry name of the method
    name: ClassVar[str] = ""
    #: whether the method needs d score / d activation
    needs_gradients: ClassVar[bool] = True
    #: whether the map explains no class (it takes no targets, and ``CAMResult.classes`` is None)
    class_agnostic: ClassVar[bool] = False

    def __init__(self, model: nn.Module, target_layer: LayerSpec | Sequence[LayerSpec] | None = None, *,
                 channels_last: bool | None = None, input_shape: Sequence[int] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if channels_last not in (None, True, False):
            raise TypeError(f"channels_last must be None, True or False, got {channels_last!r}")
        self.model = model
        self.channels_last = channels_last
        self._use_channels_last = channels_last is not False
        self.target_names = resolve_target_layers(model, target_layer, input_shape)
        self._acts: list[Tensor | None] = [None] * len(self.target_names)
        self._recording = False
        self.hook_handles: list[torch.utils.hooks.RemovableHandle] = []
        modules = dict(model.named_modules())
        try:
            for idx, name in enumerate(self.target_names):
                self.hook_handles.append(modules[name].register_forward_hook(partial(self._hook, idx=idx)))
        except BaseException:
            self.remove_hooks()
            raise

    # -- context manager -------------------------------------------------------------------------------------
    def __enter__(self) -> _CAMBase:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove_hooks()

    def remove_hooks(self) -> None:
        """Remove every hook this object registered (safe to call more than once)."""
        try:
            while self.hook_handles:
                self.hook_handles.pop().remove()
        finally:
            self._acts = [None] * len(self.target_names)
            self._recording = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target_layer={self.target_names})"

    # -- hooks -----------------------------------------------------------------------------------------------
    def _hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any, idx: int) -> Tensor | None:
        if not self._recording:
            return None
        if not isinstance(output, Tensor):
            raise TypeError(f"target layer {self.target_names[idx]!r} returned {type(output).__name__}; "
                            "a CAM target layer must return one (N, C, h, w) tensor")
        if not self.needs_gradients:
            self._acts[idx] = output.detach()
        elif output.requires_grad:
            self._acts[idx] = output
        else:
            # first target layer reached: the rest of the forward is recorded from here on
            self._acts[idx] = output.detach().requires_grad_()
            torch.set_grad_enabled(True)
        # hand a copy on, so in-place ops after the layer (ReLU(inplace), +=) leave the stored activation intact
        return self._acts[idx].clone()

    def _forward(self, x: Tensor) -> tuple[list[Tensor], Any]:
        """One recorded forward pass: (activations of each target layer, model output)."""
        grad_mode = torch.is_grad_enabled()
        self._recording = True
        try:
            while True:
                self._acts = [None] * len(self.target_names)
                torch.set_grad_enabled(False)
                try:
                    output = self.model(self._layout(x))
                    break
                except RuntimeError as err:
                    if not self._layout_fallback(x):
                        mismatch = self._input_mismatch(x)
                        if mismatch:
                            raise ValueError(mismatch) from err
                        raise
        finally:
            self._recording = False
            torch.set_grad_enabled(grad_mode)
        acts, self._acts = self._acts, [None] * len(self.target_names)
        for name, a in zip(self.target_names, acts, strict=True):
            if a is None:
                raise RuntimeError(f"target layer {name!r} was not called in the forward pass")
            if a.dim() != 4:
                raise ValueError(f"target layer {name!r} returned shape {tuple(a.shape)}; a CAM needs (N, C, h, w)")
        return acts, output

    def _input_mismatch(self, x: Tensor) -> str | None:
        """After the model raised on ``x``: what about ``x`` does not fit its first convolution, if anything."""
        conv = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
        if not x.is_floating_point():
            return (f"x is {x.dtype}; the model takes floating-point images (e.g. x.float() / 255, then the "
                    "model's normalisation)")
        if conv is None:
            return None
        if x.shape[1] != conv.in_channels:
            return (f"x has {x.shape[1]} channel{'s' if x.shape[1] != 1 else ''}, the model's first convolution "
                    f"takes {conv.in_channels} "
                    f"(x is {tuple(x.shape)})")
        if x.dtype != conv.weight.dtype or x.device != conv.weight.device:
            return (f"x is {x.dtype} on {x.device}, the model's weights {conv.weight.dtype} on {conv.weight.device}: "
                    "move one to the other (x.to(weight))")
        return None

    # -- input layout ----------------------------------------------------------------------------------------
    def _layout(self, x: Tensor) -> Tensor:
        if self._use_channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _layout_fallback(self, x: Tensor) -> bool:
        """After the model raised on a channels-last input in auto mode: switch to the input's layout, retry."""
        if self.channels_last is None and self._use_channels_last and x.dim() == 4:
            self._use_channels_last = False
            return True
        return False

    def _run(self, x: Tensor) -> Any:
        """A plain forward pass (no recording) in the chosen layout."""
        while True:
            try:
                return self.model(self._layout(x))
            except RuntimeError:
                if not self._layout_fallback(x):
                    raise

    # -- the call --------------------------------------------------------------------------------------------
    def __call__(self, x: Tensor, targets: TargetSpec = None, *, raw: bool = False) -> Tensor:
        """Class activation maps of a batch.

        Args:
            x: input batch (N, C, H, W).
            targets: None (predicted class), an int, N class indices, or a callable on the output giving N scores.
            raw: return the (N, h, w) map at the target layer's resolution, after the method's ReLU and before
                upsampling and normalisation (one target layer only; see :meth:`compute` for several).

        Returns:
            (N, H, W) maps in [0, 1] at the input size, or the raw (N, h, w) map.
        """
        result = self.compute(x, targets)
        if raw:
            if len(result.raw) != 1:
                raise ValueError(f"raw=True needs one target layer, this {type(self).__name__} has "
                                 f"{len(result.raw)}; use .compute(x).raw for each layer's map")
            return next(iter(result.raw.values()))
        return result.maps

    def compute(self, x: Tensor, targets: TargetSpec = None) -> CAMResult:
        """Like ``__call__`` but return everything: input-size maps, each layer's raw map, output, classes.

        Raises:
            ValueError: ``x`` is not (N, C, H, W), a bad target, or a NaN or inf in the input, the target
                layers' activations, the target scores, the gradients or the maps (:func:`check_finite`):
                such a map would come out all zero.
        """
        if not self.hook_handles:
            raise RuntimeError(f"the hooks of this {type(self).__name__} were removed (it was used outside its "
                               "`with` block or after remove_hooks()); create a new one")
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        check_finite(x.detach(), "the input x", "replace or drop those values (e.g. torch.nan_to_num) first")
        with eval_mode(self.model), torch.inference_mode(False):
            try:
                acts, output = self._forward(x)
                for name, a in zip(self.target_names, acts, strict=True):
                    check_finite(a.detach(), f"the activation of target layer {name!r}",
                                 "the model overflows on this input, or its weights hold NaN/inf")
                raw, classes = self._raw_maps(x, acts, output, targets)
            finally:
                self._acts = [None] * len(self.target_names)
        with torch.no_grad():
            raw = [r.detach().float() if r.dtype in (torch.float16, torch.bfloat16) else r.detach() for r in raw]
            for name, r in zip(self.target_names, raw, strict=True):
                check_finite(r, f"the {self.name or type(self).__name__} map of target layer {name!r}",
                             "it overflowed: run the model in float32")
            maps = combine_maps(raw, x.shape[-2:])
        out = output.detach() if isinstance(output, Tensor) else output
        return CAMResult(maps=maps, raw=dict(zip(self.target_names, raw, strict=True)), output=out, classes=classes)

    def _raw_maps(self, x: Tensor, acts: list[Tensor], output: Any,
                  targets: TargetSpec) -> tuple[list[Tensor], Tensor | None]:
        """Each target layer's raw (N, h, w) map and the classes used. Subclasses implement this."""
        raise NotImplementedError
