"""Speed and memory of every CAM method against captum and torchcam (re-runnable).

    python benchmarks/cam.py [--repeats 9] [--methods gradcam,scorecam] [--configs resnet20:64:layer3:16]

Prints the tables and writes benchmarks/results/cam.md. ``attnlab bench cam`` runs the same function
(``attnlab.cam.benchmark.run``) once the CLI wires it.
"""

import argparse
import shlex
import sys

from attnlab.cam import list_cams
from attnlab.cam.benchmark import CONFIGS, CAMConfig, run


def _config(text: str) -> CAMConfig:
    try:
        model, size, layer, images = text.split(":")
        return CAMConfig(model, int(size), layer, int(images))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a config is MODEL:SIZE:LAYER:SCORE_IMAGES, got {text!r}") from err


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=None, help=f"comma-separated, from {','.join(list_cams())} (default: all)")
    p.add_argument("--configs", type=_config, nargs="+", default=None,
                   help="MODEL:SIZE:LAYER:SCORE_IMAGES (default: resnet18:224:layer4:2 resnet20:64:layer3:16)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=9, help="paired rounds for the one-pass methods")
    p.add_argument("--score-batch-size", type=int, default=64, help="masked inputs per forward, both Score-CAMs")
    p.add_argument("--top-k-fraction", type=float, default=0.125, help="channels kept by approximate Score-CAM")
    p.add_argument("--no-baselines", action="store_true", help="skip captum and torchcam")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/cam.md", help="Markdown results file ('' to skip)")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if methods:
        unknown = sorted(set(methods) - set(list_cams()))
        if unknown:
            p.error(f"unknown methods {unknown}; valid: {', '.join(list_cams())}")
    command = "python benchmarks/cam.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    run(out=args.out or None, command=command.strip(), configs=args.configs or CONFIGS, batch=args.batch,
        methods=methods, repeats=args.repeats, score_batch_size=args.score_batch_size,
        top_k_fraction=args.top_k_fraction, baselines=not args.no_baselines, device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
