"""Every Triton kernel compiles to PTX for a Hopper GPU (sm_90) without a GPU.

The interpreter runs the kernels' Python, not their compilation: a kernel can pass every interpreted test and
still fail to compile (a type Triton's compiler refuses, a variable defined in one constexpr branch only). This
compiles each kernel, in the variants the launchers use, with the ptxas shipped in Triton's wheel.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

#: pointer arguments by name -> element type (x, g and out in bfloat16: the stores' casts are compiled too)
POINTERS = {"x_ptr": "*bf16", "g_ptr": "*bf16", "o_ptr": "*bf16", "arg_ptr": "*i32", "arg_out": "*i32",
            "argc_ptr": "*i32", "argp_ptr": "*i32"}


def _kernels():
    from attnlab.attention._triton import gating, pooling

    # (kernel, constexprs, integer arguments equal to one: the contiguous axis's strides)
    nchw, nhwc = dict(BC=16, BP=128), dict(BC=128, BP=16)
    return [
        (pooling.pool_hw_kernel, dict(NEED_MAX=True, **nchw), ("sxp",)),
        (pooling.pool_hw_kernel, dict(NEED_MAX=False, **nhwc), ("sxc",)),
        (pooling.pool_c_kernel, nchw, ("sxp",)),
        (pooling.pool_c_kernel, nhwc, ("sxc",)),
        (pooling.combine_kernel, dict(NEED_MAX=True, BL=1024), ()),
        (pooling.combine_kernel, dict(NEED_MAX=False, BL=64), ()),
        (gating.gate_mul_kernel, dict(HAS_SA=True, **nchw), ("sxp", "sop")),
        (gating.gate_mul_kernel, dict(HAS_SA=False, **nhwc), ("sxc", "soc")),
        (gating.gate_dots_kernel, dict(HAS_SA=True, **nchw), ("sxp", "sgp")),
        (gating.gate_dots_kernel, dict(HAS_SA=False, **nhwc), ("sxc", "sgc")),
        (gating.mean_max_dot_kernel, nhwc, ("sxc",)),
        (gating.grad_x_kernel, dict(CBAM=True, **nchw), ("sgp", "sop")),
        (gating.grad_x_kernel, dict(CBAM=False, **nhwc), ("sgc", "soc")),
    ]


def _signature(kernel, consts: dict, ones: tuple) -> tuple[dict, dict]:
    sig, values = {}, {}
    for name in kernel.arg_names:
        if name in consts or name in ones:
            sig[name], values[name] = "constexpr", consts.get(name, 1)
        elif name.endswith(("_ptr", "_out")):
            sig[name] = POINTERS.get(name, "*fp32")
        else:
            sig[name] = "fp32" if name == "scale" else "i32"
    return sig, values


def compile_all() -> list[str]:
    """Compile every kernel variant for sm_90; one line per kernel, "ok" or the error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    lines = []
    for kernel, consts, ones in _kernels():
        sig, values = _signature(kernel, consts, ones)
        try:
            compiled = triton.compile(ASTSource(kernel, sig, values), target=GPUTarget("cuda", 90, 32))
            ok = ".entry" in compiled.asm["ptx"]
            lines.append(f"{kernel.__name__} {consts}: {'ok' if ok else 'no entry point in the PTX'}")
        except Exception as err:  # noqa: BLE001 - reported, the test fails on it
            lines.append(f"{kernel.__name__} {consts}: {type(err).__name__}: {err}")
    return lines


def test_every_kernel_compiles_for_sm90():
    """In a fresh process without the interpreter (an interpreted run may leave triton.language patched)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import test_triton_ptx as t\nprint('\\n'.join(t.compile_all()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(_kernels()) and all(line.endswith(": ok") for line in lines), "\n".join(lines)
