"""How a study's runs share a CPU: one after another, or several processes at once (re-runnable).

    python benchmarks/study_jobs.py [--limit-train 1500] [--rounds 2] [--models vanilla se cbam eca]

Trains the same runs (the quick preset's settings, 1 epoch on the first --limit-train canvases) three ways,
interleaved round by round (paired: a burst of load from elsewhere hits each way of a round alike), each round
into fresh folders, and reports the median wall time per way and its ratio to the serial study of today:

- serial, every core per run: ``--jobs 1``, each run with as many torch threads as the machine has cores;
- serial, 1 thread per run: ``--jobs 1`` with the thread count the parallel study uses;
- processes: ``--jobs <cores>``, each run in its own process with 1 thread (the default of ``attnlab study``
  on a CPU when the study has at least as many runs as the machine has cores).

Writes benchmarks/results/study-jobs-cpu.md.
"""

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from attnlab.benchtools import load_average, machine_summary, write_markdown
from attnlab.study import get_preset, parse_variants, variant_name
from attnlab.study.executor import RunJob, train_runs


def _jobs(base, variants, folder: Path, threads: int) -> list[RunJob]:
    cfg = replace(base, device="cpu", num_threads=threads)
    return [RunJob(replace(cfg, attention=a), folder / variant_name(a), f"[{variant_name(a)}]") for a in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-train", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["vanilla", "se", "cbam", "eca"])
    parser.add_argument("--out", default="benchmarks/results/study-jobs-cpu.md")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    base = replace(get_preset("quick").train, epochs=1, limit_train=args.limit_train, limit_test=200)
    variants = parse_variants(args.models)
    ways = {f"serial, {cores} threads per run (--jobs 1)": (1, cores),
            "serial, 1 thread per run (--jobs 1)": (1, 1),
            f"{cores} processes, 1 thread each (--jobs {cores})": (cores, 1)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    loads = []
    for r in range(args.rounds):
        for name, (jobs, threads) in ways.items():
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                train_runs(_jobs(base, variants, Path(tmp), threads), jobs_at_once=jobs, progress=False,
                           log=lambda _: None)
                seconds[name].append(time.perf_counter() - t0)
            loads.append(load_average())
            print(f"round {r + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    serial = next(iter(ways))
    rows = [[name, f"{statistics.median(s):.1f}",
             f"{statistics.median(a / b for a, b in zip(s, seconds[serial], strict=True)):.2f}",
             " ".join(f"{x:.0f}" for x in s)] for name, s in seconds.items()]
    preamble = (f"`python benchmarks/study_jobs.py --limit-train {args.limit_train} --rounds {args.rounds} --models "
                f"{' '.join(args.models)}`: {len(variants)} runs of the quick preset's training (resnet20 on "
                f"cluttered-fashion-mnist 64x64, batch {base.batch_size}, 1 epoch on {args.limit_train} canvases, 200 "
                f"test images), each way into fresh folders, interleaved round by round; wall time including process "
                f"start-up. Machine: {machine_summary()}, {cores} cores; 1-minute load average during the rounds "
                f"{min(loads):.1f} to {max(loads):.1f} (a machine shared with other jobs: compare the ratios, which "
                "are taken within each round).")
    path = write_markdown(args.out, "A study's runs on a CPU: serial or in processes", preamble,
                          ["way", "median s", "time / serial (all cores)", "each round, s"], rows)
    print(open(path).read())


if __name__ == "__main__":
    main()
