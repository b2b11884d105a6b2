"""The data benchmark behind ``attnlab bench data`` and ``benchmarks/data.py``: generation speed of Cluttered
Fashion-MNIST (canvases/s), from the real Fashion-MNIST files.

Times the pure generator (``generate_cluttered``: layout, composition, boxes, masks) on the official test
split's 10000 items, single-threaded and with torch's default thread count (paired, interleaved rounds,
median), then the dataset class on that split with an empty cache (read IDX + generate + write the cache)
and with a warm one (load + validate). Skips, with a message, when the Fashion-MNIST files are missing.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..benchtools import format_table, load_average, time_paired
from ..data import ClutteredFashionMNIST, DataFileNotFoundError, generate_cluttered, load_fashion_mnist
from ..fileio import check_file
from ._shared import RESULTS_DIR, save_table

__all__ = ["DEFAULT_OUT", "HEADER", "DataResult", "benchmark_data", "results_table", "run"]

#: Where ``run`` writes its table by default (relative to the current directory).
DEFAULT_OUT = RESULTS_DIR / "data.md"
HEADER = ["what", "threads", "seconds", "canvases/s"]


@dataclass
class DataResult:
    """One row of the data benchmark."""

    what: str
    threads: int
    seconds: float  # per generation (median of the rounds) or per dataset construction (one run)
    canvases_per_s: float


def _generate(items: Tensor, labels: Tensor, n: int, canvas: int, threads: int) -> Callable[[], None]:
    """A zero-argument generation of ``n`` canvases from ``items`` (M, 28, 28) on ``threads`` intra-op threads."""

    def run() -> None:
        torch.set_num_threads(threads)
        generate_cluttered(items, labels, n, canvas, generator=torch.Generator().manual_seed(0))

    return run


def _generator_rows(items: Tensor, labels: Tensor, n: int, canvas: int, repeats: int) -> list[DataResult]:
    """The generator alone, on 1 thread and on torch's default count, in paired rounds."""
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads})
    try:
        times = time_paired({f"{t}": _generate(items, labels, n, canvas, t) for t in thread_counts},
                            repeats=repeats, warmup=1)
    finally:
        torch.set_num_threads(default_threads)
    return [DataResult(f"generate_cluttered, {n} canvases from the test items", t, times.median(f"{t}"),
                       n / times.median(f"{t}")) for t in thread_counts]


def _dataset_rows(root: str | os.PathLike | None, canvas: int) -> list[DataResult]:
    """The dataset class on the test split, built twice in a fresh cache folder: cold, then warm."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for what in ("dataset, test split, empty cache (read IDX + generate + write cache)",
                     "dataset, test split, warm cache (load + validate)"):
            start = time.perf_counter()
            ds = ClutteredFashionMNIST(root, "test", canvas=canvas, cache_dir=cache)
            seconds = time.perf_counter() - start
            rows.append(DataResult(what, torch.get_num_threads(), seconds, len(ds) / seconds))
    return rows


def benchmark_data(n: int = 10000, canvas: int = 64, repeats: int = 7,
                   root: str | os.PathLike | None = None) -> list[DataResult]:
    """Time Cluttered Fashion-MNIST generation, then the dataset class with a cold and a warm cache.

    Args:
        n: canvases per generation.
        canvas: canvas side in pixels.
        repeats: paired rounds of the generator (the median is reported).
        root: Fashion-MNIST folder (default: ``$ATTNLAB_FASHION_MNIST_DIR``, else
            ``/usr/share/datasets/fashion-mnist``).

    Raises:
        DataFileNotFoundError: the Fashion-MNIST files are missing.
    """
    items, labels = load_fashion_mnist(root, "test")
    return _generator_rows(items, labels, n, canvas, repeats) + _dataset_rows(root, canvas)


def results_table(results: list[DataResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows for printing or saving."""
    return HEADER, [[r.what, r.threads, r.seconds, r.canvases_per_s] for r in results]


def run(out: str | os.PathLike | None = DEFAULT_OUT, command: str = "attnlab bench data", *, n: int = 10000,
        canvas: int = 64, repeats: int = 7, root: str | os.PathLike | None = None,
        missing_ok: bool = True) -> list[DataResult]:
    """Run :func:`benchmark_data`, print the table and save it to ``out`` (Markdown; None or "" to skip) with the
    exact command, the machine and its load. Prints why and returns ``[]`` when the files are missing, unless
    ``missing_ok`` is False (``attnlab bench data --data-root DIR``: a folder the user named must hold them).

    Raises:
        DataFileNotFoundError: the files are missing and ``missing_ok`` is False.
    """
    if out:
        check_file(out, "the results file (--out)")
    load = load_average()
    try:
        results = benchmark_data(n, canvas, repeats, root)
    except DataFileNotFoundError as e:
        if not missing_ok:
            raise
        print(f"skipped: {e}")
        return []
    header, rows = results_table(results)
    print(format_table(header, rows))
    preamble = (f"Command: `{command}`\n\n"
                f"Canvas {canvas}x{canvas}, 4 fragments of 9x9 kept out of the object's box; torch "
                f"{torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 1-minute "
                f"load average {load:.1f} at the start. Generation rows: median of {repeats} paired, "
                f"interleaved rounds; dataset rows: one run each. When the load exceeds the CPU count, torch's "
                f"intra-op threads wait for each other at every operation: read the 1-thread row as the speed "
                f"of the generator itself.")
    save_table(out, "Cluttered Fashion-MNIST generation speed", preamble, header, rows)
    return results
