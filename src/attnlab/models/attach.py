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

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ._attn import MARK, AttentionSpec, make_attention

__all__ = ["attach", "detach", "find_blocks", "find_stages"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_GUESS_SIZES = (224, 32, 28, 64)


class _AttentionHook:
    """Forward hook ``output -> owner.<attr>(output)``; a plain object, so deepcopy and pickle keep it."""

    def __init__(self, owner: nn.Module, attr: str) -> None:
        self.owner = owner
        self.attr = attr
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
    """Dotted names of the residual blocks :func:`attach` finds with ``where="blocks"``, in forward order."""
    return [b.name for b in _find_blocks(_trace(model, example_input))]


def find_stages(model: nn.Module, example_input: Tensor | None = None) -> list[str]:
    """Dotted names of the modules :func:`attach` puts attention after with ``where="stages"``."""
    records = _trace(model, example_input)
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
    """

    target: str
    owner: str
    attr: str
    slot: str | None
    channels: int
    dtype: torch.dtype
    device: torch.device

    @property
    def hook(self) -> bool:
        return self.slot is None


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _plan_after(model: nn.Module, records: dict[str, _Record], name: str) -> _Plan:
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
        return _Plan(blk.end, blk.name, slot, "branch", blk.channels, rec.dtype, rec.device)
    return _Plan(blk.end, blk.name, _free_name(block, "attn"), None, blk.channels, rec.dtype, rec.device)


def _check_names(model: nn.Module, names: Sequence[str]) -> None:
    known = [n for n, _ in model.named_modules() if n]
    known_set = set(known)
    for name in names:
        if not isinstance(name, str) or name not in known_set:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"{type(model).__name__} has no module named {name!r}.{hint}")


def attach(model: nn.Module, attention: AttentionSpec, *, where: str | Sequence[str] = "blocks",
           example_input: Tensor | None = None, **kwargs: Any) -> list[str]:
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
        **kwargs: options for every attention module (``reduction=8``, ...).

    Returns:
        Dotted names of the inserted modules (``["layer1.0.attn", ...]``), each a key prefix of the new
        state_dict entries, in forward order.

    Raises:
        ValueError: for an unknown ``where``, a name that is no module of ``model`` (with suggestions), a
            module that is not called once per forward or does not return (N, C, H, W), or when nothing
            matches ``"blocks"``/``"stages"``. Nothing is inserted then.

    Example:
        >>> model = torchvision.models.resnet50(weights="DEFAULT")
        >>> names = attnlab.attach(model, "se")  # ['layer1.0.attn', ..., 'layer4.2.attn']
        >>> attnlab.detach(model) == names
        True
    """
    if isinstance(where, str):
        if where not in ("blocks", "stages"):
            raise ValueError(f"where is 'blocks', 'stages' or a list of module names, got {where!r}")
    else:
        where = list(where)
        if not where:
            raise ValueError("where is an empty list: name at least one module")
        _check_names(model, where)
        twice = sorted({n for n in where if where.count(n) > 1})
        if twice:
            raise ValueError(f"where names a module more than once: {twice}")
    records = _trace(model, example_input)
    if where == "blocks":
        blocks = _find_blocks(records)
        if not blocks:
            raise ValueError(f"found no residual blocks in {type(model).__name__}: a residual block is a module whose "
                             "output is (an activation of) branch(x) + shortcut(x), with more convolutions on the "
                             "branch than on the shortcut; name the modules to follow with where=[...]")
        plans = [_plan_block(model, records, b) for b in blocks]
    else:
        targets = _stage_ends(records, _find_blocks(records)) if where == "stages" else where
        if not targets:
            raise ValueError(f"found no stages in {type(model).__name__}; name the modules to follow with where=[...]")
        plans = [_plan_after(model, records, t) for t in targets]
    # build every module first, so that a bad option leaves the model untouched
    built = [make_attention(attention, p.channels, kwargs, "attached").to(device=p.device, dtype=p.dtype)
             for p in plans]
    names = []
    for plan, module in zip(plans, built, strict=True):
        owner = model.get_submodule(plan.owner)
        # a name free at planning time may have been taken by an earlier insertion on the same owner
        attr = _free_name(owner, plan.attr) if plan.hook else plan.attr
        module.train(model.training)
        if plan.hook:
            owner.add_module(attr, module)
            hook = _AttentionHook(owner, attr)
            hook.handle = model.get_submodule(plan.target).register_forward_hook(hook)
            module.__dict__["_attnlab_hook"] = hook
        else:
            owner.set_attention(module, position=plan.slot)
        names.append(_join(plan.owner, attr))
    return names


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
        wanted = list(names)
        have = {n for n, _ in found}
        unknown = [n for n in wanted if n not in have]
        if unknown:
            raise ValueError(f"not attached attention in {type(model).__name__}: {unknown}; attached: {sorted(have)}")
        found = [(n, m) for n, m in found if n in set(wanted)]
    removed = []
    for name, module in found:
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        hook = module.__dict__.get("_attnlab_hook")
        if hook is not None:
            hook.handle.remove()
            delattr(owner, attr)
        else:
            setattr(owner, attr, None)  # a native slot of an attnlab block
        removed.append(name)
    return removed
