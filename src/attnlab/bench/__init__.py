"""Timing, memory, FLOP and bandwidth helpers shared by ``benchmarks/`` and ``attnlab bench``.

Floor 1: imports nothing from the rest of attnlab.
"""

from .flops import count_flops
from .machine import machine_summary
from .memory import MemoryStats, peak_memory
from .table import format_table, write_markdown
from .timing import PairedTimes, time_paired

__all__ = ["MemoryStats", "PairedTimes", "count_flops", "machine_summary", "format_table", "peak_memory", "time_paired",
           "write_markdown"]
