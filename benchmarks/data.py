"""Generation speed of Cluttered Fashion-MNIST (canvases/s), from the real Fashion-MNIST files (re-runnable).

    python benchmarks/data.py [--n 10000] [--canvas 64] [--repeats 7] [--root DIR]

Times the pure generator (``generate_cluttered``: layout, composition, boxes, masks) on the official test
split's 10000 items, single-threaded and with torch's default thread count (paired, interleaved rounds,
median), then the dataset class on that split with an empty cache (read IDX + generate + write the cache)
and with a warm one (load + validate). Prints the table and writes benchmarks/results/data.md.
Skips, with a message, when the Fashion-MNIST files are missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from attnlab.benchtools import format_table, time_paired, write_markdown
from attnlab.data import ClutteredFashionMNIST, DataFileNotFoundError, generate_cluttered, load_fashion_mnist

RESULTS = Path(__file__).resolve().parent / "results" / "data.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000, help="canvases per generation (default 10000)")
    p.add_argument("--canvas", type=int, default=64, help="canvas side (default 64)")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    p.add_argument("--root", default=None, help="Fashion-MNIST folder (default: $ATTNLAB_FASHION_MNIST_DIR, "
                                                "else /usr/share/datasets/fashion-mnist)")
    p.add_argument("--out", default=str(RESULTS), help="Markdown results file")
    args = p.parse_args(argv)

    try:
        items, labels = load_fashion_mnist(args.root, "test")
    except DataFileNotFoundError as e:
        print(f"skipped: {e}")
        return 0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads})

    def generate(threads: int):
        def run() -> None:
            torch.set_num_threads(threads)
            generate_cluttered(items, labels, args.n, args.canvas, generator=torch.Generator().manual_seed(0))
        return run

    times = time_paired({f"{t}": generate(t) for t in thread_counts}, repeats=args.repeats, warmup=1)
    torch.set_num_threads(default_threads)
    rows = [[f"generate_cluttered, {args.n} canvases from the test items", t, times.median(f"{t}"),
             args.n / times.median(f"{t}")] for t in thread_counts]

    with tempfile.TemporaryDirectory() as cache:
        for label in ("dataset, test split, empty cache (read IDX + generate + write cache)",
                      "dataset, test split, warm cache (load + validate)"):
            start = time.perf_counter()
            ds = ClutteredFashionMNIST(args.root, "test", canvas=args.canvas, cache_dir=cache)
            seconds = time.perf_counter() - start
            rows.append([label, default_threads, seconds, len(ds) / seconds])

    header = ["what", "threads", "seconds", "canvases/s"]
    print(format_table(header, rows))
    command = "python benchmarks/data.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    preamble = (f"Command: `{command}`\n\n"
                f"Canvas {args.canvas}x{args.canvas}, 4 fragments of 9x9 kept out of the object's box; torch "
                f"{torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, 1-minute "
                f"load average {load:.1f} at the start. Generation rows: median of {args.repeats} paired, "
                f"interleaved rounds; dataset rows: one run each. When the load exceeds the CPU count, torch's "
                f"intra-op threads wait for each other at every operation: read the 1-thread row as the speed "
                f"of the generator itself.")
    write_markdown(args.out, "Cluttered Fashion-MNIST generation speed", preamble, header, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
