"""The network benchmark behind ``attnlab bench models`` and ``benchmarks/models.py``.

For ResNet-50 (224x224) and ResNet-20 (32x32), the vanilla network and every attention variant built
by :func:`attnlab.create_model`: parameters, GMACs, inference images/s (eval mode, no grad, batch 16),
training-step images/s (forward, backward and an SGD step, batch 8, training mode) and peak memory of
each, all measured in one run with the rounds interleaved (:func:`attnlab.benchtools.time_paired`), so
that each variant's speed is a ratio to the vanilla network taken within the same rounds.

On CUDA the timings are CUDA events. With ``amp`` each forward (and loss) runs under autocast to that dtype,
the backward and the SGD step outside it, as an AMP training loop (float16 without a gradient scaler: the
same work, timed). With ``timm=True`` and timm importable, timm's ResNet-50 is measured too, vanilla and with
its SE, ECA and CBAM (``block_args=dict(attn_layer=...)``) and with the seed's CBAM as its attention layer
(rows ``timm:...``), all as ratios to attnlab's vanilla network of the same run.

GMACs are multiply-accumulates of the convolutions and matrix products (``FlopCounterMode`` FLOPs / 2),
the unit the attention papers call "GFLOPs"; element-wise work (pooling, gating) is not counted, as in
the papers. They are counted on the network as built (torchvision's v1.5 bottleneck, 4.09 GMACs for
ResNet-50; the papers' 3.86 is the v1 bottleneck, see ``tests/models/test_paper_figures.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import get_attention_class, list_attention
from ..attention.reference import SeedCBAM
from ..benchtools import count_flops, format_table, peak_memory, time_paired
from ..fileio import check_file
from ..models import create_model, get_model_builder
from ._shared import RESULTS_DIR, amp_dtype, autocast, no_grad_forward, provenance, save_table

__all__ = ["DEFAULT_OUT", "HEADER", "INPUT_SIZES", "MODELS", "TIMM_VARIANTS", "ModelResult", "benchmark_models",
           "results_table", "run", "seed_cbam_layer", "target_lines"]

#: The networks measured by default.
MODELS: tuple[str, ...] = ("resnet50", "resnet20")
#: Input side for each benchmarked network.
INPUT_SIZES: dict[str, int] = {"resnet50": 224, "resnet20": 32}
#: Where ``run`` writes its table by default (relative to the current directory).
DEFAULT_OUT = RESULTS_DIR / "models.md"
VANILLA = "vanilla"


def seed_cbam_layer(channels: int, **_factory: object) -> nn.Module:
    """The seed's CBAM as a timm attention layer (timm's ``device``/``dtype`` arguments are left to the caller)."""
    return SeedCBAM(channels)


#: timm's variants of ResNet-50 (row name -> its ``attn_layer``; None: vanilla), measured with ``timm=True``.
TIMM_VARIANTS: dict[str, object] = {"timm:vanilla": None, "timm:se": "se", "timm:eca": "eca", "timm:cbam": "cbam",
                                    "timm:seed-cbam": seed_cbam_layer}

#: Published throughput ratios to ResNet-50 (ECA-Net paper, Wang et al. 2020, Table 2, GPU): (training, inference).
PAPER_RATIOS = {"se": (0.74, 0.87), "cbam": (0.46, 0.65), "eca": (0.77, 0.97)}
#: This project's targets for ResNet-50 on CPU: (inference time, training-step time) at most, as multiples of vanilla.
TARGETS = {"se": (1.05, 1.05), "eca": (1.05, 1.05), "cbam": (1.10, 1.15)}


@dataclass
class ModelResult:
    """One row of the network benchmark."""

    model: str
    attention: str
    input: str
    params: int
    gmacs: float
    infer_ips: float  # images/s, eval mode, no grad
    infer_x: float  # throughput over the vanilla network's, same rounds
    infer_time_x: float  # time over the vanilla network's (1 / infer_x)
    train_ips: float  # images/s of forward + backward + SGD step
    train_x: float
    train_time_x: float
    infer_peak_mb: float
    train_peak_mb: float


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: str | None = None) -> Callable[[], object]:
    """A zero-argument training step: forward on ``x`` (N, 3, S, S) and cross-entropy on ``y`` (N,) under autocast
    to ``amp``, backward, SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def run() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(x.device.type, amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return run


def _build(name: str, key: str) -> nn.Module:
    """Row ``key`` of network ``name``: attnlab's (``vanilla`` or an attention name) or timm's (``timm:...``)."""
    if key in TIMM_VARIANTS:
        import timm

        attn = TIMM_VARIANTS[key]
        return timm.create_model(name, **({} if attn is None else {"block_args": dict(attn_layer=attn)}))
    return create_model(name, attention=None if key == VANILLA else key)


def _gmacs(name: str, key: str, size: int, in_chans: int = 3) -> float:
    """Multiply-accumulates of one image, counted on a copy built on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        model = _build(name, key).eval()
        x = torch.empty(1, in_chans, size, size)
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 2e9


def _timm_rows(name: str) -> list[str]:
    """timm's rows for network ``name``: :data:`TIMM_VARIANTS` where timm imports and has ResNet-50, else none."""
    if name != "resnet50":
        return []
    try:
        import timm  # noqa: F401
    except Exception:  # not installed, or a broken install (timm needs torchvision)
        return []
    return list(TIMM_VARIANTS)


def _variants(name: str, keys: Sequence[str], device: str, fmt: torch.memory_format) -> dict[str, nn.Module]:
    """The vanilla network ``name`` and one variant per row key, on ``device`` in memory format ``fmt``."""
    torch.manual_seed(0)
    return {key: _build(name, key).to(device, memory_format=fmt) for key in [VANILLA, *keys]}


def _peak_mb(fn: Callable[[], object], device: str, memory: bool) -> float:
    """Peak MiB allocated by one call of ``fn`` (NaN when memory is not measured)."""
    return peak_memory(fn, device).peak_bytes / 2**20 if memory else float("nan")


@dataclass
class _Settings:
    """How every network is measured (the arguments of :func:`benchmark_models` besides the names)."""

    infer_batch: int
    train_batch: int
    repeats: int
    warmup: int
    device: str
    memory: bool
    channels_last: bool
    amp: str | None
    timm: bool


def _benchmark_network(name: str, attentions: Sequence[str], s: _Settings,
                       log: Callable[[str], None] | None) -> list[ModelResult]:
    """Network ``name``, vanilla and with each attention: inference, then training steps, in shared rounds."""
    infer_batch, train_batch, repeats, warmup = s.infer_batch, s.train_batch, s.repeats, s.warmup
    device, memory, amp = s.device, s.memory, s.amp
    size = INPUT_SIZES.get(name, 224)
    fmt = torch.channels_last if s.channels_last else torch.contiguous_format
    variants = _variants(name, [*attentions, *(_timm_rows(name) if s.timm else [])], device, fmt)
    num_classes = variants[VANILLA].fc.out_features
    xi = torch.randn(infer_batch, 3, size, size, device=device).contiguous(memory_format=fmt)  # (N, 3, S, S)
    xt = torch.randn(train_batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    yt = torch.randint(0, num_classes, (train_batch,), device=device)
    for m in variants.values():
        m.eval()
    t_inf = time_paired({k: no_grad_forward(m, xi, amp) for k, m in variants.items()}, repeats=repeats,
                        warmup=warmup, device=device)
    mem_inf = {k: _peak_mb(no_grad_forward(m, xi, amp), device, memory) for k, m in variants.items()}
    for m in variants.values():
        m.train()
    steps = {k: _train_step(m, xt, yt, amp) for k, m in variants.items()}
    t_train = time_paired(steps, repeats=repeats, warmup=warmup, device=device)
    mem_train = {k: _peak_mb(step, device, memory) for k, step in steps.items()}
    results = [ModelResult(
        model=name, attention=key, input=f"{size}x{size}", params=sum(p.numel() for p in m.parameters()),
        gmacs=_gmacs(name, key, size),
        infer_ips=infer_batch / t_inf.median(key), infer_x=t_inf.ratio(VANILLA, key),
        infer_time_x=t_inf.ratio(key, VANILLA),
        train_ips=train_batch / t_train.median(key), train_x=t_train.ratio(VANILLA, key),
        train_time_x=t_train.ratio(key, VANILLA),
        infer_peak_mb=mem_inf[key], train_peak_mb=mem_train[key]) for key, m in variants.items()]
    if log:
        log(f"  measured {len(variants)} variants of {name} at {size}x{size}: vanilla "
            f"{infer_batch / t_inf.median(VANILLA):.1f} img/s inference, "
            f"{train_batch / t_train.median(VANILLA):.1f} img/s training")
    return results


def benchmark_models(models: Sequence[str] | None = None, attentions: Sequence[str] | None = None,
                     infer_batch: int = 16, train_batch: int = 8, repeats: int = 5, warmup: int = 1,
                     device: str = "cpu", memory: bool = True, channels_last: bool = False, amp: str | None = None,
                     timm: bool = False, log: Callable[[str], None] | None = print) -> list[ModelResult]:
    """Benchmark each network in ``models`` vanilla and with each attention module.

    Args:
        models: network names (default: :data:`MODELS`); their input side is ``INPUT_SIZES`` (224 for any name
            not listed).
        attentions: attention registry names (default: every registered module).
        infer_batch: images per inference call.
        train_batch: images per training step.
        repeats: paired rounds per measurement (the median is reported).
        warmup: rounds run first and discarded.
        device: "cpu" or a CUDA device.
        memory: also measure the peak memory of one inference and one training step.
        channels_last: networks and inputs in channels_last memory format (as ``attnlab train --channels-last``).
        amp: ``"bfloat16"`` or ``"float16"``: forwards under autocast to it.
        timm: also timm's ResNet-50 vanilla and with its SE, ECA, CBAM and the seed's CBAM, where timm imports.
        log: progress callback (None for silence).

    Raises:
        ValueError: an unknown AMP dtype.
    """
    attentions = list(attentions) if attentions is not None else list_attention()
    for name in models or MODELS:  # every name checked before anything is measured
        get_model_builder(name)
    for name in attentions:
        get_attention_class(name)
    amp_dtype(amp)
    settings = _Settings(infer_batch, train_batch, repeats, warmup, device, memory, channels_last, amp, timm)
    results: list[ModelResult] = []
    for name in models or MODELS:
        results += _benchmark_network(name, attentions, settings, log)
    return results


NOTES = ("Each network built by `attnlab.create_model(name, attention=...)` (attention where its paper puts it); the "
         "vanilla network is measured in the same run, its rounds interleaved with the variants'. {settings} "
         "x vanilla: throughput over the vanilla network's (the ECA paper's convention); time x: time over the "
         "vanilla network's (the targets' convention); both are medians of per-round ratios. GMACs: "
         "multiply-accumulates of convolutions and matrix products per image (the papers' \"GFLOPs\"), on "
         "torchvision's v1.5 bottleneck. Peak MB: memory allocated by one call. Rows `timm:...` (with `--timm`): "
         "timm's ResNet-50, vanilla and with its SE, ECA, CBAM (official, with BN) and the seed's CBAM as attention "
         "layer, as ratios to attnlab's vanilla network.")
TARGET_NOTES = ("Targets for ResNet-50 (this machine, same run): SE and ECA at most 1.05x the vanilla inference and "
                "training-step time, CBAM at most 1.10x and 1.15x. ECA paper (Table 2, GPU) throughput over "
                "ResNet-50, training / inference: SE 0.74 / 0.87, CBAM 0.46 / 0.65, ECA 0.77 / 0.97.")
HEADER = ["model", "attention", "input", "params (M)", "GMACs", "infer img/s", "infer x vanilla", "infer time x",
          "train img/s", "train x vanilla", "train time x", "infer peak MB", "train peak MB"]


def results_table(results: Sequence[ModelResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    rows = [[r.model, r.attention, r.input, r.params / 1e6, r.gmacs, r.infer_ips, r.infer_x, r.infer_time_x,
             r.train_ips, r.train_x, r.train_time_x, r.infer_peak_mb, r.train_peak_mb] for r in results]
    return HEADER, rows


def target_lines(results: Sequence[ModelResult]) -> list[str]:
    """One line per ResNet-50 variant with a target: measured time ratios against the targets and the paper."""
    lines = []
    for r in results:
        if r.model != "resnet50" or r.attention not in TARGETS:
            continue
        ti, tt = TARGETS[r.attention]
        pt, pi = PAPER_RATIOS[r.attention]
        ok = "meets" if r.infer_time_x <= ti and r.train_time_x <= tt else "misses"
        lines.append(f"- {r.attention}-ResNet-50: inference time x{r.infer_time_x:.3f} (target <= {ti}), training-step "
                     f"time x{r.train_time_x:.3f} (target <= {tt}): {ok} the targets; throughput x{r.infer_x:.2f} "
                     f"inference, x{r.train_x:.2f} training (ECA paper, GPU: x{pi} / x{pt}).")
    return lines


def run(out: str | os.PathLike | None = DEFAULT_OUT, command: str = "attnlab bench models",
        **kwargs: Any) -> list[ModelResult]:
    """Run ``benchmark_models(**kwargs)``, print the table and the targets, and save them to ``out`` (Markdown;
    None or "" to skip) with the exact command and machine."""
    if out:
        check_file(out, "the results file (--out)")
    results = benchmark_models(**kwargs)
    header, rows = results_table(results)
    print(format_table(header, rows))
    lines = target_lines(results)
    if lines:
        print("\n" + "\n".join(lines))
    layout = "channels_last" if kwargs.get("channels_last") else "NCHW"
    amp = f" Autocast: {kwargs['amp']}." if kwargs.get("amp") else ""
    settings = (f"Memory format: {layout}.{amp} infer: eval mode, no grad, batch {kwargs.get('infer_batch', 16)}; "
                f"train: forward + backward + SGD step, training mode, batch {kwargs.get('train_batch', 8)}; "
                f"img/s from the median of {kwargs.get('repeats', 5)} rounds.")
    preamble = "\n\n".join([provenance(command, kwargs.get("device", "cpu")), NOTES.format(settings=settings),
                             TARGET_NOTES, "\n".join(lines)])
    save_table(out, "Network benchmark: ResNets with attention", preamble, header, rows)
    return results
