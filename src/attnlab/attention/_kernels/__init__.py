"""Optional native CPU kernels, compiled on first use with the system C compiler and loaded by ctypes.

No build step at install time and no dependency: the C source ships with the package; the first call
compiles it (about a second with gcc) into a cache directory (``$ATTNLAB_CACHE`` or
``~/.cache/attnlab``), keyed by the source's hash, written atomically so concurrent processes never
load a half-written library. Where no compiler is found or the build fails, :func:`load` returns
None once with a warning, and callers take their pure-PyTorch path. ``ATTNLAB_NATIVE=0`` disables
the kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from ...fileio import atomic_path

__all__ = ["load", "available"]

_SOURCE = Path(__file__).with_name("cbam_cpu.c")  # CBAM kernels, the SE/ECA gate dot, the few-channel conv
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11"]
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


def _build(cc: str) -> Path:
    src = _SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join([cc, *_FLAGS, sys.platform]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"cbam_cpu_{key}.so"
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
