"""The runner behind ``attnlab bench jobs`` and ``benchmarks/jobs.py``: how a study's runs share a CPU.

Trains the same runs (the quick preset's settings, 1 epoch on the first ``limit_train`` canvases) three ways,
interleaved round by round (a burst of load from elsewhere hits each way of a round alike), each round into
fresh folders, and reports the median wall time per way and its ratio to a serial study with every core per run:

- serial, every core per run: ``--jobs 1``, each run with as many torch threads as the machine has cores;
- serial, 1 thread per run: ``--jobs 1`` with the thread count the parallel study uses;
- processes: ``--jobs <cores>``, each run in its own process with 1 thread (the default of ``attnlab study`` on a
  CPU when the study has at least as many runs as the machine has cores).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..benchtools import load_average, machine_summary, write_markdown
from ..fileio import check_file
from ..study.executor import RunJob, train_runs
from ..study.presets import get_preset, parse_variants
from ..study.results import variant_name

__all__ = ["DEFAULT_OUT", "run"]

#: Where ``run`` writes its table by default (relative to the current directory).
DEFAULT_OUT = Path("benchmarks") / "results" / "jobs.md"


def _ways(cores: int) -> dict[str, tuple[int, int]]:
    """Way -> (runs at once, threads per run)."""
    return {f"serial, {cores} threads per run (--jobs 1)": (1, cores), "serial, 1 thread per run (--jobs 1)": (1, 1),
            f"{cores} processes, 1 thread each (--jobs {cores})": (cores, 1)}


def run(out: str | os.PathLike | None = DEFAULT_OUT, command: str = "attnlab bench jobs", limit_train: int = 1500,
        rounds: int = 2, models: Sequence[str] = ("vanilla", "se", "cbam", "eca")) -> dict[str, list[float]]:
    """Measure, print the table and write it to ``out`` ('' or None: no file). Returns way -> seconds per round."""
    if out:
        check_file(out, "the results file (--out)")
    cores = os.cpu_count() or 1
    base = replace(get_preset("quick").train, epochs=1, limit_train=limit_train, limit_test=200, device="cpu")
    variants = parse_variants(models)
    seconds: dict[str, list[float]] = {name: [] for name in _ways(cores)}
    loads = []
    for r in range(rounds):
        for name, (jobs, threads) in _ways(cores).items():
            with tempfile.TemporaryDirectory() as tmp:
                runs = [RunJob(replace(base, attention=a, num_threads=threads), Path(tmp) / variant_name(a),
                               f"[{variant_name(a)}]") for a in variants]
                t0 = time.perf_counter()
                train_runs(runs, jobs_at_once=jobs, progress=False, log=lambda _: None)
                seconds[name].append(time.perf_counter() - t0)
            loads.append(load_average())
            print(f"round {r + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    serial = seconds[next(iter(seconds))]
    rows = [[name, f"{statistics.median(s):.1f}",
             f"{statistics.median(a / b for a, b in zip(s, serial, strict=True)):.2f}",
             " ".join(f"{x:.0f}" for x in s)] for name, s in seconds.items()]
    preamble = (f"Command: `{command}`: {len(variants)} runs of the quick preset's training (resnet20 on "
                f"cluttered-fashion-mnist 64x64, batch {base.batch_size}, 1 epoch on {limit_train} canvases, 200 test "
                "images), each way into fresh folders, interleaved round by round; wall time including process "
                f"start-up. Machine: {machine_summary()}, {cores} cores; 1-minute load average during the rounds "
                f"{min(loads):.1f} to {max(loads):.1f} (compare the ratios, taken within each round).")
    header = ["way", "median s", "time / serial (all cores)", "each round, s"]
    if out:
        write_markdown(out, "A study's runs on a CPU: serial or in processes", preamble, header, rows)
    print(preamble + "\n" + "\n".join(" | ".join(r) for r in rows))
    return seconds
