"""Speed, memory, parameters and GMACs of the ResNets with each attention module (re-runnable).

    python benchmarks/models.py [--repeats 5] [--models resnet50,resnet20] [--attention se,cbam,eca]

The same as `attnlab bench models` (flags and defaults: `attnlab bench models --help`): prints the table
and writes benchmarks/results/models.md under the current directory.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "models", *sys.argv[1:]]))
