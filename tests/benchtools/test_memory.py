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
