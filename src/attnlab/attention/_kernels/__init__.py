"""Optional native CPU kernels, compiled on first use with the system C compiler and loaded by ctypes.

No build step at install time and no dependency: the C source ships with the package; the first call
compiles it (about a second with gcc) into a cache directory (``$ATTNLAB_CACHE`` or
``~/.cache/attnlab``), written atomically so concurrent processes never load a half-written library.
The library's name is a hash of all it depends on: the source, the compiler and its flags, the
platform, and the processor (``-march=native`` compiles for the CPU it runs on: its model and feature
flags from ``/proc/cpuinfo``), so a home directory shared between machines never loads a library built
for another processor. Where no compiler is found or the build fails, :func:`load` returns
None once with a warning, and callers take their pure-PyTorch path. ``ATTNLAB_NATIVE=0`` disables
the kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import torch

from ...fileio import atomic_path

__all__ = ["load", "available", "supports", "cpu_identity"]

_SOURCE = Path(__file__).with_name("cbam_cpu.c")  # CBAM kernels, the SE/ECA gate dot, the few-channel conv
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11"]
_CPUINFO = Path("/proc/cpuinfo")
#: the /proc/cpuinfo fields that say which processor this is and what it can run (x86: vendor_id ... flags;
#: ARM: CPU implementer ... Features; RISC-V: isa, uarch); their first occurrence is taken
_CPU_FIELDS = ("vendor_id", "model name", "cpu family", "model", "stepping", "flags", "cpu implementer",
               "cpu architecture", "cpu variant", "cpu part", "features", "isa", "uarch")
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False

_SIGNATURES = {
    "pool_hw": "piipppi",
    "pool_c": "ppiiipppi",
    "apply": "pppiiipi",
    "bwd_dots": "ppppiiippi",
    "bwd_gx": "pppppiiipi",
    "row_dot": "ppiiipi",
    "first_eq": "ppiipi",
    "pool_hw_nhwc": "piiipppi",
    "pool_c_nhwc": "ppiiipppi",
    "apply_nhwc": "pppiiipi",
    "bwd_dots_nhwc": "ppppiiippi",
    "bwd_gx_nhwc": "pppppiiipi",
    "same_conv": "pppiiiiiipi",
}


def _cache_dir() -> Path:
    root = os.environ.get("ATTNLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "attnlab")
    return Path(root) / "kernels"


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def cpu_identity() -> str:
    """The processor ``-march=native`` compiles for: its model and feature flags, one ``field=value`` a line.

    From the first processor's entries in ``/proc/cpuinfo`` (see ``_CPU_FIELDS``), after the
    machine type and processor name that :mod:`platform` reports (all there is where no
    ``/proc/cpuinfo`` exists).
    """
    parts = [f"machine={platform.machine()}", f"processor={platform.processor()}"]
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:
        text = ""
    seen: set[str] = set()
    for line in text.splitlines():
        field, sep, value = line.partition(":")
        field = field.strip().lower()
        if sep and field in _CPU_FIELDS and field not in seen:
            seen.add(field)
            parts.append(f"{field}={value.strip()}")
    return "\n".join(parts)


def _cache_key(cc: str, source: bytes) -> str:
    """16 hex digits of a hash of the source, compiler, flags, platform and processor the library is built for."""
    h = hashlib.sha256(source)
    h.update(" ".join([cc, *_FLAGS, sys.platform]).encode())
    h.update(cpu_identity().encode())
    return h.hexdigest()[:16]


def _build(cc: str) -> Path:
    target = _cache_dir() / f"cbam_cpu_{_cache_key(cc, _SOURCE.read_bytes())}.so"
    if target.exists():
        return target
    with atomic_path(target, suffix=".so") as tmp:  # other processes see no library or the whole one
        subprocess.run([cc, *_FLAGS, str(_SOURCE), "-o", str(tmp), "-lm"], check=True, capture_output=True, text=True)
    return target


def _bind(lib: ctypes.CDLL) -> None:
    kinds = {"p": ctypes.c_void_p, "i": ctypes.c_int64}
    for name, sig in _SIGNATURES.items():
        for suffix in ("f32", "f64"):
            fn = getattr(lib, f"{name}_{suffix}")
            # The last argument is the thread count (C int).
            fn.argtypes = [kinds[c] for c in sig[:-1]] + [ctypes.c_int]
            fn.restype = None


def load() -> ctypes.CDLL | None:
    """The compiled kernel library, or None where it cannot be built or is disabled."""
    global _lib, _tried
    if _tried:
        return _lib
    with _lock:
        if _tried:
            return _lib
        _tried = True
        if os.environ.get("ATTNLAB_NATIVE", "1") == "0":
            return None
        cc = _compiler()
        if cc is None:
            warnings.warn("attnlab: no C compiler found; using the pure-PyTorch CBAM path", stacklevel=2)
            return None
        try:
            lib = ctypes.CDLL(str(_build(cc)))
            _bind(lib)
        except (OSError, subprocess.CalledProcessError, AttributeError) as err:
            detail = getattr(err, "stderr", "") or str(err)
            warnings.warn(f"attnlab: native CBAM kernels unavailable ({detail.strip()[:300]}); "
                          "using the pure-PyTorch path", stacklevel=2)
            return None
        _lib = lib
        return _lib


def available() -> bool:
    """True when the native kernels are built and loaded."""
    return load() is not None


def supports(x: torch.Tensor) -> bool:
    """True when the native CBAM kernels can run on ``x`` (N, C, H, W).

    That is: a CPU float32/float64 tensor, NCHW- or channels_last-contiguous, and a library that loads.
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        return False
    return load() is not None
