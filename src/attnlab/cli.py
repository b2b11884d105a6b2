"""The ``attnlab`` command line: parse arguments, call the library, print. No logic of its own.

Subcommands are registered in ``COMMANDS`` (name -> (add_arguments, run)).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "COMMANDS"]


def _add_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", type=int, default=256, help="C for the parameter count column (default 256)")


def _run_list(args: argparse.Namespace) -> int:
    from .attention import create_attention, get_attention_class, list_attention
    from .bench import format_table

    rows = []
    for name in list_attention():
        cls = get_attention_class(name)
        n = sum(p.numel() for p in create_attention(name, args.channels).parameters())
        rows.append([name, cls.__name__, getattr(cls, "param_formula", "?"), n, getattr(cls, "paper", "?")])
    print(format_table(["name", "class", "parameters", f"at C={args.channels}", "paper"], rows))
    return 0


def _shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a shape is CxHxW, e.g. 256x28x28, got {text!r}") from err
    return c, h, w


def _add_bench(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    m = sub.add_parser("modules", help="speed and memory of every attention module against a copy and the seed's CBAM")
    m.add_argument("--modules", default=None, help="comma-separated registry names (default: all)")
    m.add_argument("--shapes", type=_shape, nargs="+", default=None,
                   help="CxHxW shapes (default: the ResNet-50 ones 64x56x56 256x28x28 512x14x14 2048x7x7)")
    m.add_argument("--batch", type=int, default=32)
    m.add_argument("--repeats", type=int, default=7, help="paired rounds per measurement (median reported)")
    m.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    m.add_argument("--device", default="cpu")
    m.add_argument("--out", default="benchmarks/results/modules.md", help="Markdown results file ('' to skip)")


def _run_bench(args: argparse.Namespace) -> int:
    from .attention import benchmark as module_bench
    from .attention import list_attention

    names = None
    if args.modules:
        names = [n.strip() for n in args.modules.split(",") if n.strip()]
        known = set(list_attention())
        for n in names:
            if n not in known:
                from .attention import get_attention_class

                get_attention_class(n)  # raises the registry's ValueError with suggestions
    kwargs = dict(names=names, batch=args.batch, repeats=args.repeats, backward=not args.no_backward,
                  device=args.device)
    if args.shapes:
        kwargs["shapes"] = args.shapes
    command = "attnlab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "attnlab bench modules"
    module_bench.run(out=args.out or None, command=command, **kwargs)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list the attention modules with their parameter formulas and papers", _add_list, _run_list),
    "bench": ("benchmark modules (more targets in later versions)", _add_bench, _run_bench),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="attnlab", description="Plug-and-play attention for CNNs.")
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``attnlab`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"attnlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
