"""attnlab.native: a C source compiled on first use, cached per source and processor, None where it cannot build."""

from __future__ import annotations

import ctypes

import pytest

from attnlab import native

SOURCE = "#include <stdint.h>\nvoid add_one(int64_t *x, int64_t n) { for (int64_t i = 0; i < n; ++i) x[i] += 1; }\n"


@pytest.fixture
def library(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "add.c"
    src.write_text(SOURCE)
    return native.NativeLibrary("test_add", src, {"add_one": [ctypes.c_void_p, ctypes.c_int64]})


def test_a_library_is_built_once_and_called(library):
    if native.compiler() is None:
        pytest.skip("no C compiler")
    lib = library.load()
    assert lib is not None and library.available() and library.load() is lib
    x = (ctypes.c_int64 * 3)(1, 2, 3)
    lib.add_one(ctypes.addressof(x), 3)
    assert list(x) == [2, 3, 4]
    built = list((native.cache_dir()).glob("test_add_*.so"))
    assert len(built) == 1 and library.build(native.compiler()) == built[0]  # reused, not rebuilt


def test_the_cache_key_follows_the_source_and_the_compiler(library):
    key = library.cache_key("gcc")
    assert library.cache_key("gcc") == key and library.cache_key("clang") != key
    library.source.write_text(SOURCE + "\n")
    assert library.cache_key("gcc") != key


def test_no_compiler_warns_once_and_gives_none(library, monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.warns(UserWarning, match="no C compiler"):
        assert library.load() is None
    assert not library.available()  # no second warning: the answer is kept


def test_a_source_that_does_not_compile_warns_and_gives_none(library):
    if native.compiler() is None:
        pytest.skip("no C compiler")
    library.source.write_text("this is not C")
    with pytest.warns(UserWarning, match="unavailable"):
        assert library.load() is None


def test_attnlab_native_0_turns_the_kernels_off(library, monkeypatch):
    monkeypatch.setenv("ATTNLAB_NATIVE", "0")
    assert library.load() is None


def test_the_processor_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2\nvendor_id\t: Other\n")
    ident = native.cpu_identity(info)
    assert "vendor_id=GenuineIntel" in ident and "flags=fpu avx2" in ident and "Other" not in ident
    assert native.cpu_identity(tmp_path / "missing").startswith("machine=")
