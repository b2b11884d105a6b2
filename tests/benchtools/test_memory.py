import torch

from attnlab.benchtools import count_flops, peak_memory


def test_peak_memory_counts_fresh_allocations():
    n = 256 * 1024  # 1 MiB of float32

    def two_buffers():
        a = torch.ones(n)
        b = torch.ones(n)
        del a, b

    stats = peak_memory(two_buffers)
    assert stats.peak_bytes == 2 * 4 * n
    assert stats.allocations == 2
    assert stats.allocated_bytes == 2 * 4 * n


def test_peak_memory_sequential_frees_lower_the_peak():
    n = 256 * 1024

    def one_at_a_time():
        for _ in range(3):
            a = torch.ones(n)
            del a

    stats = peak_memory(one_at_a_time)
    assert stats.peak_bytes == 4 * n
    assert stats.allocations == 3


def test_peak_memory_in_place_allocates_no_buffer():
    x = torch.ones(1024 * 1024)
    stats = peak_memory(lambda: x.mul_(2))
    assert stats.allocated_bytes < 1024  # at most the wrapped scalar, never a 4 MiB buffer


def test_count_flops_matmul():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_the_profiler_prints_nothing_on_stderr(capfd):
    peak_memory(lambda: torch.ones(1024))
    assert capfd.readouterr().err == ""


def test_quiet_profiler_drops_only_the_profiler_lines(capfd):
    import os
    import sys

    from attnlab.benchtools.memory import quiet_profiler

    with quiet_profiler():
        os.write(2, b"USDT:2026 1:1 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"[W CPUAllocator.cpp:245] Memory block of unknown size was allocated before the profiling\n")
        os.write(2, b"a real warning\n")
        print("from python", file=sys.stderr)
    # (pytest's sys.stderr is not fd 2, so the Python line may come out first here)
    assert sorted(capfd.readouterr().err.splitlines()) == ["a real warning", "from python"]


def test_bench_modules_prints_nothing_on_stderr(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import attnlab

    src = str(Path(attnlab.__file__).parents[1])  # this attnlab, from another working directory
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "attnlab.cli", "bench", "modules", "--modules", "se", "--shapes",
                          "8x8x8", "--batch", "2", "--repeats", "1", "--out", ""], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0 and res.stderr == "" and "se (naive)" in res.stdout
    assert not any(tmp_path.iterdir())  # --out '': no file written
