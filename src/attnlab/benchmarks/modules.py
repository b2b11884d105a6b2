"""The module benchmark behind ``benchmarks/modules.py`` and ``attnlab bench modules``.

For every registered module at ResNet-50-like shapes: parameters, FLOPs, forward and
forward+backward time (median of paired, interleaved repeats), peak memory and allocations, and
speed relative to ``x.clone()`` and to a copy into a reused buffer (the machine's copy bandwidth on
a tensor of the same size), with naive reference implementations in the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..attention import create_attention, list_attention
from ..attention.reference import REFERENCES
from ..benchtools import count_flops, format_table, machine_summary, peak_memory, time_paired, write_markdown

__all__ = ["RESNET50_SHAPES", "ModuleResult", "benchmark_modules", "results_table"]

RESNET50_SHAPES: tuple[tuple[int, int, int], ...] = ((64, 56, 56), (256, 28, 28), (512, 14, 14), (2048, 7, 7))


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


def _fwd(m: nn.Module, x: Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return m(x)

    return run


def _fwd_bwd(m: nn.Module, x: Tensor, g: Tensor) -> Callable[[], object]:
    xg = x.detach().clone().requires_grad_()

    def run() -> object:
        xg.grad = None
        for p in m.parameters():
            p.grad = None
        m(xg).backward(g)
        return None

    return run


class _Clone(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.clone()


def benchmark_modules(names: Sequence[str] | None = None, shapes: Sequence[tuple[int, int, int]] = RESNET50_SHAPES,
                      batch: int = 32, repeats: int = 7, backward: bool = True, device: str = "cpu",
                      channels_last: bool = False, log: Callable[[str], None] | None = print) -> list[ModuleResult]:
    """Benchmark attention modules (default: all registered) and the references, at each shape.

    Args:
        names: registry names to include (references for them are added when known).
        shapes: (C, H, W) input shapes; N is ``batch``.
        repeats: paired rounds per measurement (the median is reported).
        backward: also time forward+backward.
        device: "cpu" or a CUDA device.
        channels_last: inputs (and so outputs and gradients) in channels_last memory format.
        log: progress callback (None for silence).
    """
    names = list(names) if names else list_attention()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    results: list[ModuleResult] = []
    for c, h, w in shapes:
        torch.manual_seed(0)
        x = torch.randn(batch, c, h, w, device=device).contiguous(memory_format=fmt)
        g = torch.randn_like(x)  # keeps x's memory format
        buf = torch.empty_like(x)
        candidates: dict[str, nn.Module] = {}
        for name in names:
            candidates[name] = create_attention(name, c).to(device).train()
            if name in REFERENCES:
                candidates[f"{name} (naive)"] = REFERENCES[name](c).to(device).train()
        fwd = {"clone": _fwd(_Clone(), x), "copy": lambda buf=buf, x=x: buf.copy_(x)}
        fwd |= {k: _fwd(m, x) for k, m in candidates.items()}
        t_fwd = time_paired(fwd, repeats=repeats, device=device)
        t_fb = None
        if backward:
            fb = {"clone": _fwd_bwd(_Clone(), x, g)} | {k: _fwd_bwd(m, x, g) for k, m in candidates.items()}
            t_fb = time_paired(fb, repeats=repeats, device=device)
        for key, m in candidates.items():
            base = key.split(" ")[0]
            ref_key = f"{base} (naive)"
            x_ref = None
            if key != ref_key and ref_key in candidates:
                x_ref = (t_fb or t_fwd).ratio(key, ref_key)
            mem = peak_memory(_fwd_bwd(m, x, g) if backward else _fwd(m, x), device)
            results.append(ModuleResult(
                module=key, shape=f"{c}x{h}x{w}", params=sum(p.numel() for p in m.parameters()),
                mflops=count_flops(_fwd(m, x)) / 1e6,
                fwd_ms=t_fwd.median(key) * 1e3, fwd_x_clone=t_fwd.ratio(key, "clone"),
                fwd_bw_ratio=1 / t_fwd.ratio(key, "copy"),
                fb_ms=t_fb.median(key) * 1e3 if t_fb else float("nan"),
                fb_x_clone=t_fb.ratio(key, "clone") if t_fb else float("nan"),
                peak_mb=mem.peak_bytes / 2**20, allocations=mem.allocations, x_reference=x_ref))
        if log:
            log(f"  measured {len(candidates)} modules at N={batch}, {c}x{h}x{w}; "
                f"clone {t_fwd.median('clone') * 1e3:.2f} ms, copy {t_fwd.median('copy') * 1e3:.2f} ms")
    return results


HEADER = ["module", "shape", "params", "MFLOPs", "fwd ms", "fwd x clone", "fwd BW/copy", "fwd+bwd ms",
          "fwd+bwd x clone", "peak MB", "allocs", "x naive"]


def results_table(results: Sequence[ModuleResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    rows = [[r.module, r.shape, r.params, r.mflops, r.fwd_ms, r.fwd_x_clone, r.fwd_bw_ratio, r.fb_ms, r.fb_x_clone,
             r.peak_mb, r.allocations, "-" if r.x_reference is None else r.x_reference] for r in results]
    return HEADER, rows



def run(out: str | None = "benchmarks/results/modules.md", command: str = "attnlab bench modules",
        **kwargs) -> list[ModuleResult]:
    """Benchmark, print the table, and save it (Markdown) with the exact command and machine."""
    device = kwargs.get("device", "cpu")
    results = benchmark_modules(**kwargs)
    header, rows = results_table(results)
    print(format_table(header, rows))
    if out:
        pre = (f"Command: `{command}`\n\nMachine: {machine_summary(device)}; inputs "
               f"{'channels_last' if kwargs.get('channels_last') else 'NCHW'}\n\n"
               "fwd x clone: forward time over `x.clone()` of the same tensor, median of paired rounds; "
               "fwd+bwd x clone: forward+backward over a clone's forward+backward; fwd BW/copy: effective "
               "bandwidth (read input + write output) over a copy into a reused buffer; peak MB and allocs: "
               "memory allocated by one forward+backward; x naive: forward+backward time over the naive "
               "reference of the same module (seed CBAM, stock-layer SE/ECA) in the same run.")
        path = write_markdown(out, "Attention module benchmark", pre, header, rows)
        print(f"\nsaved {path}")
    return results


def as_dicts(results: Sequence[ModuleResult]) -> list[dict]:
    """Results as plain dicts (for JSON)."""
    return [asdict(r) for r in results]
