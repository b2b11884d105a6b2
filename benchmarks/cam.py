"""Speed and memory of every CAM method against captum and torchcam (re-runnable).

    python benchmarks/cam.py [--repeats 9] [--methods gradcam,scorecam] [--configs resnet20:64:layer3:16]

The same as `attnlab bench cam` (flags and defaults: `attnlab bench cam --help`): prints the tables and
writes benchmarks/results/cam.md under the current directory.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "cam", *sys.argv[1:]]))
