"""Speed and memory of every attention module (re-runnable): see `attnlab bench modules --help`.

    python benchmarks/modules.py [--repeats 7] [--modules se,cbam] [--shapes 256x28x28]

Prints the table and writes benchmarks/results/modules.md.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "modules", *sys.argv[1:]]))
