"""Seconds of the five localisation metrics of the study on N maps, today's code against the reference (re-runnable).

    python benchmarks/scoring.py [--n 10000] [--size 64] [--device cpu] [--repeats 3] [--reference PATH]

The same as `attnlab bench scoring` (flags and defaults: `attnlab bench scoring --help`): times energy pointing
game, pointing game, box IoU, MaxBoxAccV2 and PxAP as `score_maps` calls them, side by side with the frozen
reference (tests/metrics/reference_scoring.py); prints the table and writes
benchmarks/results/scoring-<device>.md under the current directory.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "scoring", *sys.argv[1:]]))
