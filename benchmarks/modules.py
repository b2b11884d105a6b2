"""Speed and memory of every attention module (re-runnable).

    python benchmarks/modules.py [--repeats 7] [--modules se,cbam] [--shapes 256x28x28]

The same as `attnlab bench modules` (flags and defaults: `attnlab bench modules --help`): prints the table
and writes benchmarks/results/modules.md under the current directory.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "modules", *sys.argv[1:]]))
