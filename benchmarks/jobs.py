"""How a study's runs share a CPU: serial, or several processes at once (re-runnable).

    python benchmarks/jobs.py [--limit-train 1500] [--rounds 2] [--models vanilla se cbam eca]

The same as `attnlab bench jobs` (flags and defaults: `attnlab bench jobs --help`): prints the table and
writes benchmarks/results/jobs.md under the current directory.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "jobs", *sys.argv[1:]]))
