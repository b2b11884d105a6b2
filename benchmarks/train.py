"""Test accuracy after a stated budget and seconds per epoch of one training run (re-runnable).

    python benchmarks/train.py [--model resnet20] [--dataset fashion-mnist] [--epochs 20] [--device cuda]

The same as `attnlab bench train` (flags and defaults: `attnlab bench train --help`): trains into
runs/bench-train-... (resumed when interrupted, reused when finished), prints the figures and writes
benchmarks/results/train-DATASET-MODEL[-ATTENTION]-DEVICE.md, both under the current directory.
Defaults: ResNet-20 on Fashion-MNIST, 20 epochs, batch 128, SGD lr 0.1 with 1 warm-up epoch and cosine decay,
random crop (pad 2) and horizontal flips, channels_last.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "train", *sys.argv[1:]]))
