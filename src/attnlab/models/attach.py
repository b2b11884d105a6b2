"""Put attention into a model the user already has, and take it out again.

:func:`attach` finds where the attention goes with one dry forward pass (eval mode, one example image,
under autograd), then inserts one module per place:

* ``where="blocks"``: every residual block, i.e. every module whose output is (an activation of)
  ``branch(x) + shortcut(x)`` where the branch holds more convolutions than the shortcut (identity, or
  a projection such as torchvision's and timm's ``downsample``). The addition may be out of place, in
  place (``x += shortcut``, also on a view: GhostNet's ``x`` is a channel slice) or on the first
  channels only (ReXNet: ``x[:, :c] += shortcut``, or ``cat([x[:, :c] + shortcut, x[:, c:]])``).
  Concatenations count too: a module returning ``cat(shortcut(x), branch(x))`` of two paths, neither
  computed from the other (ShuffleNetV2's split-concat-shuffle units; the attention goes on the branch
  with more convolutions, before the concatenation), and a dense layer, a module whose output its
  caller concatenates with the layer's own input (DenseNet: the attention goes on the new features).
  Blocks are recognised from the autograd graph of the dry forward, not from class names, so a user's
  own block class counts as long as it has that shape. The attention goes on the branch after its last
  module (the last BN), before the addition: the placement of the SE and CBAM papers and of the model
  zoo. Where none is found, :func:`attach` says so and points to ``where="stages"``.
* ``where="stages"``: after every stage. A stage is the module holding a run of residual blocks
  (torchvision's ``layer1`` ... ``layer4``); in a network without residual blocks, the last module
  of each run of layers at one spatial resolution.
* ``where=["features.3", "layer2", ...]``: after each named module.

Channel counts come from the dry forward (the output shape of the module the attention follows).

How it is inserted, so that nothing the model already had changes:

* The attention is applied by a forward hook on the module it follows (the hook replaces that module's
  output with ``attention(output)``); no module is replaced or wrapped, so every existing parameter
  keeps its state_dict name and value, a checkpoint saved before ``attach`` loads into the attached
  model with only the attention keys missing (:func:`attnlab.load_backbone`), and the output shape is
  unchanged.
* The attention module is registered as a submodule (so it trains, moves with ``.to()``, saves and
  loads): as ``attn`` of the block (``layer1.0.attn``); as ``attn`` of a named plain module
  (``features.3.attn``); for a container (``nn.Sequential``, ``nn.ModuleList``), whose own forward
  would run any child it is given, as ``<path>_attn`` on its nearest plain ancestor (``layer1_attn``
  on the model). A name that is taken gets a numeric suffix (``attn_1``).
* Blocks of :mod:`attnlab.models.resnet` have attention slots of their own; there the module goes into
  the slot (``attn`` for ``"blocks"``, ``post_attn`` after a named block) and no hook is needed, so an
  attached zoo network has exactly the keys and the computation of the one built with attention.

The hooks are picklable objects, so ``copy.deepcopy(model)`` and ``torch.save(model)`` keep the
attention working. :func:`detach` removes what :func:`attach` inserted (and nothing else).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import AttentionModule
from ..names import suggest
from ._attn import MARK, AttentionSpec, make_attention

__all__ = ["attach", "detach", "find_blocks", "find_stages"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_GUESS_SIZES = (224, 32, 28, 64)


class _AttentionHook:
    """Forward hook ``output -> owner.<attr>(output)``; a plain object, so deepcopy and pickle keep it.

    ``target`` is the module it is registered on and ``position`` where that puts the attention: ``"branch"``
    (the residual branch of ``owner``, a block) or ``"after"`` (after ``target``), so a second
    :func:`attach` to the same place can be recognised.
    """

    def __init__(self, owner: nn.Module, attr: str, target: nn.Module | None = None, position: str = "after") -> None:
        self.owner = owner
        self.attr = attr
        self.target = target
        self.position = position
        self.handle: Any = None

    def __call__(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return getattr(self.owner, self.attr)(output)


# --- the dry forward -------------------------------------------------------------------------------------------


@dataclass
class _Record:
    """One module's call during the dry forward."""

    name: str
    module: nn.Module
    start: int = -1
    end: int = -1
    calls: int = 0
    x: Any = None  # the input's autograd node (or the input itself when it is a leaf)
    out: Any = None  # the output's autograd node at the time the module returned
    shape: tuple[int, ...] | None = None
    dtype: torch.dtype | None = None
    device: torch.device | None = None
    children: list[str] = field(default_factory=list)


def _node(t: Tensor) -> Any:
    return t.grad_fn if t.grad_fn is not None else t


def _first_tensor(args: Any) -> Tensor | None:
    """The first tensor of a module's arguments, looking into a leading list (DenseNet's layers take one)."""
    while isinstance(args, (tuple, list)) and args:
        args = args[0]
    return args if isinstance(args, Tensor) else None


def _example_inputs(model: nn.Module, example_input: Tensor | None) -> list[Tensor]:
    if example_input is not None:
        return [example_input]
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d to take the input channels from; "
                         "pass example_input=torch.randn(1, C, H, W)")
    p = conv.weight
    return [torch.randn(1, conv.in_channels, s, s, dtype=p.dtype, device=p.device) for s in _GUESS_SIZES]


def _trace(model: nn.Module, example_input: Tensor | None) -> dict[str, _Record]:
    """Run one forward in eval mode with hooks on every module; the model's state is left unchanged."""
    errors = []
    for x in _example_inputs(model, example_input):
        records: dict[str, _Record] = {}
        clock = itertools.count()
        handles = []
        for name, m in model.named_modules():
            rec = records[name] = _Record(name, m, children=[n for n, _ in m.named_children()])

            def pre(mod: nn.Module, args: Any, rec: _Record = rec, clock: Any = clock) -> None:
                rec.calls += 1
                rec.start = next(clock)
                t = _first_tensor(args)
                rec.x = None if t is None else _node(t)

            def post(mod: nn.Module, args: Any, out: Any, rec: _Record = rec, clock: Any = clock) -> None:
                rec.end = next(clock)
                if isinstance(out, Tensor):
                    rec.out, rec.shape, rec.dtype, rec.device = _node(out), tuple(out.shape), out.dtype, out.device

            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
        flags = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            with torch.inference_mode(False), torch.enable_grad():
                inp = x.detach().requires_grad_(x.is_floating_point()).clone()  # not a leaf: in-place ops allowed
                model(inp)  # the records hold the autograd nodes, which keep the graph alive
            return records
        except Exception as err:  # noqa: BLE001 - any failure means: try the next input size
            errors.append(f"{tuple(x.shape)}: {type(err).__name__}: {err}")
        finally:
            for h in handles:
                h.remove()
            for m, flag in flags:
                m.training = flag
    raise ValueError(f"the dry forward of {type(model).__name__} failed for every input tried "
                     f"({'; '.join(errors)[:600]}); pass example_input=torch.randn(1, C, H, W)")


# --- residual blocks from the autograd graph --------------------------------------------------------------------


def _is_param(node: Any) -> bool:
    return type(node).__name__ == "AccumulateGrad"


def _matches(node: Any, x: Any) -> bool:
    return node is x or (isinstance(x, Tensor) and getattr(node, "variable", None) is x)


def _convs_to_input(node: Any, x: Any, outside: set[int], limit: int = 20000) -> int | None:
    """The most convolutions on any autograd path from ``node`` back to the block input ``x`` (None: no path).

    ``outside`` holds the nodes produced before the block started: the search stops there.
    """
    memo: dict[int, int | None] = {}
    stack: list[tuple[Any, bool]] = [(node, False)]
    seen = 0
    while stack:
        n, expanded = stack.pop()
        key = id(n)
        if key in memo and not expanded:
            continue
        if _matches(n, x):
            memo[key] = 0
            continue
        nexts = [m for m, _ in getattr(n, "next_functions", ()) if m is not None and not _is_param(m)]
        if key in outside or not nexts:
            memo[key] = None
            continue
        if not expanded:
            seen += 1
            if seen > limit:
                return None
            stack.append((n, True))
            stack.extend((m, False) for m in nexts if id(m) not in memo)
            continue
        found = [memo.get(id(m)) for m in nexts]
        found = [f for f in found if f is not None]
        memo[key] = None if not found else max(found) + ("Convolution" in type(n).__name__)
    return memo.get(id(node))


@dataclass
class _Block:
    name: str
    merge: Any  # the autograd node where the branch meets the shortcut (an addition or a concatenation)
    end: str  # dotted name of the last module of the branch
    channels: int  # channels of the branch's output (the attention's input)


_VIEWS = ("SliceBackward", "AsStridedBackward", "ViewBackward", "SelectBackward", "AliasBackward",
          "UnsafeViewBackward")


def _op(node: Any) -> str:
    return type(node).__name__


def _inputs(node: Any) -> list[Any]:
    """The autograd inputs of ``node`` that are not parameters."""
    return [m for m, _ in getattr(node, "next_functions", ()) if m is not None and not _is_param(m)]


def _through_views(node: Any, steps: int = 4) -> list[Any]:
    """``node``, then the node it is a view of (slice, as_strided, view, select), and so on: the chain to its base."""
    chain = [node]
    for _ in range(steps):
        ins = _inputs(node)
        if not _op(node).startswith(_VIEWS) or len(ins) != 1:
            break
        node = ins[0]
        chain.append(node)
    return chain


def _unwrap_copy(node: Any) -> Any:
    """The node under the write-back of ``x[idx] += y``.

    Python runs ``x[idx] += y`` as an in-place add on the view ``x[idx]`` (a ``CopySlices`` node over x's
    base: inputs base and y) and then ``x[idx] = view``, a second ``CopySlices`` (``CopyBackwards`` when
    idx covers all of x) whose source is a view of the first: that one changes nothing and is skipped.
    """
    for _ in range(4):
        ins = _inputs(node)
        copy = _op(node) in ("CopySlices", "CopyBackwards") and len(ins) == 2
        if not copy or not any(n is ins[0] for n in _through_views(ins[1])):
            break
        node = ins[0]
    return node


def _partial_add(pieces: list[Any]) -> Any | None:
    """The addition of ``cat([y[:, :c] + shortcut, y[:, c:]])`` (a shortcut on the first c channels), or None."""
    for i, piece in enumerate(pieces):
        ins = _inputs(piece)
        if not _op(piece).startswith("AddBackward") or len(ins) != 2:
            continue
        rest = [_through_views(q) for j, q in enumerate(pieces) if j != i]
        for a in ins:
            chain = _through_views(a)
            if len(chain) > 1 and all(len(c) > 1 and c[-1] is chain[-1] for c in rest):
                return piece
    return None


def _merge_of(node: Any, x: Any) -> tuple[str, Any, list[Any]] | None:
    """Where a module's output (autograd ``node``) merges two paths, looking back through activations, scalings
    and reshapes (no convolution): ``("add", node, [a, b])`` for ``a + b`` (also in place, on a view, or on the
    first channels only) or ``("cat", node, pieces)`` for a channel concatenation; None when there is neither.
    """
    for _ in range(10):
        if _matches(node, x):
            return None
        node = _unwrap_copy(node)
        ins, op = _inputs(node), _op(node)
        if (op.startswith("AddBackward") or op == "CopySlices") and len(ins) == 2:
            return "add", node, ins  # CopySlices: an in-place addition on a slice (x[:, :c] += s, ghost's x += s)
        if op.startswith("CatBackward") and len(ins) >= 2:
            add = _partial_add(ins)
            return ("add", add, _inputs(add)) if add is not None else ("cat", node, ins)
        if len(ins) != 1 or "Convolution" in op:
            return None
        node = ins[0]
    return None


def _may_be_block(rec: _Record) -> bool:
    """A module called once, taking and returning a feature map, with children, and not a plain container."""
    return (rec.calls == 1 and rec.out is not None and rec.x is not None and rec.shape is not None
            and len(rec.shape) == 4 and not isinstance(rec.module, _CONTAINERS) and bool(rec.children))


def _branch_end(rec: _Record, branch: Any, produced: dict[int, list[_Record]], outside: set[int],
                channels: int | None) -> _Record | None:
    """The branch's last module: the innermost module inside ``rec`` that produced the branch tensor.

    ``channels``: the branch's channel count when known (an addition: the block's), else any count below the
    block's (a concatenation); batch size and map size are always the block's.
    """
    prefix = rec.name + "." if rec.name else ""
    n, _, h, w = rec.shape

    def fits(r: _Record) -> bool:
        s = r.shape
        return (s is not None and len(s) == 4 and (s[0], s[2], s[3]) == (n, h, w)
                and (s[1] == channels if channels is not None else s[1] < rec.shape[1]))

    frontier, seen = [branch], set()
    for _ in range(64):
        nxt = []
        for node in frontier:
            if id(node) in seen or _matches(node, rec.x) or id(node) in outside:
                continue
            seen.add(id(node))
            inside = [r for r in produced.get(id(node), []) if r.name.startswith(prefix) and r.name != rec.name
                      and r.start > rec.start and r.calls == 1 and fits(r)]
            if inside:
                return min(inside, key=lambda r: r.end)
            nxt += _inputs(node)
        if not nxt:
            return None
        frontier = nxt
    return None


def _residual(rec: _Record, produced: dict[int, list[_Record]], outside: set[int]) -> _Block | None:
    """The block of one module's call, or None: its output is (an activation of) ``branch(x) + shortcut(x)``
    or ``cat(shortcut(x), branch(x))`` (two pieces), the branch holding more convolutions than the shortcut;
    in a concatenation, a shortcut with convolutions must not feed the branch (GhostNet's ``cat(f(x), g(f(x)))``
    is one module of a block, not a block).
    """
    merge = _merge_of(rec.out, rec.x)
    if merge is None:
        return None
    kind, node, ins = merge
    if len(ins) != 2:
        return None  # a concatenation of three or more paths (Inception) is no residual block
    counts = [_convs_to_input(i, rec.x, outside) for i in ins]
    if None in counts or counts[0] == counts[1] or max(counts) < 1:
        return None
    branch, shortcut = (ins[0], ins[1]) if counts[0] > counts[1] else (ins[1], ins[0])
    if kind == "cat" and min(counts) > 0 and _convs_to_input(branch, shortcut, outside) is not None:
        return None  # cat(f(x), g(f(x))): one path computed from the other (GhostNet's module), not a shortcut
    end = _branch_end(rec, branch, produced, outside, rec.shape[1] if kind == "add" else None)
    return None if end is None else _Block(rec.name, node, end.name, end.shape[1])


def _concatenations(records: dict[str, _Record]) -> dict[int, list[list[Any]]]:
    """For every autograd node that is a piece of a channel concatenation some module returns or takes
    (looking through activations and reshapes): the pieces of each such concatenation.
    """
    cats: dict[int, list[Any]] = {}
    for r in records.values():
        for node in (r.out, r.x):
            for _ in range(8):
                if node is None or isinstance(node, Tensor):
                    break
                ins = _inputs(node)
                if _op(node).startswith("CatBackward") and len(ins) >= 2:
                    cats[id(node)] = ins
                    break
                if len(ins) != 1 or "Convolution" in _op(node):
                    break
                node = ins[0]
    pieces: dict[int, list[list[Any]]] = {}
    for ins in cats.values():
        for p in ins:
            pieces.setdefault(id(p), []).append(ins)
    return pieces


def _dense_layer(rec: _Record, in_cat: dict[int, list[list[Any]]], produced: dict[int, list[_Record]],
                 outside: set[int]) -> _Block | None:
    """``rec`` as a dense layer (DenseNet): its output, computed by convolutions from its input x, is
    concatenated with x by its caller (``torch.cat([x, layer(x)])``, ``torch.cat([x, f1, f2, ...])``).
    """
    for pieces in in_cat.get(id(rec.out), []):
        if not any(_matches(p, rec.x) for p in pieces if p is not rec.out):
            continue
        if not _convs_to_input(rec.out, rec.x, outside):
            return None
        end = _branch_end(rec, rec.out, produced, outside, rec.shape[1])
        return None if end is None else _Block(rec.name, pieces, end.name, end.shape[1])
    return None


def _find_blocks(records: dict[str, _Record]) -> list[_Block]:
    """Every residual block (``x + f(x)``, in place, partial), split-concat unit (ShuffleNet) and dense layer."""
    produced: dict[int, list[_Record]] = {}
    done_before: dict[int, int] = {}
    for r in records.values():
        if r.out is not None:
            done_before[id(r.out)] = min(done_before.get(id(r.out), r.end), r.end)
            for node in _through_views(r.out):  # a module returning a view of a tensor it made produced that too
                produced.setdefault(id(node), []).append(r)
    in_cat = _concatenations(records)
    by_end: dict[str, _Block] = {}
    for rec in records.values():
        if not _may_be_block(rec):
            continue
        outside = {k for k, t in done_before.items() if t < rec.start}
        blk = _residual(rec, produced, outside) or _dense_layer(rec, in_cat, produced, outside)
        if blk is None:
            continue
        old = by_end.get(blk.end)
        if old is None or len(blk.name) > len(old.name):  # nested wrappers share the branch: keep the innermost
            by_end[blk.end] = blk
    return sorted(by_end.values(), key=lambda b: records[b.name].start)


def _stage_ends(records: dict[str, _Record], blocks: list[_Block]) -> list[str]:
    if blocks:
        names: list[str] = []
        loose: list[_Block] = []
        for blk in blocks:
            parent = blk.name.rpartition(".")[0]
            if parent:
                if parent not in names:
                    names.append(parent)
            else:
                loose.append(blk)
        # blocks that are children of the model itself: the last block of each run at one resolution
        for i, blk in enumerate(loose):
            nxt = loose[i + 1] if i + 1 < len(loose) else None
            if nxt is None or records[nxt.name].shape[2:] != records[blk.name].shape[2:]:
                names.append(blk.name)
        ok = [n for n in names if records[n].calls == 1 and records[n].shape is not None and len(records[n].shape) == 4]
        return sorted(ok, key=lambda n: records[n].end)
    leaves = sorted((r for r in records.values() if not r.children and r.calls == 1 and r.shape is not None
                     and len(r.shape) == 4), key=lambda r: r.end)
    ends = []
    for i, r in enumerate(leaves):
        if i + 1 == len(leaves) or leaves[i + 1].shape[2:] != r.shape[2:]:
            ends.append(r.name)
    return ends


def find_blocks(model: nn.Module, example_input: Tensor | None = None) -> list[str]:
    """Dotted names of the residual blocks :func:`attach` finds with ``where="blocks"``, in forward order.

    Attention already in the model is left out of the search, so the answer is the same before and after
    :func:`attach`; likewise for :func:`find_stages`.
    """
    return [b.name for b in _find_blocks(_without_attention(_trace(model, example_input)))]


def find_stages(model: nn.Module, example_input: Tensor | None = None) -> list[str]:
    """Dotted names of the modules :func:`attach` puts attention after with ``where="stages"``."""
    records = _without_attention(_trace(model, example_input))
    return _stage_ends(records, _find_blocks(records))


# --- inserting and removing ---------------------------------------------------------------------------------------


def _free_name(module: nn.Module, base: str) -> str:
    name, i = base, 0
    while hasattr(module, name):
        i += 1
        name = f"{base}_{i}"
    return name


def _free_slot(module: nn.Module, position: str) -> str | None:
    """The attribute of ``module``'s own empty attention slot at ``position`` (``"branch"``/``"output"``), or None.

    A module has slots when it declares ``attention_slots`` (position -> attribute) and ``set_attention``,
    as the blocks of :mod:`attnlab.models.resnet` do.
    """
    slots = getattr(module, "attention_slots", None)
    if not hasattr(module, "set_attention") or not isinstance(slots, dict) or position not in slots:
        return None
    attr = slots[position]
    return attr if getattr(module, attr, None) is None else None


@dataclass
class _Plan:
    """One insertion: attention after ``target``, stored as ``owner.<attr>``.

    ``slot``: the owner's own attention slot (``"branch"``/``"output"``) it fills, or None: a forward hook.
    ``position``: ``"branch"`` (the residual branch of ``owner``, a block) or ``"after"`` (after ``target``).
    """

    target: str
    owner: str
    attr: str
    slot: str | None
    channels: int
    dtype: torch.dtype
    device: torch.device
    position: str = "after"

    @property
    def hook(self) -> bool:
        return self.slot is None


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _plan_after(model: nn.Module, records: dict[str, _Record], name: str) -> _Plan:
    if name not in records:
        raise ValueError(f"module {name!r} is attention itself: name the module it follows")
    rec = records[name]
    if rec.calls == 0:
        raise ValueError(f"module {name!r} is not called by the forward of {type(model).__name__}")
    if rec.calls > 1:
        raise ValueError(f"module {name!r} is called {rec.calls} times per forward; attention after it would run at "
                         "every call: name a module that runs once")
    if rec.shape is None or len(rec.shape) != 4:
        got = "a non-tensor" if rec.shape is None else f"shape {rec.shape}"
        raise ValueError(f"module {name!r} returns {got}, not an (N, C, H, W) feature map")
    module = rec.module
    slot = _free_slot(module, "output")
    if slot is not None:
        return _Plan(name, name, slot, "output", rec.shape[1], rec.dtype, rec.device)
    if not isinstance(module, _CONTAINERS):
        return _Plan(name, name, _free_name(module, "attn"), None, rec.shape[1], rec.dtype, rec.device)
    parts = name.split(".")
    for k in range(len(parts) - 1, -1, -1):
        owner = ".".join(parts[:k])
        owner_mod = model.get_submodule(owner)
        if not isinstance(owner_mod, _CONTAINERS):
            attr = _free_name(owner_mod, "_".join(parts[k:]) + "_attn")
            return _Plan(name, owner, attr, None, rec.shape[1], rec.dtype, rec.device)
    raise ValueError(f"module {name!r} is a container inside containers only (the model is a {type(model).__name__}): "
                     "nowhere to store attention after it without changing what the containers run; name a module "
                     "inside it instead")


def _plan_block(model: nn.Module, records: dict[str, _Record], blk: _Block) -> _Plan:
    rec = records[blk.end]
    block = model.get_submodule(blk.name)
    slot = _free_slot(block, "branch")
    if slot is not None:
        return _Plan(blk.end, blk.name, slot, "branch", blk.channels, rec.dtype, rec.device, "branch")
    return _Plan(blk.end, blk.name, _free_name(block, "attn"), None, blk.channels, rec.dtype, rec.device, "branch")


# --- attention already in the model -----------------------------------------------------------------------------


def _is_attention(module: nn.Module) -> bool:
    return isinstance(module, AttentionModule) or bool(getattr(module, MARK, None))


def _without_attention(records: dict[str, _Record]) -> dict[str, _Record]:
    """The dry forward's records minus attention modules and what they hold: places are found in the backbone
    alone, so attention already in the model does not move them (nor count as a block's last module)."""
    inside = tuple(r.name + "." for r in records.values() if r.name and _is_attention(r.module))
    return {n: dataclasses.replace(r, children=[c for c in r.children if not _is_attention(r.module.get_submodule(c))])
            for n, r in records.items() if not (n + ".").startswith(inside)}


def _output_end(module: nn.Module) -> nn.Module:
    """The module whose output is ``module``'s output: the last child of a ``nn.Sequential``, recursively."""
    while isinstance(module, nn.Sequential) and len(module):
        module = module[-1]
    return module


def _place(position: str, owner: nn.Module, target: nn.Module) -> tuple[str, int]:
    """A place for attention: the residual branch of block ``owner``, or after ``target``'s output."""
    return ("branch", id(owner)) if position == "branch" else ("after", id(_output_end(target)))


def _existing_places(model: nn.Module) -> dict[tuple[str, int], tuple[str, nn.Module]]:
    """Place -> (dotted name, module) of the attention the model holds where :func:`attach` would put some."""
    out: dict[tuple[str, int], tuple[str, nn.Module]] = {}
    for name, m in model.named_modules():
        if not name or not _is_attention(m):
            continue
        hook = m.__dict__.get("_attnlab_hook")
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if hook is not None and getattr(hook, "target", None) is not None:
            out.setdefault(_place(hook.position, hook.owner, hook.target), (name, m))
            continue
        slots = getattr(owner, "attention_slots", None)
        positions = [p for p, a in slots.items() if a == attr] if isinstance(slots, dict) else []
        if positions:  # a block's own slot: its branch, or its output
            out.setdefault(_place("branch" if positions[0] == "branch" else "after", owner, owner), (name, m))
    return out


def _describe_attention(name: str, module: nn.Module, plan: _Plan) -> str:
    """``layer1.0.attn (se, attached, in the residual branch of layer1.0)``."""
    family = getattr(type(module), "registry_name", "") or type(module).__name__
    how = "built with the model" if getattr(module, MARK, None) == "model" else "attached"
    where = f"in the residual branch of {plan.owner}" if plan.position == "branch" else f"after {plan.target}"
    return f"{name} ({family}, {how}, {where})"


def _occupied(model: nn.Module, plans: list[_Plan]) -> list[tuple[str, nn.Module, _Plan]]:
    """The attention already at the places ``plans`` would fill (name, module, the plan), in plan order."""
    existing = _existing_places(model)
    found: list[tuple[str, nn.Module, _Plan]] = []
    for plan in plans:
        key = _place(plan.position, model.get_submodule(plan.owner), model.get_submodule(plan.target))
        if key in existing and all(existing[key][1] is not m for _, m, _ in found):
            found.append((*existing[key], plan))
    return found


def _remove(model: nn.Module, name: str, module: nn.Module) -> None:
    """Take one attention module out: its hook and attribute, or empty the block slot it sits in."""
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    hook = module.__dict__.get("_attnlab_hook")
    if hook is not None:
        hook.handle.remove()
        delattr(owner, attr)
    else:
        setattr(owner, attr, None)  # a native slot of an attnlab block


def _check_names(model: nn.Module, names: Sequence[str]) -> None:
    known = [n for n, _ in model.named_modules() if n]
    known_set = set(known)
    for name in names:
        if not isinstance(name, str) or name not in known_set:
            close = suggest(str(name), known)
            hint = f" Did you mean {close!r}?" if close else ""
            raise ValueError(f"{type(model).__name__} has no module named {name!r}.{hint}")


def _check_where(model: nn.Module, where: str | Sequence[str]) -> str | list[str]:
    """``where`` as "blocks", "stages" or a list of module names of ``model``; raises ValueError otherwise."""
    if isinstance(where, str) or not isinstance(where, Sequence):
        if where not in ("blocks", "stages"):
            raise ValueError(f"where is 'blocks', 'stages' or a list of module names, got {where!r}")
        return where
    where = list(where)
    if not where:
        raise ValueError("where is an empty list: name at least one module")
    _check_names(model, where)
    twice = sorted({n for n in where if where.count(n) > 1})
    if twice:
        raise ValueError(f"where names a module more than once: {twice}")
    return where


def _plans(model: nn.Module, records: dict[str, _Record], where: str | list[str]) -> list[_Plan]:
    """One insertion per place ``where`` names (see :func:`attach`)."""
    if where == "blocks":
        blocks = _find_blocks(records)
        if not blocks:
            raise ValueError(f"found no residual blocks in {type(model).__name__}: a block is a module whose output is "
                             "(an activation of) branch(x) + shortcut(x) (also in place or on some channels), "
                             "cat(shortcut(x), branch(x)), or whose output its caller concatenates with its input "
                             "(a dense layer), with more convolutions on the branch than on the shortcut. "
                             "where=\"stages\" puts attention after every stage instead (found for any CNN: the "
                             "ends of its runs at one resolution); where=[...] names the modules to follow")
        return [_plan_block(model, records, b) for b in blocks]
    targets = _stage_ends(records, _find_blocks(records)) if where == "stages" else where
    if not targets:
        raise ValueError(f"found no stages in {type(model).__name__}; name the modules to follow with where=[...]")
    return [_plan_after(model, records, t) for t in targets]


def _refuse_occupied(model: nn.Module, attention: AttentionSpec, occupied: list[tuple[str, nn.Module, _Plan]],
                     places: int) -> None:
    """The error for an :func:`attach` to places that already hold attention."""
    what = attention if isinstance(attention, str) else getattr(attention, "__name__", repr(attention))
    listed = "; ".join(_describe_attention(*o) for o in occupied[:3]) + ("; ..." if len(occupied) > 3 else "")
    built = any(getattr(m, MARK, None) == "model" for _, m, _ in occupied)
    undo = "create the model without attention" if built else "detach(model) first"
    raise ValueError(f"attach({type(model).__name__}, {what!r}) refused: {len(occupied)} of its {places} places "
                     f"already hold attention: {listed}. Pass replace=True to replace it, or {undo}")


def attach(model: nn.Module, attention: AttentionSpec, *, where: str | Sequence[str] = "blocks",
           example_input: Tensor | None = None, replace: bool = False, **kwargs: Any) -> list[str]:
    """Insert attention into ``model`` in place; return the dotted names of the new attention modules.

    Args:
        model: any ``nn.Module`` taking an image batch (N, C, H, W).
        attention: an attention registry name (``"se"``, ``"cbam"``, ...) or an ``nn.Module`` class taking
            ``channels`` first.
        where: ``"blocks"`` (inside every residual block), ``"stages"`` (after every stage) or a list of
            module names to put attention after (see the module docstring).
        example_input: an input for the dry forward that finds the places and channel counts; by default
            one random image with the first conv's input channels at 224x224 (then 32, 28 and 64 if that
            fails). Give one when the model needs another size.
        replace: where a place already holds attention (attached before, or built with the model), take it
            out and put the new one in its place; False (default) refuses.
        **kwargs: options for every attention module (``reduction=8``, ...).

    Returns:
        Dotted names of the inserted modules (``["layer1.0.attn", ...]``), each a key prefix of the new
        state_dict entries, in forward order.

    Raises:
        ValueError: for an unknown ``where``, a name that is no module of ``model`` (with a suggestion), a
            module that is not called once per forward or does not return (N, C, H, W), when nothing
            matches ``"blocks"``/``"stages"``, or, without ``replace``, when a place already holds attention
            (named, with its family). Nothing is inserted then.

    Example:
        >>> model = torchvision.models.resnet50(weights="DEFAULT")
        >>> names = attnlab.attach(model, "se")  # ['layer1.0.attn', ..., 'layer4.2.attn']
        >>> attnlab.detach(model) == names
        True
        >>> attnlab.attach(model, "cbam", replace=True)  # the same places, CBAM instead of SE
    """
    if attention is None:
        raise ValueError("attention is None: name an attention module (attnlab.list_attention()) or pass an "
                         "nn.Module class taking channels first; detach(model) takes attention out")
    where = _check_where(model, where)
    records = _without_attention(_trace(model, example_input))
    plans = _plans(model, records, where)
    occupied = _occupied(model, plans)
    if occupied and not replace:
        _refuse_occupied(model, attention, occupied, len(plans))
    # build every module first, so that a bad option leaves the model untouched
    built = [make_attention(attention, p.channels, kwargs, "attached").to(device=p.device, dtype=p.dtype)
             for p in plans]
    if occupied:
        for name, module, _ in occupied:
            _remove(model, name, module)
        plans = _plans(model, records, where)  # the freed slots and names
    return [_insert(model, plan, module) for plan, module in zip(plans, built, strict=True)]


def _insert(model: nn.Module, plan: _Plan, module: nn.Module) -> str:
    """Put one built attention module in place (a slot of its owner, or a hook on the target); its dotted name."""
    owner = model.get_submodule(plan.owner)
    # a name free at planning time may have been taken by an earlier insertion on the same owner
    attr = _free_name(owner, plan.attr) if plan.hook else plan.attr
    module.train(model.training)
    if plan.hook:
        owner.add_module(attr, module)
        target = model.get_submodule(plan.target)
        hook = _AttentionHook(owner, attr, target, plan.position)
        hook.handle = target.register_forward_hook(hook)
        module.__dict__["_attnlab_hook"] = hook
    else:
        owner.set_attention(module, position=plan.slot)
    return _join(plan.owner, attr)


def detach(model: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """Remove attention that :func:`attach` inserted (all of it, or the named modules); return the names removed.

    Modules a network was built with (``create_model(..., attention=...)``) are not touched; the model's
    other parameters and their names are unchanged, so the model computes exactly what it did before
    ``attach``.

    Raises:
        ValueError: for a name in ``names`` that is not attached attention.
    """
    found = [(n, m) for n, m in model.named_modules() if getattr(m, MARK, None) == "attached"]
    if names is not None:
        wanted = [names] if isinstance(names, str) else list(names)  # one name, not its letters
        have = {n for n, _ in found}
        unknown = [n for n in wanted if n not in have]
        if unknown:
            raise ValueError(f"not attached attention in {type(model).__name__}: {unknown}; attached: {sorted(have)}")
        found = [(n, m) for n, m in found if n in set(wanted)]
    for name, module in found:
        _remove(model, name, module)
    return [name for name, _ in found]
