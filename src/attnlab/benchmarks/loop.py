"""The loop benchmark behind ``attnlab bench loop`` and ``benchmarks/loop.py``: the training loop's images/s
against the bare training step's, with the batches made on the host and on the device.

The bare step is :func:`attnlab.train.epoch.train_step` (forward, backward, optimiser step, schedule) repeated on
one batch already on the device; the loop is :func:`attnlab.train.epoch.train_epoch`, the epoch ``attnlab train``
runs (batches gathered, augmented and normalised, statistics tallied, the NaN check), over as many images, once
with ``data_on_device="off"`` (the host pipeline) and once with ``"on"`` (the set kept on the device). Same model,
batch, precision and memory format for all three; they run in paired, interleaved rounds
(:func:`attnlab.benchtools.time_paired`: CUDA events on a GPU, the wall clock on the CPU) and each ratio is the
median over rounds of the loop's images/s over the bare step's in the same round. The data are Cluttered
Fashion-MNIST canvases generated from the Fashion-MNIST training items (random canvases of the same shape where
the files are missing, said in the table: the speed does not depend on the pixels).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..benchtools import format_table, load_average, time_paired
from ..data import DataFileNotFoundError, default_transforms, generate_cluttered, load_fashion_mnist
from ..fileio import check_file
from ..train import DataBundle, TensorSet, TrainConfig
from ..train.distributed import pick_device
from ..train.epoch import TrainState, train_epoch, train_step
from ..train.loop import autocast_settings, build_train_state
from ._shared import RESULTS_DIR, provenance, save_table

__all__ = ["DEFAULT_IMAGES", "HEADER", "OUT_PATTERN", "LoopResult", "benchmark_loop", "device_slug", "results_path",
           "results_table", "run"]

#: Where ``run`` writes its table by default (relative to the current directory; DEVICE: :func:`device_slug`).
OUT_PATTERN = RESULTS_DIR / "loop-DEVICE.md"
#: Training images per measured epoch when none are given, by device type (a CPU run of the defaults takes a
#: minute or two on two idle cores; a GPU epoch about a second).
DEFAULT_IMAGES = {"cuda": 25_600, "cpu": 128}
HEADER = ["model", "batch", "precision", "images per epoch", "bare step img/s", "loop, host data img/s", "host / bare",
          "loop, device data img/s", "device / bare"]
CANDIDATES = ("bare step", "loop, host data", "loop, device data")


@dataclass
class LoopResult:
    """One row: a model at one batch size, its three speeds (images/s) and the loops' ratios to the bare step."""

    model: str
    batch: int
    precision: str
    images: int  # per measured epoch (whole batches)
    bare: float
    host: float
    device: float
    host_ratio: float  # median over rounds of (loop, host data) images/s / (bare step) images/s
    device_ratio: float


def device_slug(device: str | torch.device) -> str:
    """The results file's DEVICE: the GPU's name in lower case with dashes (``nvidia-h200``), else the device type."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def results_path(device: str | torch.device) -> Path:
    """The default results file for ``device``: ``benchmarks/results/loop-<device slug>.md``."""
    return RESULTS_DIR / f"loop-{device_slug(device)}.md"


def _attention(name: str | None) -> str | None:
    """An attention name, None for ``none``, ``vanilla`` or None (the vanilla network)."""
    return None if name is None or name.strip().lower() in ("", "none", "vanilla") else name


def _canvases(n: int, canvas: int, root: str | os.PathLike | None) -> tuple[TensorSet, str]:
    """``n`` Cluttered Fashion-MNIST canvases (uint8 (n, 1, canvas, canvas)) and where they came from."""
    g = torch.Generator().manual_seed(0)
    try:
        items, labels = load_fashion_mnist(root, "train")
    except DataFileNotFoundError as err:
        images = torch.randint(0, 256, (n, 1, canvas, canvas), generator=g, dtype=torch.uint8)
        return TensorSet(images, torch.randint(0, 10, (n,), generator=g)), f"random canvases ({err})"
    samples = generate_cluttered(items, labels, n, canvas, generator=g)
    return TensorSet(samples.images, samples.labels), "Cluttered Fashion-MNIST canvases from the training items"


def _states(attention: str | None, batch: int, data: DataBundle, device: str, amp: str,
            channels_last: bool) -> tuple[TrainState, TrainState]:
    """Two fresh runs of ResNet-20 (+ ``attention``): batches made on the host, and on the device."""
    config = TrainConfig(model="resnet20", attention=attention, dataset="cluttered-fashion-mnist", batch_size=batch,
                         epochs=1000, lr=0.01, warmup_epochs=0, amp=amp, channels_last=channels_last, device=device,
                         data_on_device="off")  # epochs: a schedule that outlasts every round
    return (build_train_state(config, data),
            build_train_state(dataclasses.replace(config, data_on_device="on"), data))


def _candidates(host: TrainState, on_device: TrainState) -> dict[str, Callable[[], object]]:
    """The three timed calls, each over the same number of images: the bare step repeated on one batch already on
    the device, and one epoch of each loop (a new epoch number at every call)."""
    x, y = next(iter(on_device.batches.epoch(on_device.per_rank, epoch=0, seed=0)))
    epochs = iter(range(1_000_000))

    def bare() -> None:
        for _ in range(on_device.steps_per_epoch):
            train_step(on_device, on_device.model, x, y)

    return {CANDIDATES[0]: bare,
            CANDIDATES[1]: lambda: train_epoch(host, host.model, next(epochs)),
            CANDIDATES[2]: lambda: train_epoch(on_device, on_device.model, next(epochs))}


def _measure(attention: str | None, batch: int, ts: TensorSet, device: str, amp: str, channels_last: bool,
             repeats: int, warmup: int) -> LoopResult:
    """One row: the three candidates of one model at one batch size, in paired rounds."""
    data = DataBundle(ts, ts, 10, [str(i) for i in range(10)], default_transforms("cluttered-fashion-mnist", True),
                      default_transforms("cluttered-fashion-mnist", False))
    host, on_device = _states(attention, batch, data, device, amp, channels_last)
    times = time_paired(_candidates(host, on_device), repeats=repeats, warmup=warmup, device=device)
    images = len(ts)
    dtype, _ = autocast_settings(amp, torch.device(device))
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    bare, on_host, on_dev = (images / times.median(c) for c in CANDIDATES)
    return LoopResult(f"resnet20 + {attention}" if attention else "resnet20", batch, precision, images, bare, on_host,
                      on_dev,
                      times.ratio(CANDIDATES[0], CANDIDATES[1]), times.ratio(CANDIDATES[0], CANDIDATES[2]))


def benchmark_loop(attentions: Sequence[str | None] = (None, "cbam"), batches: Sequence[int] = (128,),
                   images: int | None = None, repeats: int = 5, warmup: int = 1, device: str = "auto",
                   amp: str = "auto", channels_last: bool = True, canvas: int = 64,
                   root: str | os.PathLike | None = None,
                   log: Callable[[str], None] | None = print) -> tuple[list[LoopResult], str]:
    """Time the training loop against the bare step for ResNet-20 with each of ``attentions`` at each batch size.

    Args:
        attentions: attention names (None or ``none``: the vanilla network).
        batches: batch sizes.
        images: training images per measured epoch, rounded down to whole batches of the largest batch size
            (default: :data:`DEFAULT_IMAGES` for the device type).
        repeats: paired rounds measured (the median is reported).
        warmup: rounds run first and discarded.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: the training's mixed precision (``TrainConfig.amp``: auto is bf16 on CUDA, off on the CPU).
        channels_last: the model and its batches in channels_last memory format.
        canvas: canvas side in pixels.
        root: the Fashion-MNIST folder (default: ``$ATTNLAB_FASHION_MNIST_DIR``, else the system folder).
        log: receives a line per row as it is measured (None: silence).

    Returns:
        (one :class:`LoopResult` per model and batch size, where the canvases came from).
    """
    dev = pick_device(device)
    attentions = [_attention(a) for a in attentions]
    for attention in attentions:  # an unknown name, or fp16 on a CPU, is refused before the canvases are made
        TrainConfig(model="resnet20", attention=attention, amp=amp, device=str(dev))
    autocast_settings(amp, dev)
    per_epoch = images if images is not None else DEFAULT_IMAGES.get(dev.type, DEFAULT_IMAGES["cpu"])
    largest = max(batches)
    ts, source = _canvases(max(largest, per_epoch // largest * largest), canvas, root)
    results = []
    for batch in batches:
        subset = ts.head(max(batch, len(ts) // batch * batch))  # whole batches only
        for attention in attentions:
            results.append(_measure(attention, batch, subset, str(dev), amp, channels_last, repeats, warmup))
            if log:
                r = results[-1]
                log(f"{r.model}, batch {batch}: bare {r.bare:.0f} img/s, loop host {r.host:.0f} ({r.host_ratio:.2f}x), "
                    f"device {r.device:.0f} ({r.device_ratio:.2f}x)")
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return results, source


def results_table(results: Sequence[LoopResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    return HEADER, [[r.model, r.batch, r.precision, r.images, f"{r.bare:.0f}", f"{r.host:.0f}", f"{r.host_ratio:.2f}",
                     f"{r.device:.0f}", f"{r.device_ratio:.2f}"] for r in results]


def run(out: str | os.PathLike | None = None, command: str = "attnlab bench loop", **kwargs) -> list[LoopResult]:
    """Run :func:`benchmark_loop` (``kwargs``: its arguments), print the table and save it to ``out`` (None: the
    default :func:`results_path` of the device; "" to skip) with the command, the machine and the settings."""
    settings = inspect.signature(benchmark_loop).bind(**kwargs)
    settings.apply_defaults()
    s = settings.arguments
    s["device"] = str(pick_device(s["device"]))
    out = results_path(s["device"]) if out is None else out
    if out:
        check_file(out, "the results file (--out)")
    load = load_average()
    results, source = benchmark_loop(**s)
    header, rows = results_table(results)
    print(format_table(header, rows))
    preamble = provenance(command, s["device"], f"; 1-minute load average {load:.1f} at the start") + (
        f"\n\nResNet-20 on {source}, {s['canvas']}x{s['canvas']}, 10 classes; channels_last "
        f"{'on' if s['channels_last'] else 'off'}; SGD with Nesterov momentum, as `attnlab train`. Bare step: "
        "forward, backward, optimiser step on one batch already on the device, repeated for as many images as an "
        "epoch; loop: one epoch of `attnlab train`'s loop with the batches made on the host (`--data-on-device "
        "off`) and on the device (`--data-on-device on`). Paired, interleaved rounds "
        f"({s['repeats']} measured after {s['warmup']} discarded; CUDA events on a GPU, the wall clock on the CPU); "
        "images/s from the median time of each; each ratio is the median over rounds of the loop's images/s over "
        "the bare step's in the same round. Target on a GPU: the device-data loop at >= 0.9x the bare step.")
    save_table(out, "The training loop against the bare training step", preamble, header, rows)
    return results
