"""Checkpoints: weights as safetensors, optimiser tensors as safetensors, everything else as JSON.

Layout of a run directory::

    RUN/checkpoints/epoch_0003/model.safetensors      model weights (state_dict names)
    RUN/checkpoints/epoch_0003/optimizer.safetensors  optimiser tensors (momentum buffers, Adam moments)
    RUN/checkpoints/epoch_0003/state.json             model config, epoch, optimiser/scheduler/scaler
                                                      state (non-tensor parts), RNG states, metrics
    RUN/checkpoints/latest.json                       {"epoch": 3, "dir": "epoch_0003"}

A checkpoint directory is written under a temporary name and renamed into place, and ``latest.json``
is replaced atomically after it, so a run killed at any moment leaves the previous checkpoint
intact and ``latest.json`` pointing at a complete one. Without ``latest.json`` (deleted, or a run killed
between the rename and the pointer's update) the newest complete checkpoint directory is the latest; a
write killed midway leaves a hidden temporary (``.epoch_0003.<random>.tmp``) that
:func:`remove_stale_temporaries` clears on the run's next start.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..fileio import SafetensorsError, atomic_directory, atomic_write_json, load_safetensors, save_safetensors

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "checkpoint_dirs", "checkpoint_problem", "remove_stale_temporaries", "capture_rng", "restore_rng"]

FORMAT = "attnlab-checkpoint/1"
#: The files every checkpoint directory holds.
FILES = ("model.safetensors", "optimizer.safetensors", "state.json")
#: What a run directory holds, written through :mod:`attnlab.fileio` (by this module and the training loop).
RUN_FILES = ("config.json", "metrics.csv", "metrics.jsonl", "summary.json")
_EPOCH_DIR = re.compile(r"epoch_(\d+)")
# attnlab.fileio's temporaries: ``.NAME.<8 hex digits>.tmp`` beside NAME (``.old``: a directory moved aside).
_TEMPORARY = r"\.({names})\.[0-9a-f]{{8}}\.(tmp|old)"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or for another model."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    path: Path
    model_state: dict[str, torch.Tensor]
    state: dict[str, Any]
    optimizer_tensors: dict[str, torch.Tensor]

    @property
    def model_config(self) -> dict[str, Any]:
        return self.state["model"]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


def _json_atomic(path: Path, obj: Any) -> None:
    """The checkpoint's JSON files: indent 1, sorted keys, written atomically."""
    atomic_write_json(path, obj, indent=1, sort_keys=True)


def capture_rng(generators: dict[str, torch.Generator] | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """RNG states of python, numpy, torch (CPU, CUDA) and named generators: (JSON part, tensor part)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    for name, g in (generators or {}).items():
        tensors[f"rng.gen.{name}"] = g.get_state()
    py = random.getstate()
    npst = np.random.get_state()
    js = {"python": [py[0], list(py[1]), py[2]],
          "numpy": [npst[0], base64.b64encode(np.asarray(npst[1]).tobytes()).decode(), *map(float, npst[2:])]}
    return js, tensors


def restore_rng(js: dict[str, Any], tensors: dict[str, torch.Tensor],
                generators: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    for name, g in (generators or {}).items():
        key = f"rng.gen.{name}"
        if key in tensors:
            g.set_state(tensors[key])
    if "python" in js:
        v, state, gauss = js["python"]
        random.setstate((v, tuple(state), gauss))
    if "numpy" in js:
        name, keys, pos, has_gauss, cached = js["numpy"]
        arr = np.frombuffer(base64.b64decode(keys), dtype=np.uint32)
        np.random.set_state((name, arr, int(pos), int(has_gauss), float(cached)))


def _split_optimizer(sd: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}
    state_js: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        entry = {}
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{idx}.{k}"] = v
                entry[k] = {"__tensor__": f"state.{idx}.{k}"}
            else:
                entry[k] = v
        state_js[str(idx)] = entry
    return {"state": state_js, "param_groups": sd["param_groups"]}, tensors


def _join_optimizer(js: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = {}
    for idx, entry in js["state"].items():
        state[int(idx)] = {k: tensors[v["__tensor__"]] if isinstance(v, dict) and "__tensor__" in v else v
                           for k, v in entry.items()}
    return {"state": state, "param_groups": js["param_groups"]}


def save_checkpoint(run_dir: str | os.PathLike, *, model: nn.Module, model_config: dict[str, Any], epoch: int,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, scaler: Any = None,
                    generators: dict[str, torch.Generator] | None = None, extra: dict[str, Any] | None = None,
                    keep_last: int = 2) -> Path:
    """Write the checkpoint of a completed ``epoch`` atomically and point ``latest.json`` at it.

    Args:
        run_dir: the run directory.
        model: the (unwrapped) model.
        model_config: what ``attnlab.create_model`` needs to rebuild it (name, attention, num_classes, ...).
        epoch: number of completed epochs.
        keep_last: older checkpoint directories beyond this many are removed.

    Returns:
        The checkpoint directory.
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"epoch_{epoch:04d}"
    final = root / name
    with atomic_directory(final) as tmp:  # the same epoch written again (after a resume) replaces the old one
        save_safetensors(model.state_dict(), tmp / "model.safetensors", {"format": FORMAT})
        state: dict[str, Any] = {"format": FORMAT, "epoch": int(epoch), "model": model_config, "extra": extra or {}}
        opt_tensors: dict[str, torch.Tensor] = {}
        if optimizer is not None:
            state["optimizer"], opt_tensors = _split_optimizer(optimizer.state_dict())
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        rng_js, rng_tensors = capture_rng(generators)
        state["rng"] = rng_js
        save_safetensors({**opt_tensors, **rng_tensors}, tmp / "optimizer.safetensors", {"format": FORMAT})
        _json_atomic(tmp / "state.json", state)
    _json_atomic(root / "latest.json", {"epoch": int(epoch), "dir": name})
    done = checkpoint_dirs(root)
    for old in done[:-keep_last] if keep_last > 0 else []:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoint_dirs(path: str | os.PathLike) -> list[Path]:
    """Every ``epoch_NNNN`` directory of a run directory (or of its checkpoints/ folder), complete or not,
    oldest first."""
    path = Path(path)
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _EPOCH_DIR.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=_epoch_number)


def _epoch_number(path: Path) -> int:
    return int(_EPOCH_DIR.fullmatch(path.name).group(1))


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """Why the directory ``path`` is not a complete checkpoint (a missing file, an unreadable ``state.json``),
    or None when it is one."""
    path = Path(path)
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"state.json unreadable ({err})"
    if not isinstance(state, dict) or state.get("format") != FORMAT or not {"epoch", "model"} <= state.keys():
        return "state.json is not an attnlab checkpoint state"
    return None


def pointer_target(path: str | os.PathLike) -> Path | None:
    """The directory ``latest.json`` names in a run directory (or its checkpoints/ folder), or None without
    one.

    Raises:
        CheckpointError: ``latest.json`` is corrupt.
    """
    path = Path(path)
    for root in (path / "checkpoints", path):
        pointer = root / "latest.json"
        if pointer.is_file():
            try:
                return root / json.loads(pointer.read_text())["dir"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise CheckpointError(f"{pointer}: corrupt pointer file ({err}); point it at a checkpoints/epoch_* "
                                      "directory or delete it") from err
    return None


def latest_checkpoint(path: str | os.PathLike) -> Path | None:
    """The checkpoint directory to continue a run from: what its ``latest.json`` points at, unless a newer
    complete checkpoint exists (a run killed before it updated the pointer), and without ``latest.json`` the
    newest complete ``epoch_*`` directory; None when there is none.

    Args:
        path: a run directory or its checkpoints/ folder.
    """
    target = pointer_target(path)
    complete = [d for d in checkpoint_dirs(path) if checkpoint_problem(d) is None]
    newest = complete[-1] if complete else None
    if target is None or (newest is not None and _EPOCH_DIR.fullmatch(target.name)
                          and _epoch_number(newest) > _epoch_number(target)):
        return newest
    return target


def remove_stale_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what writes killed midway left in a run: attnlab's hidden temporaries of checkpoint directories,
    ``latest.json`` and the run's own files (``.epoch_0002.<random>.tmp``, ``.metrics.csv.<random>.tmp``).

    Only names of that pattern are touched. A directory moved aside while its epoch was written again
    (``.epoch_0002.<random>.old``) is removed only when ``epoch_0002`` itself exists. Call it when no other
    process writes the run.

    Returns:
        The paths removed.
    """
    run_dir = Path(run_dir)
    places = ((run_dir / "checkpoints", r"epoch_\d+|latest\.json"), (run_dir, "|".join(map(re.escape, RUN_FILES))))
    removed = []
    for folder, names in places:
        pattern = re.compile(_TEMPORARY.format(names=names))
        for p in sorted(folder.iterdir()) if folder.is_dir() else []:
            match = pattern.fullmatch(p.name)
            if match is None or (match.group(2) == "old" and not (folder / match.group(1)).exists()):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint from a run directory, a checkpoint directory, or a ``model.safetensors`` file.

    Raises:
        FileNotFoundError: nothing checkpoint-like at ``path``.
        CheckpointError: a corrupt or truncated file (named in the message).
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: pass a run directory (attnlab train --out RUN) "
                                "or one of its checkpoints/epoch_* directories")
    target = latest_checkpoint(path) or path
    state_file = target / "state.json"
    if not state_file.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: {state_file} is missing")
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{state_file}: corrupt checkpoint state ({err})") from err
    if state.get("format") != FORMAT or "model" not in state:
        raise CheckpointError(f"{state_file}: not an attnlab checkpoint (format {state.get('format')!r})")
    try:
        weights, _ = load_safetensors(target / "model.safetensors")
        opt_path = target / "optimizer.safetensors"
        opt, _ = load_safetensors(opt_path) if opt_path.exists() else ({}, {})
    except SafetensorsError as err:
        raise CheckpointError(str(err)) from err
    except FileNotFoundError as err:
        raise CheckpointError(f"{target}: incomplete checkpoint ({err.filename} missing)") from err
    return Checkpoint(target, weights, state, opt)


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    """Load the optimiser state stored in ``ckpt`` into ``optimizer``."""
    if "optimizer" not in ckpt.state:
        raise CheckpointError(f"{ckpt.path}: has no optimiser state to resume from")
    optimizer.load_state_dict(_join_optimizer(ckpt.state["optimizer"], ckpt.optimizer_tensors))
