"""Native CPU kernels compiled on first use with the system C compiler and loaded by ctypes (floor 1).

A package's C source ships with it; :class:`NativeLibrary` compiles it on the first :meth:`~NativeLibrary.load`
(about a second with gcc) into a cache directory (``$ATTNLAB_CACHE`` or ``~/.cache/attnlab``, under
``kernels/``), written atomically so concurrent processes never load a half-written library. The library's
name is a hash of all it depends on: the source, the compiler and its flags, the platform and the processor
(``-march=native`` compiles for the CPU it runs on: its model and feature flags from ``/proc/cpuinfo``), so a
home directory shared between machines never loads a library built for another processor. Where no compiler
is found or the build fails, ``load`` returns None once with a warning and callers take their pure-PyTorch
path. ``ATTNLAB_NATIVE=0`` disables every native library.

Users: :mod:`attnlab.attention` (the CBAM, SE/ECA and few-channel conv kernels) and :mod:`attnlab.metrics` (the
connected-component metrics).
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
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..fileio import atomic_path

__all__ = ["FLAGS", "NativeLibrary", "cache_dir", "compiler", "cpu_identity", "enabled"]

#: The compiler flags of every library (OpenMP for the thread count each kernel takes as its last argument).
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_CPUINFO = Path("/proc/cpuinfo")
#: the /proc/cpuinfo fields that say which processor this is and what it can run (x86: vendor_id ... flags;
#: ARM: CPU implementer ... Features; RISC-V: isa, uarch); their first occurrence is taken
_CPU_FIELDS = ("vendor_id", "model name", "cpu family", "model", "stepping", "flags", "cpu implementer",
               "cpu architecture", "cpu variant", "cpu part", "features", "isa", "uarch")


def enabled() -> bool:
    """False when ``ATTNLAB_NATIVE=0`` turns the native kernels off."""
    return os.environ.get("ATTNLAB_NATIVE", "1") != "0"


def cache_dir() -> Path:
    """Where the compiled libraries are kept: ``$ATTNLAB_CACHE/kernels`` or ``~/.cache/attnlab/kernels``."""
    root = os.environ.get("ATTNLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "attnlab")
    return Path(root) / "kernels"


def compiler() -> str | None:
    """The C compiler to use: ``$CC``, else the first of ``cc``, ``gcc``, ``clang`` on the PATH; None without one."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def cpu_identity(cpuinfo: Path | None = None) -> str:
    """The processor ``-march=native`` compiles for: its model and feature flags, one ``field=value`` a line.

    From the first processor's entries in ``cpuinfo`` (default ``/proc/cpuinfo``; see ``_CPU_FIELDS``), after the
    machine type and processor name that :mod:`platform` reports (all there is where no ``/proc/cpuinfo`` exists).
    """
    parts = [f"machine={platform.machine()}", f"processor={platform.processor()}"]
    try:
        text = (cpuinfo or _CPUINFO).read_text(errors="replace")
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


class NativeLibrary:
    """One C source file, compiled on first use and loaded once per process (thread-safe).

    Args:
        name: the library's file name stem in the cache (``<name>_<hash>.so``) and its name in warnings.
        source: the C file.
        signatures: function name -> ctypes argument types (every function returns void).
    """

    def __init__(self, name: str, source: Path, signatures: Mapping[str, Sequence[type]]) -> None:
        self.name = name
        self.source = Path(source)
        self.signatures = dict(signatures)
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._tried = False

    def cache_key(self, cc: str) -> str:
        """16 hex digits of a hash of the source, compiler, flags, platform and processor."""
        h = hashlib.sha256(self.source.read_bytes())
        h.update(" ".join([cc, *FLAGS, sys.platform]).encode())
        h.update(cpu_identity().encode())
        return h.hexdigest()[:16]

    def build(self, cc: str) -> Path:
        """Compile the source with ``cc`` into the cache (once per key) and return the library's path."""
        target = cache_dir() / f"{self.name}_{self.cache_key(cc)}.so"
        if target.exists():
            return target
        with atomic_path(target, suffix=".so") as tmp:  # other processes see no library or the whole one
            subprocess.run([cc, *FLAGS, str(self.source), "-o", str(tmp), "-lm"], check=True, capture_output=True,
                           text=True)
        return target

    def load(self) -> ctypes.CDLL | None:
        """The compiled library with its functions' signatures set, or None where it cannot be built or is
        disabled (a warning says why, once)."""
        if self._tried:
            return self._lib
        with self._lock:
            if self._tried:
                return self._lib
            self._tried = True
            if not enabled():
                return None
            cc = compiler()
            if cc is None:
                warnings.warn(f"attnlab: no C compiler found; {self.name} uses its pure-PyTorch path", stacklevel=2)
                return None
            try:
                lib = ctypes.CDLL(str(self.build(cc)))
                for fn_name, argtypes in self.signatures.items():
                    fn = getattr(lib, fn_name)
                    fn.argtypes = list(argtypes)
                    fn.restype = None
            except (OSError, subprocess.CalledProcessError, AttributeError) as err:
                detail = getattr(err, "stderr", "") or str(err)
                warnings.warn(f"attnlab: native {self.name} kernels unavailable ({detail.strip()[:300]}); using the "
                              "pure-PyTorch path", stacklevel=2)
                return None
            self._lib = lib
            return lib

    def available(self) -> bool:
        """True when the library is built and loaded."""
        return self.load() is not None
