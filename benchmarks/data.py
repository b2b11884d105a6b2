"""Generation speed of Cluttered Fashion-MNIST (canvases/s), from the real Fashion-MNIST files (re-runnable).

    python benchmarks/data.py [--n 10000] [--canvas 64] [--repeats 7] [--data-root DIR]

The same as `attnlab bench data` (flags and defaults: `attnlab bench data --help`): times the generator on
1 thread and on torch's default count, then the dataset class with an empty and a warm cache; prints the table
and writes benchmarks/results/data.md under the current directory. Skips, with a message, when the
Fashion-MNIST files are missing.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "data", *sys.argv[1:]]))
