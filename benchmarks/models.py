"""Speed, memory, parameters and GMACs of the ResNets with each attention module (re-runnable).

    python benchmarks/models.py [--repeats 5] [--models resnet50,resnet20] [--attention se,cbam,eca]

Prints the table and writes benchmarks/results/models.md. The same runner is
``attnlab.models.benchmark.run`` (and ``attnlab bench models``).
"""

import argparse
import shlex
import sys

from attnlab.models import benchmark


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,resnet20", help="comma-separated network names")
    p.add_argument("--attention", default=None, help="comma-separated attention names (default: all registered)")
    p.add_argument("--infer-batch", type=int, default=16)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5, help="paired rounds per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="rounds run first and discarded")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/models.md", help="Markdown results file ('' to skip)")
    args = p.parse_args(argv)
    split = lambda s: [v.strip() for v in s.split(",") if v.strip()]  # noqa: E731
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/models.py " + " ".join(shlex.quote(a) for a in given)
    benchmark.run(out=args.out or None, command=command.strip(), models=split(args.models),
                  attentions=None if args.attention is None else split(args.attention),
                  infer_batch=args.infer_batch, train_batch=args.train_batch, repeats=args.repeats,
                  warmup=args.warmup, device=args.device, memory=not args.no_memory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
