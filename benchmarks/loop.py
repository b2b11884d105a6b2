"""The training loop's images/s against the bare training step's, batches made on the host and on the device.

    python benchmarks/loop.py [--attention none,cbam] [--batch 128,1024] [--images N] [--device cuda]

The same as `attnlab bench loop` (flags and defaults: `attnlab bench loop --help`): ResNet-20 and ResNet-20 +
CBAM on Cluttered Fashion-MNIST, batch 128, bf16 on CUDA, channels_last; paired, interleaved rounds; prints the
table and writes benchmarks/results/loop-DEVICE.md under the current directory. A CPU run of the defaults (128
images per epoch) takes a minute or two; `--repeats 2 --warmup 0` about half a minute.
"""

import sys

from attnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "loop", *sys.argv[1:]]))
