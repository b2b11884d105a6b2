"""Measuring instruments for the benchmarks: paired timing, peak memory, FLOP counts, tables, machine line.

Floor 1: imports nothing from the rest of attnlab. The benchmark runners that use these tools to measure
the library (modules, networks, CAM methods, training, data generation) are :mod:`attnlab.benchmarks`, on
the top floor.
"""

from .flops import count_flops
from .machine import load_average, machine_summary
from .memory import MemoryStats, peak_memory
from .table import format_table, markdown_table, write_markdown
from .timing import PairedTimes, time_paired

__all__ = ["MemoryStats", "PairedTimes", "count_flops", "format_table", "load_average", "machine_summary",
           "markdown_table", "peak_memory", "time_paired", "write_markdown"]
