"""The module benchmark behind ``attnlab bench modules`` and ``benchmarks/modules.py``.

For every registered module at ResNet-50-like shapes: parameters, FLOPs, forward and
forward+backward time (median of paired, interleaved repeats), peak memory and allocations, and
speed relative to ``x.clone()`` and to a copy into a reused buffer (the machine's copy bandwidth on
a tensor of the same size), with naive reference implementations in the same run and, with ``timm=True``
where timm imports, timm's SE, ECA and CBAM. On CUDA the timings are CUDA events; with ``amp`` the
inputs are in that dtype and every call runs under autocast to it (as inside an AMP network).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import create_attention, get_attention_class, list_attention
from ..attention.reference import REFERENCES
from ..benchtools import PairedTimes, count_flops, format_table, peak_memory, time_paired
from ..fileio import check_file
from ._shared import RESULTS_DIR, amp_dtype, autocast, no_grad_forward, provenance, save_table, timm_attention

__all__ = ["DEFAULT_OUT", "HEADER", "RESNET50_SHAPES", "ModuleResult", "benchmark_modules", "results_table", "run"]

#: (C, H, W) of the four ResNet-50 stages' outputs.
RESNET50_SHAPES: tuple[tuple[int, int, int], ...] = ((64, 56, 56), (256, 28, 28), (512, 14, 14), (2048, 7, 7))
#: Where ``run`` writes its table by default (relative to the current directory).
DEFAULT_OUT = RESULTS_DIR / "modules.md"
NAIVE = " (naive)"  # suffix of a naive reference's row name
TIMM = " (timm)"  # suffix of timm's module's row name
#: The registry names timm has a module for (``timm.layers.create_attn``).
TIMM_NAMES = ("se", "eca", "cbam")


@dataclass
class ModuleResult:
    """One row of the module benchmark."""

    module: str
    shape: str
    params: int
    mflops: float
    fwd_ms: float
    fwd_x_clone: float
    fwd_bw_ratio: float  # effective bandwidth (2 x bytes / time) over copy bandwidth, forward
    fb_ms: float
    fb_x_clone: float
    peak_mb: float
    allocations: int
    x_reference: float | None  # forward+backward time over the naive reference's, same run
    x_timm: float | None = None  # forward+backward time over timm's module's, same run


def _fwd_bwd(m: nn.Module, x: Tensor, g: Tensor, amp: str | None = None) -> Callable[[], object]:
    """A zero-argument forward+backward of ``m`` on a copy of ``x`` (N, C, H, W), output gradient ``g``; the
    forward under autocast to ``amp``."""
    xg = x.detach().clone().requires_grad_()

    def run() -> object:
        xg.grad = None
        for p in m.parameters():
            p.grad = None
        with autocast(x.device.type, amp):
            out = m(xg)
        out.backward(g.to(out.dtype))
        return None

    return run


class _Clone(nn.Module):
    """The floor every module is compared with: one read and one write of the tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return x.clone()


def _names_to_measure(names: Sequence[str] | None) -> list[str]:
    """The registry names asked for (all when empty); an unknown one raises the registry's ``ValueError``."""
    if not names:
        return list_attention()
    for name in names:
        get_attention_class(name)
    return list(names)


def _candidates(names: Sequence[str], channels: int, device: str, timm: bool = False) -> dict[str, nn.Module]:
    """Each module for ``channels`` and, where one exists, its naive reference ("name (naive)") and, with ``timm``,
    timm's ("name (timm)"), in training mode."""
    candidates: dict[str, nn.Module] = {}
    for name in names:
        candidates[name] = create_attention(name, channels).to(device).train()
        if name in REFERENCES:
            candidates[name + NAIVE] = REFERENCES[name](channels).to(device).train()
        theirs = timm_attention(name, channels) if timm and name in TIMM_NAMES else None
        if theirs is not None:
            candidates[name + TIMM] = theirs.to(device).train()
    return candidates


def _result(key: str, m: nn.Module, x: Tensor, g: Tensor, t_fwd: PairedTimes, t_fb: PairedTimes | None,
            others: Sequence[str], device: str, amp: str | None) -> ModuleResult:
    """The row of candidate ``key``: its timings from the shared rounds (ratios to the naive reference and timm's
    module of the same name where ``others`` holds them), its FLOPs and memory measured now."""
    times = t_fb or t_fwd
    ref_key, timm_key = key.split(" ")[0] + NAIVE, key + TIMM
    x_ref = times.ratio(key, ref_key) if ref_key in others and key != ref_key else None
    x_timm = times.ratio(key, timm_key) if timm_key in others else None
    mem = peak_memory(_fwd_bwd(m, x, g, amp) if t_fb is not None else no_grad_forward(m, x, amp), device)
    _, c, h, w = x.shape
    return ModuleResult(
        module=key, shape=f"{c}x{h}x{w}", params=sum(p.numel() for p in m.parameters()),
        mflops=count_flops(no_grad_forward(m, x, amp)) / 1e6,
        fwd_ms=t_fwd.median(key) * 1e3, fwd_x_clone=t_fwd.ratio(key, "clone"),
        fwd_bw_ratio=1 / t_fwd.ratio(key, "copy"),
        fb_ms=t_fb.median(key) * 1e3 if t_fb is not None else float("nan"),
        fb_x_clone=t_fb.ratio(key, "clone") if t_fb is not None else float("nan"),
        peak_mb=mem.peak_bytes / 2**20, allocations=mem.allocations, x_reference=x_ref, x_timm=x_timm)


@dataclass
class _Settings:
    """How every shape is measured (the arguments of :func:`benchmark_modules` besides names and shapes)."""

    batch: int
    repeats: int
    backward: bool
    device: str
    channels_last: bool
    amp: str | None
    timm: bool


def _benchmark_shape(names: Sequence[str], shape: tuple[int, int, int], s: _Settings,
                     log: Callable[[str], None] | None) -> list[ModuleResult]:
    """Every module (and reference) on one (batch, C, H, W) input, timed in shared paired rounds."""
    c, h, w = shape
    fmt = torch.channels_last if s.channels_last else torch.contiguous_format
    dtype, device, amp = amp_dtype(s.amp) or torch.float32, s.device, s.amp
    torch.manual_seed(0)
    x = torch.randn(s.batch, c, h, w, device=device, dtype=dtype).contiguous(memory_format=fmt)
    g = torch.randn_like(x)  # keeps x's memory format
    buf = torch.empty_like(x)
    candidates = _candidates(names, c, device, s.timm)
    fwd = {"clone": no_grad_forward(_Clone(), x), "copy": lambda: buf.copy_(x)}
    fwd |= {k: no_grad_forward(m, x, amp) for k, m in candidates.items()}
    t_fwd = time_paired(fwd, repeats=s.repeats, device=device)
    t_fb = None
    if s.backward:
        fb = {"clone": _fwd_bwd(_Clone(), x, g)} | {k: _fwd_bwd(m, x, g, amp) for k, m in candidates.items()}
        t_fb = time_paired(fb, repeats=s.repeats, device=device)
    results = [_result(k, m, x, g, t_fwd, t_fb, list(candidates), device, amp) for k, m in candidates.items()]
    if log:
        log(f"  measured {len(candidates)} modules at N={s.batch}, {c}x{h}x{w}; "
            f"clone {t_fwd.median('clone') * 1e3:.2f} ms, copy {t_fwd.median('copy') * 1e3:.2f} ms")
    return results


def benchmark_modules(names: Sequence[str] | None = None, shapes: Sequence[tuple[int, int, int]] | None = None,
                      batch: int = 32, repeats: int = 7, backward: bool = True, device: str = "cpu",
                      channels_last: bool = False, amp: str | None = None, timm: bool = False,
                      log: Callable[[str], None] | None = print) -> list[ModuleResult]:
    """Benchmark attention modules (default: all registered) and the references, at each shape.

    Args:
        names: registry names to include (references for them are added when known; default: all).
        shapes: (C, H, W) input shapes; N is ``batch`` (default: :data:`RESNET50_SHAPES`).
        batch: N of every (N, C, H, W) input.
        repeats: paired rounds per measurement (the median is reported).
        backward: also time forward+backward.
        device: "cpu" or a CUDA device.
        channels_last: inputs (and so outputs and gradients) in channels_last memory format.
        amp: ``"bfloat16"`` or ``"float16"``: inputs in that dtype, every call under autocast to it.
        timm: also timm's SE, ECA and CBAM ("name (timm)" rows, and the "x timm" ratios), where timm imports.
        log: progress callback (None for silence).

    Raises:
        ValueError: an unknown module name or AMP dtype (before anything is measured).
    """
    names = _names_to_measure(names)
    amp_dtype(amp)
    settings = _Settings(batch, repeats, backward, device, channels_last, amp, timm)
    results: list[ModuleResult] = []
    for shape in shapes or RESNET50_SHAPES:
        results += _benchmark_shape(names, shape, settings, log)
    return results


HEADER = ["module", "shape", "params", "MFLOPs", "fwd ms", "fwd x clone", "fwd BW/copy", "fwd+bwd ms",
          "fwd+bwd x clone", "peak MB", "allocs", "x naive", "x timm"]
NOTES = ("fwd x clone: forward time over `x.clone()` of the same tensor, median of paired rounds; "
         "fwd+bwd x clone: forward+backward over a clone's forward+backward; fwd BW/copy: effective "
         "bandwidth (read input + write output) over a copy into a reused buffer; peak MB and allocs: "
         "memory allocated by one forward+backward; x naive: forward+backward time over the naive "
         "reference of the same module (seed CBAM, stock-layer SE/ECA) in the same run; x timm: the same over "
         "timm's module (`timm.layers.create_attn`; timm's CBAM is the official variant, with BN), where measured.")


def results_table(results: Sequence[ModuleResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    rows = [[r.module, r.shape, r.params, r.mflops, r.fwd_ms, r.fwd_x_clone, r.fwd_bw_ratio, r.fb_ms, r.fb_x_clone,
             r.peak_mb, r.allocations, "-" if r.x_reference is None else r.x_reference,
             "-" if r.x_timm is None else r.x_timm] for r in results]
    return HEADER, rows


def run(out: str | os.PathLike | None = DEFAULT_OUT, command: str = "attnlab bench modules",
        **kwargs: Any) -> list[ModuleResult]:
    """Run ``benchmark_modules(**kwargs)``, print the table, and save it to ``out`` (Markdown; None or "" to skip)
    with the exact command and machine."""
    if out:
        check_file(out, "the results file (--out)")
    results = benchmark_modules(**kwargs)
    header, rows = results_table(results)
    print(format_table(header, rows))
    layout = "channels_last" if kwargs.get("channels_last") else "NCHW"
    amp = f", autocast {kwargs['amp']}" if kwargs.get("amp") else ""
    preamble = f"{provenance(command, kwargs.get('device', 'cpu'), f'; inputs {layout}{amp}')}\n\n{NOTES}"
    save_table(out, "Attention module benchmark", preamble, header, rows)
    return results
