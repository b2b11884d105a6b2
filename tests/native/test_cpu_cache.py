"""The native kernels' cache: one library per source, compiler, flags, platform and processor."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from attnlab import native

X86_A = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
stepping\t: 4
cpu MHz\t\t: 2400.000
flags\t\t: fpu sse sse2 avx avx2 avx512f

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz
cpu MHz\t\t: 1200.000
flags\t\t: fpu sse sse2 avx avx2 avx512f
"""
X86_B = X86_A.replace("Gold 6148", "E5-2680 v3").replace(" avx512f", "")
ARM = "processor\t: 0\nFeatures\t: fp asimd sve\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n"


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """Write a fake /proc/cpuinfo and point the kernels at it: ``cpuinfo(text)``."""
    path = tmp_path / "cpuinfo"
    monkeypatch.setattr(native, "_CPUINFO", path)

    def write(text: str) -> None:
        path.write_text(text)

    return write


def test_the_cpu_identity_is_the_processor_model_and_flags_not_its_clock(cpuinfo):
    cpuinfo(X86_A)
    ident = native.cpu_identity()
    assert "model name=Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz" in ident
    assert "flags=fpu sse sse2 avx avx2 avx512f" in ident
    assert "MHz" not in ident
    cpuinfo(X86_A.replace("2400.000", "3100.000").replace("1200.000", "800.000"))
    assert native.cpu_identity() == ident  # the clock changes all the time, the processor does not
    cpuinfo(ARM)
    assert "cpu part=0xd0c" in native.cpu_identity() and "features=fp asimd sve" in native.cpu_identity()


def _library(tmp_path: Path, source: bytes) -> native.NativeLibrary:
    path = tmp_path / f"src{len(source)}.c"
    path.write_bytes(source)
    return native.NativeLibrary("probe", path, {})


def test_the_cache_key_changes_with_the_processor(cpuinfo, monkeypatch, tmp_path):
    lib, edited = _library(tmp_path, b"int f(void) { return 0; }"), _library(tmp_path, b"int f(void) { return 0; } ")
    cpuinfo(X86_A)
    a = lib.cache_key("gcc")
    assert lib.cache_key("gcc") == a
    cpuinfo(X86_B)
    b = lib.cache_key("gcc")
    cpuinfo(ARM)
    c = lib.cache_key("gcc")
    assert len({a, b, c}) == 3
    cpuinfo(X86_A)
    assert lib.cache_key("clang") != a and edited.cache_key("gcc") != a
    monkeypatch.setattr(native, "_CPUINFO", Path("/nonexistent/cpuinfo"))  # no /proc: the platform's word
    monkeypatch.setattr(native.platform, "machine", lambda: "x86_64")
    d = lib.cache_key("gcc")
    monkeypatch.setattr(native.platform, "machine", lambda: "aarch64")
    assert lib.cache_key("gcc") != d


def test_a_shared_cache_holds_one_library_per_processor(tmp_path, cpuinfo, monkeypatch):
    # A stand-in compiler that records its calls and writes the -o file.
    log = tmp_path / "calls"
    cc = tmp_path / "fakecc"
    cc.write_text(f'#!/bin/sh\necho x >> "{log}"\nwhile [ "$1" != "-o" ]; do shift; done\necho lib > "$2"\n')
    cc.chmod(cc.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "home"))
    lib = _library(tmp_path, b"int f(void) { return 0; }")
    cpuinfo(X86_A)
    first = lib.build(str(cc))
    assert lib.build(str(cc)) == first  # built once per processor, then reused
    cpuinfo(X86_B)
    second = lib.build(str(cc))
    assert second != first and first.is_file() and second.is_file()
    assert len(log.read_text().split()) == 2
    assert sorted(os.listdir(first.parent)) == sorted([first.name, second.name])
