"""Speed and memory of every CAM method against captum and torchcam (re-runnable).

    python benchmarks/cam.py [--repeats 9] [--methods gradcam,scorecam] [--configs resnet20:64:layer3:16]

Prints the tables and writes benchmarks/results/cam.md; the same as `attnlab bench cam`.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "cam", *sys.argv[1:]]))
