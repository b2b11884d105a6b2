"""Put attention into a model the user already has, and take it out again.

:func:`attach` finds where the attention goes with one dry forward pass (eval mode, one example image,
under autograd), then inserts one module per place:

* ``where="blocks"``: every residual block, i.e. every module whose output is (an activation of)
  ``branch(x) + shortcut(x)`` where the branch holds more convolutions than the shortcut (identity, or
  a projection such as torchvision's and timm's ``downsample``). Blocks are recognised from the
  autograd graph of the dry forward, not from class names, so a user's own block class counts as long
  as it has that shape. The attention goes on the residual branch after its last module (the last
  BN), before the addition: the placement of the SE and CBAM papers and of the model zoo.
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
    if isinstance(args, Tensor):
        return args
    if isinstance(args, (tuple, list)) and args and isinstance(args[0], Tensor):
        return args[0]
    return None


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
    add: Any  # the residual addition's autograd node
    end: str  # dotted name of the last module of the residual branch
    channels: int


def _residual(rec: _Record, records: dict[str, _Record], produced: dict[int, list[_Record]],
              done_before: dict[int, int]) -> _Block | None:
    """The residual structure of one module's call, or None when its output is not branch(x) + shortcut(x)."""
    if rec.calls != 1 or rec.out is None or rec.x is None or rec.shape is None or len(rec.shape) != 4:
        return None
    if isinstance(rec.module, _CONTAINERS) or not rec.children:
        return None
    node = rec.out
    for _ in range(8):  # through activations / scalings after the addition
        inputs = [m for m, _ in getattr(node, "next_functions", ()) if m is not None and not _is_param(m)]
        if type(node).__name__.startswith("AddBackward") and len(inputs) == 2:
            break
        if len(inputs) != 1 or _matches(node, rec.x):
            return None
        node = inputs[0]
    else:
        return None
    outside = {k for k, t in done_before.items() if t < rec.start}
    a, b = inputs
    ca, cb = _convs_to_input(a, rec.x, outside), _convs_to_input(b, rec.x, outside)
    if ca is None or cb is None or ca == cb or max(ca, cb) < 1:
        return None
    branch = a if ca > cb else b
    prefix = rec.name + "." if rec.name else ""
    # the branch's last module: the innermost module inside the block that produced the branch tensor
    frontier, seen = [branch], set()
    for _ in range(64):
        if not frontier:
            break
        nxt = []
        for n in frontier:
            if id(n) in seen or _matches(n, rec.x) or id(n) in outside:
                continue
            seen.add(id(n))
            inside = [r for r in produced.get(id(n), []) if r.name.startswith(prefix) and r.name != rec.name
                      and r.start > rec.start and r.calls == 1 and r.shape == rec.shape]
            if inside:
                end = min(inside, key=lambda r: r.end)
                return _Block(rec.name, node, end.name, rec.shape[1])
            nxt += [m for m, _ in getattr(n, "next_functions", ()) if m is not None and not _is_param(m)]
        frontier = nxt
    return None


def _find_blocks(records: dict[str, _Record]) -> list[_Block]:
    produced: dict[int, list[_Record]] = {}
    done_before: dict[int, int] = {}
    for r in records.values():
        if r.out is not None:
            produced.setdefault(id(r.out), []).append(r)
            done_before[id(r.out)] = min(done_before.get(id(r.out), r.end), r.end)
    by_add: dict[int, _Block] = {}
    for rec in records.values():
        blk = _residual(rec, records, produced, done_before)
        if blk is None:
            continue
        old = by_add.get(id(blk.add))
        if old is None or len(blk.name) > len(old.name):  # nested wrappers share the addition: keep the innermost
            by_add[id(blk.add)] = blk
    return sorted(by_add.values(), key=lambda b: records[b.name].start)


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
            raise ValueError(f"found no residual blocks in {type(model).__name__}: a residual block is a module whose "
                             "output is (an activation of) branch(x) + shortcut(x), with more convolutions on the "
                             "branch than on the shortcut; name the modules to follow with where=[...]")
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
