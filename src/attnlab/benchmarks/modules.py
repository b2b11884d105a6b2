"""The module benchmark behind ``attnlab bench modules`` and ``benchmarks/modules.py``.

For every registered module at ResNet-50-like shapes: parameters, FLOPs, forward and
forward+backward time (median of paired, interleaved repeats), peak memory and allocations, and
speed relative to ``x.clone()`` and to a copy into a reused buffer (the machine's copy bandwidth on
a tensor of the same size), with naive reference implementations in the same run.
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
from ._shared import RESULTS_DIR, no_grad_forward, provenance, save_table

__all__ = ["DEFAULT_OUT", "HEADER", "RESNET50_SHAPES", "ModuleResult", "benchmark_modules", "results_table", "run"]

#: (C, H, W) of the four ResNet-50 stages' outputs.
RESNET50_SHAPES: tuple[tuple[int, int, int], ...] = ((64, 56, 56), (256, 28, 28), (512, 14, 14), (2048, 7, 7))
#: Where ``run`` writes its table by default (relative to the current directory).
DEFAULT_OUT = RESULTS_DIR / "modules.md"
NAIVE = " (naive)"  # suffix of a naive reference's row name


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


def _fwd_bwd(m: nn.Module, x: Tensor, g: Tensor) -> Callable[[], object]:
    """A zero-argument forward+backward of ``m`` on a copy of ``x`` (N, C, H, W), output gradient ``g``."""
    xg = x.detach().clone().requires_grad_()

    def run() -> object:
        xg.grad = None
        for p in m.parameters():
            p.grad = None
        m(xg).backward(g)
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


def _candidates(names: Sequence[str], channels: int, device: str) -> dict[str, nn.Module]:
    """Each module for ``channels`` and, where one exists, its naive reference ("name (naive)"), training mode."""
    candidates: dict[str, nn.Module] = {}
    for name in names:
        candidates[name] = create_attention(name, channels).to(device).train()
        if name in REFERENCES:
            candidates[name + NAIVE] = REFERENCES[name](channels).to(device).train()
    return candidates


def _result(key: str, m: nn.Module, x: Tensor, g: Tensor, t_fwd: PairedTimes, t_fb: PairedTimes | None,
            has_reference: bool, device: str) -> ModuleResult:
    """The row of candidate ``key``: its timings from the shared rounds, its FLOPs and memory measured now."""
    ref_key = key.split(" ")[0] + NAIVE
    x_ref = (t_fb or t_fwd).ratio(key, ref_key) if has_reference and key != ref_key else None
    mem = peak_memory(_fwd_bwd(m, x, g) if t_fb is not None else no_grad_forward(m, x), device)
    _, c, h, w = x.shape
    return ModuleResult(
        module=key, shape=f"{c}x{h}x{w}", params=sum(p.numel() for p in m.parameters()),
        mflops=count_flops(no_grad_forward(m, x)) / 1e6,
        fwd_ms=t_fwd.median(key) * 1e3, fwd_x_clone=t_fwd.ratio(key, "clone"),
        fwd_bw_ratio=1 / t_fwd.ratio(key, "copy"),
        fb_ms=t_fb.median(key) * 1e3 if t_fb is not None else float("nan"),
        fb_x_clone=t_fb.ratio(key, "clone") if t_fb is not None else float("nan"),
        peak_mb=mem.peak_bytes / 2**20, allocations=mem.allocations, x_reference=x_ref)


def _benchmark_shape(names: Sequence[str], shape: tuple[int, int, int], batch: int, repeats: int, backward: bool,
                     device: str, channels_last: bool, log: Callable[[str], None] | None) -> list[ModuleResult]:
    """Every module (and reference) on one (batch, C, H, W) input, timed in shared paired rounds."""
    c, h, w = shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(batch, c, h, w, device=device).contiguous(memory_format=fmt)
    g = torch.randn_like(x)  # keeps x's memory format
    buf = torch.empty_like(x)
    candidates = _candidates(names, c, device)
    fwd = {"clone": no_grad_forward(_Clone(), x), "copy": lambda: buf.copy_(x)}
    fwd |= {k: no_grad_forward(m, x) for k, m in candidates.items()}
    t_fwd = time_paired(fwd, repeats=repeats, device=device)
    t_fb = None
    if backward:
        fb = {"clone": _fwd_bwd(_Clone(), x, g)} | {k: _fwd_bwd(m, x, g) for k, m in candidates.items()}
        t_fb = time_paired(fb, repeats=repeats, device=device)
    results = [_result(k, m, x, g, t_fwd, t_fb, k.split(" ")[0] + NAIVE in candidates, device)
               for k, m in candidates.items()]
    if log:
        log(f"  measured {len(candidates)} modules at N={batch}, {c}x{h}x{w}; "
            f"clone {t_fwd.median('clone') * 1e3:.2f} ms, copy {t_fwd.median('copy') * 1e3:.2f} ms")
    return results


def benchmark_modules(names: Sequence[str] | None = None, shapes: Sequence[tuple[int, int, int]] | None = None,
                      batch: int = 32, repeats: int = 7, backward: bool = True, device: str = "cpu",
                      channels_last: bool = False, log: Callable[[str], None] | None = print) -> list[ModuleResult]:
    """Benchmark attention modules (default: all registered) and the references, at each shape.

    Args:
        names: registry names to include (references for them are added when known; default: all).
        shapes: (C, H, W) input shapes; N is ``batch`` (default: :data:`RESNET50_SHAPES`).
        batch: N of every (N, C, H, W) input.
        repeats: paired rounds per measurement (the median is reported).
        backward: also time forward+backward.
        device: "cpu" or a CUDA device.
        channels_last: inputs (and so outputs and gradients) in channels_last memory format.
        log: progress callback (None for silence).

    Raises:
        ValueError: an unknown module name (before anything is measured).
    """
    names = _names_to_measure(names)
    results: list[ModuleResult] = []
    for shape in shapes or RESNET50_SHAPES:
        results += _benchmark_shape(names, shape, batch, repeats, backward, device, channels_last, log)
    return results


HEADER = ["module", "shape", "params", "MFLOPs", "fwd ms", "fwd x clone", "fwd BW/copy", "fwd+bwd ms",
          "fwd+bwd x clone", "peak MB", "allocs", "x naive"]
NOTES = ("fwd x clone: forward time over `x.clone()` of the same tensor, median of paired rounds; "
         "fwd+bwd x clone: forward+backward over a clone's forward+backward; fwd BW/copy: effective "
         "bandwidth (read input + write output) over a copy into a reused buffer; peak MB and allocs: "
         "memory allocated by one forward+backward; x naive: forward+backward time over the naive "
         "reference of the same module (seed CBAM, stock-layer SE/ECA) in the same run.")


def results_table(results: Sequence[ModuleResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    rows = [[r.module, r.shape, r.params, r.mflops, r.fwd_ms, r.fwd_x_clone, r.fwd_bw_ratio, r.fb_ms, r.fb_x_clone,
             r.peak_mb, r.allocations, "-" if r.x_reference is None else r.x_reference] for r in results]
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
    preamble = f"{provenance(command, kwargs.get('device', 'cpu'), f'; inputs {layout}')}\n\n{NOTES}"
    save_table(out, "Attention module benchmark", preamble, header, rows)
    return results
