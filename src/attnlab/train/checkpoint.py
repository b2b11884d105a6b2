"""Checkpoints: weights as safetensors, optimiser tensors as safetensors, everything else as JSON.

Layout of a run directory::

    RUN/checkpoints/epoch_0003/model.safetensors      model weights (state_dict names)
    RUN/checkpoints/epoch_0003/optimizer.safetensors  optimiser tensors (momentum buffers, Adam moments)
    RUN/checkpoints/epoch_0003/state.json             model config, epoch, optimiser/scheduler/scaler
                                                      state (non-tensor parts), RNG states, metrics
    RUN/checkpoints/latest.json                       {"epoch": 3, "dir": "epoch_0003"}

A checkpoint directory is written under a temporary name and renamed into place, and ``latest.json``
is replaced atomically after it, so a run killed at any moment leaves the previous checkpoint
intact and ``latest.json`` pointing at a complete one.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..fileio import SafetensorsError, atomic_directory, atomic_write_json, load_safetensors, save_safetensors

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
           "capture_rng", "restore_rng"]

FORMAT = "attnlab-checkpoint/1"


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
    done = sorted(p for p in root.glob("epoch_*") if p.is_dir())
    for old in done[:-keep_last] if keep_last > 0 else []:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(path: str | os.PathLike) -> Path | None:
    """The checkpoint directory a run directory (or its checkpoints/ folder) points at, or None."""
    path = Path(path)
    for root in (path / "checkpoints", path):
        pointer = root / "latest.json"
        if pointer.is_file():
            try:
                target = root / json.loads(pointer.read_text())["dir"]
            except (json.JSONDecodeError, KeyError) as err:
                raise CheckpointError(f"{pointer}: corrupt pointer file ({err}); point it at a checkpoints/epoch_* "
                                      "directory or delete it") from err
            return target
    return None


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
