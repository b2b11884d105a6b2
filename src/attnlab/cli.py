"""The ``attnlab`` command line: parse arguments, call the library, print. No logic of its own.

Subcommands are registered in ``COMMANDS`` (name -> (help, add_arguments, run)); each has examples in its
``--help`` (``EXAMPLES``).

How it ends (:func:`main`):

* 0 on success;
* 2 with one line ``attnlab: error: ...`` on stderr, and no traceback, for a mistake of the user's: a bad
  argument (argparse's errors are made one line too), a ``ValueError`` from the library (attnlab's rule: every
  error a user can cause, a bad value, name, file or checkpoint, is a ``ValueError`` or a subclass such as
  ``CheckpointError`` and ``DataError``, naming what is wrong and the fix), an ``OSError`` from the file
  system (the line names the path), a diverged run (``FloatingPointError``) or a device out of memory;
* 130 with ``attnlab: interrupted[: how to continue]`` on Ctrl-C;
* anything else (``TypeError``, ``KeyError``, ``RuntimeError``, ...) is a bug in attnlab and keeps its
  traceback. ``ATTNLAB_TRACEBACK=1`` prints the traceback of a user error too.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import inspect
import json
import math
import os
import re
import shlex
import sys
import textwrap
import traceback
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import Field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .benchmarks.cam import CAMConfig

__all__ = ["main", "COMMANDS", "EXAMPLES", "build_parser"]


def _add_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", type=_positive_int, default=256, help="C for the parameter count column")


def _run_list(args: argparse.Namespace) -> int:
    from .attention import create_attention, get_attention_class, list_attention
    from .benchtools import format_table

    rows = []
    for name in list_attention():
        cls = get_attention_class(name)
        n = sum(p.numel() for p in create_attention(name, args.channels).parameters())
        rows.append([name, cls.__name__, getattr(cls, "param_formula", "?"), n, getattr(cls, "paper", "?")])
    print(format_table(["name", "class", "parameters", f"at C={args.channels}", "paper"], rows))
    return 0


def _shape(text: str) -> tuple[int, int, int]:
    """``CxHxW`` text -> (C, H, W), each >= 1."""
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a shape is CxHxW, e.g. 256x28x28, got {text!r}") from err
    if min(c, h, w) < 1:
        raise argparse.ArgumentTypeError(f"a shape's C, H and W are >= 1, got {text!r}")
    return c, h, w


def _whole(text: str, low: int) -> int:
    """``text`` as a whole number >= ``low``, else an argparse error saying so."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """A count: a whole number >= 1 (0 and negative numbers never mean "all")."""
    return _whole(text, 1)


def _count_or_zero(text: str) -> int:
    """A whole number >= 0 (seeds, warm-up rounds)."""
    return _whole(text, 0)


def _fraction(text: str) -> float:
    """A finite number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value


def _device(text: str) -> str:
    """A device name this machine has (auto, cpu, cuda, cuda:N, mps), in canonical form."""
    from .train.distributed import check_device, pick_device

    try:
        pick_device(text)
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _present_device(text: str) -> str:
    """The device ``text`` names, with ``auto`` resolved (cpu or cuda): the benchmarks take a concrete device."""
    from .train.distributed import pick_device

    return str(pick_device(_device(text)))


def _cam_method(text: str) -> str:
    """A CAM method's registry name (the closest is suggested for a typo)."""
    from .cam import cam_name

    try:
        return cam_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


class _DefaultsHelp(argparse.HelpFormatter):
    """Ends each flag's help with its default, ``(default: 7)``, unless the help already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return f"{text} (default: %(default)s)".strip()

    def _split_lines(self, text: str, width: int) -> list[str]:
        """Wrap at spaces only, so that a default path like ``train-DATASET-MODEL.md`` stays whole."""
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """Wrap each paragraph of a description or epilog, but keep indented lines (example commands) whole."""
        out: list[str] = []
        for line in text.splitlines():
            if line.startswith(" ") or not line.strip():
                out.append(indent + line)
            else:
                out += textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent,
                                     break_on_hyphens=False, break_long_words=False)
        return "\n".join(out)


class UsageError(Exception):
    """A command line argparse refuses; :func:`main` prints it as one ``attnlab: error:`` line."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command's ``--help`` (no usage block), and whose
    help shows every default and keeps the examples' lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:  # a typo in a subcommand or choice: suggest the closest, as the registries do
            from .names import suggest

            close = suggest(choice[1], re.findall(r"'([^']*)'", choice[2]))
            message += f"; did you mean {close!r}?" if close else ""
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _defaults(fn: Callable[..., object]) -> dict[str, Any]:
    """Each parameter of ``fn`` that has a default, with it: a runner's signature is where its defaults live."""
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def _add_bench_flags(p: argparse.ArgumentParser, takes: dict[str, Any], out: str | os.PathLike, *,
                     out_named_after_run: bool = False, batch_help: str = "images per call",
                     repeats_help: str = "paired rounds per measurement (median reported)",
                     channels_last_help: str = "") -> None:
    """The flags the bench targets share: ``--batch``, ``--repeats``, ``--channels-last`` and ``--device``, each
    added when the target's runner takes it (``takes``: its parameters' defaults, from :func:`_defaults`), then
    ``--out``, whose default ``out`` is a path relative to the current directory (``out_named_after_run``: a
    pattern the runner fills in)."""
    if "batch" in takes:
        p.add_argument("--batch", type=_positive_int, default=takes["batch"], help=batch_help)
    if "repeats" in takes:
        p.add_argument("--repeats", type=_positive_int, default=takes["repeats"], help=repeats_help)
    if "channels_last" in takes:
        p.add_argument("--channels-last", action="store_true", default=takes["channels_last"],
                       help=channels_last_help)
    if "device" in takes:
        p.add_argument("--device", type=_present_device, default=takes["device"],
                       help="cpu or a CUDA device (cuda, cuda:N); auto: CUDA when there is one")
    if "amp" in takes:
        p.add_argument("--amp", choices=["bfloat16", "float16"], default=None,
                       help="run under autocast to this dtype (default: none, float32)")
    if "timm" in takes:
        p.add_argument("--timm", action="store_true", help="also measure timm's SE, ECA and CBAM, where timm imports")
    if out_named_after_run:
        p.add_argument("--out", default=None, help=f"Markdown results file (default: {out}, under the current "
                                                   "directory)")
    else:
        p.add_argument("--out", default=str(out), help=f"Markdown results file, '' to skip (default: {out}, under "
                                                       "the current directory)")


def _add_bench_modules(p: argparse.ArgumentParser) -> None:
    from .benchmarks import modules as runner

    shapes = " ".join(f"{c}x{h}x{w}" for c, h, w in runner.RESNET50_SHAPES)
    p.add_argument("--modules", default=None, help="comma-separated registry names (default: all registered)")
    p.add_argument("--shapes", type=_shape, nargs="+", default=None,
                   help=f"CxHxW shapes (default: the ResNet-50 stages', {shapes})")
    p.add_argument("--no-backward", action="store_true", help="time the forward pass only")
    _add_bench_flags(p, _defaults(runner.benchmark_modules), runner.DEFAULT_OUT,
                     batch_help="N of every (N, C, H, W) input", channels_last_help="inputs in channels_last memory "
                                                                                   "format")


def _add_bench_models(p: argparse.ArgumentParser) -> None:
    from .benchmarks import models as runner

    takes = _defaults(runner.benchmark_models)
    p.add_argument("--models", default=",".join(runner.MODELS), help="comma-separated network names")
    p.add_argument("--attention", default=None,
                   help="comma-separated attention names (default: all registered)")
    p.add_argument("--infer-batch", type=_positive_int, default=takes["infer_batch"], help="images per inference call")
    p.add_argument("--train-batch", type=_positive_int, default=takes["train_batch"], help="images per training step")
    p.add_argument("--warmup", type=_count_or_zero, default=takes["warmup"], help="rounds run first and discarded")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    _add_bench_flags(p, takes, runner.DEFAULT_OUT, channels_last_help="networks and inputs in channels_last memory "
                                                                      "format")


def _add_bench_cam(p: argparse.ArgumentParser) -> None:
    from .benchmarks import cam as runner

    takes = _defaults(runner.benchmark_cams)
    p.add_argument("--methods", default=None, help="comma-separated CAM methods (default: all)")
    p.add_argument("--configs", type=_cam_config, nargs="+", default=None,
                   help=f"MODEL:SIZE:LAYER:SCORE_IMAGES (default: {' '.join(map(str, runner.CONFIGS))})")
    p.add_argument("--score-batch-size", type=_positive_int, default=takes["score_batch_size"],
                   help="masked inputs per forward, both Score-CAMs")
    p.add_argument("--top-k-fraction", type=_fraction, default=takes["top_k_fraction"],
                   help="channels kept by approximate Score-CAM")
    p.add_argument("--no-baselines", action="store_true", help="skip captum and torchcam")
    _add_bench_flags(p, takes, runner.DEFAULT_OUT, batch_help="images per call for all but Score-CAM",
                     repeats_help="paired rounds for the one-pass methods (median reported)")


def _add_bench_train(p: argparse.ArgumentParser) -> None:
    from .benchmarks import train as runner

    _add_train(p, run_dir=False)
    p.set_defaults(epochs=20, channels_last=True)  # the recorded ResNet-20 / Fashion-MNIST figure
    p.add_argument("--run", default=None, help="run directory, resumed or reused if it exists (default: "
                                               f"{runner.RUN_DIR_PATTERN}, under the current directory)")
    p.add_argument("--note", default="", help="a sentence for the results file (how the run was made, the load; "
                                              "default: none)")
    _add_bench_flags(p, {}, runner.RESULTS_PATTERN, out_named_after_run=True)


def _add_bench_data(p: argparse.ArgumentParser) -> None:
    from .benchmarks import data as runner

    takes = _defaults(runner.run)
    p.add_argument("--n", type=_positive_int, default=takes["n"], help="canvases per generation")
    p.add_argument("--canvas", type=_positive_int, default=takes["canvas"], help="canvas side in pixels")
    p.add_argument("--data-root", "--root", dest="root", default=None, metavar="DIR",
                   help="Fashion-MNIST folder (default: $ATTNLAB_FASHION_MNIST_DIR, else "
                        "/usr/share/datasets/fashion-mnist)")
    _add_bench_flags(p, takes, runner.DEFAULT_OUT, repeats_help="paired rounds of the generator (median reported)")


def _positive_ints(text: str) -> list[int]:
    """A comma-separated list of whole numbers >= 1 (``128,1024``)."""
    return [_positive_int(v.strip()) for v in text.split(",") if v.strip()] or [_positive_int(text)]


def _add_bench_loop(p: argparse.ArgumentParser) -> None:
    from .benchmarks import loop as runner

    takes = _defaults(runner.benchmark_loop)
    images = ", ".join(f"{n:,} on {kind}" for kind, n in runner.DEFAULT_IMAGES.items())
    p.add_argument("--attention", default="none,cbam", help="comma-separated attention names, none for the vanilla "
                                                           "ResNet-20")
    p.add_argument("--batch", type=_positive_ints, default=",".join(map(str, takes["batches"])), metavar="N[,N...]",
                   help="batch sizes (e.g. 128,1024)")
    p.add_argument("--images", type=_positive_int, default=None,
                   help=f"training images per measured epoch (default: {images}; a CPU run of the defaults takes a "
                        "minute or two)")
    p.add_argument("--canvas", type=_positive_int, default=takes["canvas"], help="canvas side in pixels")
    p.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default=takes["amp"],
                   help="mixed precision, as attnlab train's --amp (auto: bf16 on CUDA, off on the CPU)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="run the model in NCHW (default: channels_last)")
    p.add_argument("--warmup", type=_count_or_zero, default=takes["warmup"], help="rounds run first and discarded")
    p.add_argument("--data-root", "--root", dest="root", default=None, metavar="DIR",
                   help="Fashion-MNIST folder (default: $ATTNLAB_FASHION_MNIST_DIR, else "
                        "/usr/share/datasets/fashion-mnist; random canvases, said in the table, where it lacks "
                        "the files)")
    _add_bench_flags(p, {k: takes[k] for k in ("repeats", "device")}, runner.OUT_PATTERN, out_named_after_run=True)


def _add_bench_jobs(p: argparse.ArgumentParser) -> None:
    from .benchmarks import jobs as runner

    takes = _defaults(runner.run)
    p.add_argument("--limit-train", type=_positive_int, default=takes["limit_train"],
                   help="training canvases of each run (1 epoch)")
    p.add_argument("--rounds", type=_positive_int, default=takes["rounds"], help="paired rounds (median reported)")
    p.add_argument("--models", nargs="+", default=list(takes["models"]), metavar="NAME",
                   help="the study's runs, one per model")
    _add_bench_flags(p, {}, runner.DEFAULT_OUT)


def _bench_jobs(args: argparse.Namespace) -> int:
    from .benchmarks import jobs as bench_jobs

    bench_jobs.run(out=args.out, command=_command(), limit_train=args.limit_train, rounds=args.rounds,
                   models=args.models)
    return 0


def _add_bench_scoring(p: argparse.ArgumentParser) -> None:
    from .benchmarks import scoring as runner

    takes = _defaults(runner.run)
    p.add_argument("--n", type=_positive_int, default=takes["n"], help="maps scored")
    p.add_argument("--size", type=_positive_int, default=takes["size"], help="side of each square map in pixels")
    p.add_argument("--reference", default=str(takes["reference"]),
                   help=f"the reference implementation timed beside today's, '' to skip (default: "
                        f"{takes['reference']}, under the current directory)")
    _add_bench_flags(p, takes, runner.RESULTS_PATTERN, out_named_after_run=True,
                     repeats_help="paired rounds of each metric (median reported)")


def _add_bench(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, (help_text, add, _) in _BENCH_TARGETS.items():
        add(sub.add_parser(name, help=help_text, description=help_text, epilog=_examples(f"bench {name}")))


def _cam_config(text: str) -> CAMConfig:
    from .benchmarks.cam import CAMConfig

    try:
        return CAMConfig.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


_ARGV: list[str] = []


def _command() -> str:
    """The command as the user could retype it (the arguments given to :func:`main`)."""
    return "attnlab " + " ".join(shlex.quote(a) for a in _ARGV)


def _run_bench(args: argparse.Namespace) -> int:
    return _BENCH_TARGETS[args.target][2](args)


def _bench_modules(args: argparse.Namespace) -> int:
    from .benchmarks import modules

    modules.run(out=args.out, command=_command(), names=_names(args.modules), shapes=args.shapes, batch=args.batch,
                repeats=args.repeats, backward=not args.no_backward, device=args.device,
                channels_last=args.channels_last, amp=args.amp, timm=args.timm)
    return 0


def _bench_models(args: argparse.Namespace) -> int:
    from .benchmarks import models

    models.run(out=args.out, command=_command(), models=_names(args.models), attentions=_names(args.attention),
               infer_batch=args.infer_batch, train_batch=args.train_batch, repeats=args.repeats, warmup=args.warmup,
               device=args.device, memory=not args.no_memory, channels_last=args.channels_last, amp=args.amp,
               timm=args.timm)
    return 0


def _bench_cam(args: argparse.Namespace) -> int:
    from .benchmarks import cam

    cam.run(out=args.out, command=_command(), configs=args.configs, batch=args.batch, methods=_names(args.methods),
            repeats=args.repeats, score_batch_size=args.score_batch_size, top_k_fraction=args.top_k_fraction,
            baselines=not args.no_baselines, device=args.device)
    return 0


def _bench_train(args: argparse.Namespace) -> int:
    from .benchmarks import train
    from .fileio import check_file
    from .train.distributed import pick_device

    config = _train_config(args)
    if args.out is None:  # the runner names it after the device; checked now, not after the training
        check_file(train.results_path(config, pick_device(config.device).type), "the results file (--out)")
    train.run(config, args.run, args.out, command=_command(), progress=not args.no_progress, note=args.note)
    return 0


def _bench_loop(args: argparse.Namespace) -> int:
    from .benchmarks import loop

    loop.run(out=args.out, command=_command(), attentions=_names(args.attention), batches=args.batch,
             images=args.images, repeats=args.repeats, warmup=args.warmup, device=args.device, amp=args.amp,
             channels_last=args.channels_last, canvas=args.canvas, root=args.root)
    return 0


def _bench_data(args: argparse.Namespace) -> int:
    from .benchmarks import data

    data.run(out=args.out, command=_command(), n=args.n, canvas=args.canvas, repeats=args.repeats, root=args.root,
             missing_ok=args.root is None)  # a folder the user named must hold the files
    return 0


def _bench_scoring(args: argparse.Namespace) -> int:
    from .benchmarks import scoring

    scoring.run(out=args.out, command=_command(), n=args.n, size=args.size, device=args.device,
                repeats=args.repeats, reference=args.reference)
    return 0


#: bench target -> (help, add its arguments, run it); one module of attnlab.benchmarks each.
_BENCH_TARGETS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                                Callable[[argparse.Namespace], int]]] = {
    "modules": ("speed and memory of every attention module against a copy and the seed's CBAM", _add_bench_modules,
                _bench_modules),
    "models": ("ResNet-50 and ResNet-20 with each attention: params, GMACs, throughput, memory", _add_bench_models,
               _bench_models),
    "cam": ("images/s and memory of every CAM method against captum and torchcam", _add_bench_cam, _bench_cam),
    "train": ("test accuracy after a stated budget and seconds per epoch (a full training run)", _add_bench_train,
              _bench_train),
    "data": ("generation speed of Cluttered Fashion-MNIST from the real Fashion-MNIST files", _add_bench_data,
             _bench_data),
    "loop": ("the training loop's images/s against the bare training step's, batches made on the host and on the "
             "device", _add_bench_loop, _bench_loop),
    "jobs": ("a study's runs on a CPU: serial, or in processes at once (attnlab study --jobs)", _add_bench_jobs,
             _bench_jobs),
    "scoring": ("seconds of the five localisation metrics on N maps, today's code against the reference",
                _add_bench_scoring, _bench_scoring),
}


def _add_cam(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="RUN",
                   help="one or more run/checkpoint directories: one column each")
    p.add_argument("--images", required=True, help="a dataset name (its test split), an image file, or a folder")
    p.add_argument("--method", type=_cam_method, default="gradcam",
                   help="CAM method (attnlab.cam.list_cams(): gradcam, gradcampp, xgradcam, hirescam, "
                        "gradcamelementwise, layercam, eigengradcam, finercam, fullgrad, scorecam, ablationcam, "
                        "eigencam, kpcacam, randomcam)")
    p.add_argument("--out", required=True, help="output directory: grid.png and maps.pt")
    p.add_argument("-n", "--num-images", type=_positive_int, default=8, help="images, one row each")
    p.add_argument("--target", choices=["predicted", "label"], default="predicted",
                   help="the class each map explains: the model's prediction or the dataset's label")
    p.add_argument("--aug-smooth", action="store_true",
                   help="test-time augmentation smoothing: maps of flipped and rescaled copies, undone and averaged")
    p.add_argument("--eigen-smooth", action="store_true",
                   help="eigen smoothing: the first principal component of the weighted activations")
    p.add_argument("--device", type=_device, default=None, help="auto, cpu, cuda, cuda:N or mps (default: auto)")


def _run_cam(args: argparse.Namespace) -> int:
    from .fileio import check_directory
    from .study.cam_job import compare_checkpoints

    check_directory(args.out, "the output folder (--out)")
    res = compare_checkpoints(args.checkpoint, args.images, args.out, method=args.method, n=args.num_images,
                              target=args.target, device=args.device, aug_smooth=args.aug_smooth,
                              eigen_smooth=args.eigen_smooth)
    print(f"grid: {res.grid}\nmaps: {res.maps}")
    return 0


def _flag(f: Field) -> str:
    """The command-line flag of a config field: its ``flag`` metadata, else ``--field-name``."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _value_type(annotation: Any) -> type:
    """The value type of a field annotation: ``int | None`` -> int, ``dict[str, Any]`` -> dict."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _value_type(args[0])
    return typing.get_origin(annotation) or annotation


def _add_config_flags(p: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the dataclass ``cls`` (``dest`` = the field name), from the fields' metadata.

    Bool fields are switches (``--flag``, ``--no-flag`` to turn a True default off, or both when
    ``negatable``); dict fields take a JSON object; every help line states the default.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        flag, kind = _flag(f), _value_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = meta["help"].replace("%", "%%")
        if kind is bool:
            if meta.get("negatable"):
                p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                               help=f"{text} (default: %(default)s)")
            elif flag.startswith("--no-"):
                p.add_argument(flag, dest=f.name, action="store_false", default=default,
                               help=f"turn off: {text} (on by default)")
            else:
                p.add_argument(flag, dest=f.name, action="store_true", default=default, help=f"{text} (off by default)")
            continue
        if kind is dict:
            default = json.dumps(default)
        shown = meta.get("default_text", "%(default)s")
        metavar = None if meta.get("choices") else flag[2:].upper().replace("-", "_")
        p.add_argument(flag, dest=f.name, default=default, choices=meta.get("choices"), metavar=metavar,
                       type=str if kind is dict or "parse" in meta else kind, help=f"{text} (default: {shown})")


def _config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The ``cls`` instance that the flags of :func:`_add_config_flags` describe (fields with no flag keep
    their defaults)."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        value = getattr(args, f.name)
        if isinstance(value, str) and "parse" in f.metadata:
            value = f.metadata["parse"](value)
        elif isinstance(value, str) and _value_type(hints[f.name]) is dict:
            value = _json_arg(value, _flag(f))
        values[f.name] = value
    return cls(**values)


def _add_train(p: argparse.ArgumentParser, run_dir: bool = True) -> None:
    """Every ``TrainConfig`` option as a flag (see ``attnlab.train.config``), and the run's own flags."""
    from .train import TrainConfig

    if run_dir:
        p.add_argument("--out", required=True, help="run directory: checkpoints, metrics, summary")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _add_config_flags(p, TrainConfig)
    p.add_argument("--no-progress", action="store_true", help="no progress bar or periodic log lines")


def _json_arg(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag} must be a JSON object, e.g. '{{\"reduction\": 8}}': {err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def _train_config(args: argparse.Namespace):
    """The TrainConfig that the ``train`` arguments describe."""
    from .train import TrainConfig

    return _config_from_args(TrainConfig, args)


def _run_train(args: argparse.Namespace) -> int:
    from .fileio import check_directory
    from .train import train

    config = _train_config(args)
    check_directory(args.out, "the run folder (--out)")
    train(config, args.out, resume=args.resume, progress=not args.no_progress)
    return 0


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint directory")
    p.add_argument("--dataset", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-root", default=None, help="directory of the dataset files (default: the run's, else the "
                                                       "dataset's own default folder)")
    p.add_argument("--split", default="test", choices=["train", "test"], help="the split evaluated")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="images per forward pass")
    p.add_argument("--device", type=_device, default=None, help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--limit", type=_positive_int, default=None, help="evaluate only the first N samples (default: "
                                                                     "all)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .benchtools import format_table
    from .train import evaluate_checkpoint

    result, classes, ckpt = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, split=args.split,
                                                root=args.data_root, batch_size=args.batch_size,
                                                device=args.device, limit=args.limit)
    if args.json:
        print(json.dumps({"checkpoint": str(ckpt.path), "classes": classes, **result.as_dict()}))
        return 0
    cfg = ckpt.model_config
    print(f"{cfg['name']} attention={cfg.get('attention')} from {ckpt.path} (epoch {ckpt.epoch})")
    print(f"accuracy {result.accuracy:.4f}  loss {result.loss:.4f}  on {result.count} {args.split} images\n")
    rows = [[c, a] for c, a in zip(classes, result.per_class_accuracy, strict=True)]
    print(format_table(["class", "accuracy"], rows))
    short = [c[:6] for c in classes]
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    print(format_table(["", *short], [[s, *row] for s, row in zip(short, result.confusion, strict=True)]))
    return 0


def _add_study(p: argparse.ArgumentParser) -> None:
    from .study import PRESETS

    p.add_argument("--preset", default="quick", help=f"{' or '.join(sorted(PRESETS, reverse=True))}: quick takes "
                                                     "minutes on a CPU, full is meant for a GPU (default: quick)")
    p.add_argument("--out", default="report", help="report directory: index.html, results.json, figures/, runs/")
    p.add_argument("--runs", default=None, help="where the training runs live (default: OUT/runs); finished runs "
                                                 "are reused")
    p.add_argument("--device", type=_device, default=None, help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="variants to compare, vanilla and attention names, e.g. vanilla se cbam (default: the "
                        "preset's)")
    p.add_argument("--non-local", action="store_true", help="add the Non-Local variant")
    p.add_argument("--seeds", type=_count_or_zero, nargs="+", default=None,
                   help="one training run per variant and seed (default: the preset's)")
    from .train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    train_help = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    from .data import list_datasets

    p.add_argument("--dataset", default=None, metavar="NAME",
                   help=f"run the study on this one dataset (condition) alone, one of "
                        f"{', '.join(list_datasets(with_boxes=True))} (default: the preset's)")
    p.add_argument("--clutter", nargs="+", default=None, metavar="N",
                   help="clutter levels, fragments per canvas of cluttered-fashion-mnist, one condition each, e.g. "
                        "--clutter 0 4 8 16 (default: the preset's; quick: 0 8, full: 0 4 8 16)")
    for name in ("data_root", "epochs", "limit_train", "limit_test"):  # overriding the preset's
        kind = _value_type(hints[name])
        p.add_argument("--" + name.replace("_", "-"), type=_positive_int if kind is int else kind, default=None,
                       help=f"{train_help[name]} (default: the preset's)")
    p.add_argument("--n-localisation", type=_positive_int, default=None,
                   help="test images scored for localisation (default: the preset's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or periodic log lines")
    _add_study_executor(p)


def _add_study_executor(p: argparse.ArgumentParser) -> None:
    """``attnlab study``'s flags for how its runs train: how many at once, on this machine or on Ray."""
    from .study.executor import EXECUTORS, RUNS_PER_GPU

    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="training runs at once (default: auto: on a CPU as many as the cores hold, the cores shared "
                        "evenly between the study's runs whatever N is, so results do not depend on N; on GPUs "
                        f"{RUNS_PER_GPU} per visible GPU; with ray, as many as the cluster schedules)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: processes on this machine; ray: each run a Ray task, on a local Ray instance or on "
                        "the cluster at --address (the run folders on a filesystem every worker sees) "
                        "(default: local)")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --executor ray: the Ray cluster's head, as `ray start --head` prints it (default: "
                        "start a local Ray instance for the study)")


def _study_variants(args: argparse.Namespace, preset_attentions: tuple[str | None, ...]):
    """The variants ``--models`` and ``--non-local`` ask for (None: the preset's), every name checked."""
    from .study import parse_variants

    if not args.models and not args.non_local:
        return None
    names = list(args.models) if args.models else ["vanilla" if a is None else a for a in preset_attentions]
    if args.non_local:
        if "non_local" in parse_variants(names):
            raise ValueError("--non-local adds non_local, which --models already names; give it once")
        names.append("non_local")
    return parse_variants(names)


def _run_study(args: argparse.Namespace) -> int:
    from .study import get_preset, parse_clutter_levels, run_study

    preset = get_preset(args.preset)
    preset = preset.with_overrides(attentions=_study_variants(args, preset.attentions),
                                   seeds=tuple(args.seeds) if args.seeds else None,
                                   clutter_levels=parse_clutter_levels(args.clutter) if args.clutter else None,
                                   epochs=args.epochs, limit_train=args.limit_train, limit_test=args.limit_test,
                                   dataset=args.dataset, data_root=args.data_root,
                                   n_localisation=args.n_localisation)
    result = run_study(preset, args.out, runs_dir=args.runs, device=args.device, progress=not args.no_progress,
                       command=_command(), jobs=args.jobs, executor=args.executor, address=args.address)
    print(f"\nreport: {result.report.resolve()}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list the attention modules with their parameter formulas and papers", _add_list, _run_list),
    "bench": ("benchmark modules, networks, CAM methods, training or data generation", _add_bench, _run_bench),
    "cam": ("class activation maps of trained checkpoints on the same images, as a comparison grid", _add_cam,
            _run_cam),
    "train": ("train a model (also under torchrun for many processes/GPUs)", _add_train, _run_train),
    "study": ("train vanilla and attention networks alike, measure accuracy, cost and localisation, and write "
              "an HTML report with a verdict", _add_study, _run_study),
    "eval": ("evaluate a trained checkpoint: accuracy, loss, per-class accuracy, confusion matrix", _add_eval,
             _run_eval),
}


#: Example command lines for each subcommand's ``--help`` (keys: ``train``, ``bench models``, ...), each a
#: real command (a test parses every one).
EXAMPLES: dict[str, list[str]] = {
    "list": ["attnlab list", "attnlab list --channels 64"],
    "bench": ["attnlab bench modules --modules se,cbam,eca --shapes 256x56x56",
              "attnlab bench models --models resnet20 --attention se,cbam --out ''"],
    "bench modules": ["attnlab bench modules --modules se,cbam,eca --shapes 256x56x56 --repeats 5",
                      "attnlab bench modules --no-backward --out ''   # print only, write no file"],
    "bench models": ["attnlab bench models --models resnet20 --attention se,cbam --no-memory",
                     "attnlab bench models --device cuda --channels-last --out results/models-gpu.md"],
    "bench cam": ["attnlab bench cam --methods gradcam,scorecam --no-baselines --out ''",
                  "attnlab bench cam --configs resnet20:64:layer3:16 --batch 8"],
    "bench train": ["attnlab bench train --attention cbam --epochs 2 --limit-train 5000",
                    "attnlab bench train --dataset cifar10 --model resnet56 --device cuda --run runs/bench-c10"],
    "bench jobs": ["attnlab bench jobs --limit-train 600 --rounds 2 --models vanilla cbam"],
    "bench data": ["attnlab bench data --n 2000 --out ''",
                   "attnlab bench data --data-root ~/data/fashion-mnist --canvas 96"],
    "bench loop": ["attnlab bench loop --device cuda --batch 128,1024",
                   "attnlab bench loop --attention none --images 128 --repeats 2 --out ''"],
    "bench scoring": ["attnlab bench scoring --n 2000 --repeats 1 --out ''",
                      "attnlab bench scoring --device cuda --reference ''   # today's code alone"],
    "cam": ["attnlab cam --checkpoint runs/vanilla runs/cbam --images cluttered-fashion-mnist --out cam -n 6",
            "attnlab cam --checkpoint runs/cbam --images photos/ --method scorecam --out cam-photos"],
    "train": ["attnlab train --attention cbam --dataset fashion-mnist --epochs 10 --out runs/cbam",
              "attnlab train --resume --attention cbam --dataset fashion-mnist --epochs 10 --out runs/cbam"],
    "study": ["attnlab study --preset quick --out report",
              "attnlab study --models vanilla se cbam --seeds 0 1 --epochs 5 --out report-se-cbam",
              "attnlab study --preset full --clutter 0 16 --dataset cluttered-fashion-mnist --out report-dose",
              "attnlab study --preset full --executor ray --address 10.0.0.5:6379 --runs /shared/runs"],
    "eval": ["attnlab eval --checkpoint runs/cbam",
             "attnlab eval --checkpoint runs/cbam/checkpoints/epoch_0010 --split train --limit 1000 --json"],
}

#: What a subcommand's help adds below its examples.
_NOTES = {
    "bench modules": "Writes its table to benchmarks/results/modules.md under the current directory unless --out "
                     "says otherwise ('' for no file).",
    "bench models": "Writes its table to benchmarks/results/models.md under the current directory unless --out "
                    "says otherwise ('' for no file).",
    "bench cam": "Writes its tables to benchmarks/results/cam.md under the current directory unless --out says "
                 "otherwise ('' for no file).",
    "bench data": "Writes its table to benchmarks/results/data.md under the current directory unless --out says "
                  "otherwise ('' for no file). Skips, with a message, when the default folder lacks the files; a "
                  "--data-root without them is an error.",
    "bench loop": "Writes its table to benchmarks/results/loop-DEVICE.md under the current directory (DEVICE: the "
                  "GPU's name, e.g. nvidia-h200, or cpu) unless --out says otherwise ('' for no file).",
    "bench scoring": "Writes its table to benchmarks/results/scoring-DEVICE.md (cpu, or the GPU's name) under the "
                     "current directory unless --out says otherwise ('' for no file). The reference is the code "
                     "before issue 14, kept under tests/: run from the repository root.",
    "train": "Ctrl-C stops the run; --resume with the same settings continues from the last finished epoch.",
    "study": "Ctrl-C stops every run; the same command again reuses the finished runs and resumes the others from "
             "their last checkpoint.",
}


def _examples(command: str) -> str:
    """The ``--help`` epilog of ``command``: its example lines, then its note."""
    lines = "\n".join(f"  {line}" for line in EXAMPLES[command])
    note = _NOTES.get(command)
    return f"examples:\n{lines}" + (f"\n\n{note}" if note else "")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand (its errors raise :class:`UsageError`)."""
    from . import __version__

    parser = _Parser(prog="attnlab", description="Plug-and-play attention for CNNs.",
                     epilog="'attnlab COMMAND --help' shows a command's options, defaults and examples.")
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text, epilog=_examples(name)))
    return parser


def _one_line(text: str) -> str:
    """``text`` on one line (line breaks and the spaces around them become one space)."""
    return re.sub(r"\s*\n\s*", " ", text.strip())


_OS_HINTS = {
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.EISDIR: "this is a folder, not a file",
    errno.EACCES: "no permission; choose a path you may use, or change its permissions",
    errno.EPERM: "no permission; choose a path you may use, or change its permissions",
    errno.ENOSPC: "the disk is full; free some space or choose another disk",
    errno.EROFS: "the file system is read-only; choose another path",
}


def _os_message(err: OSError) -> str:
    """One line naming the path of an ``OSError`` and what to do; the library's own message when it has no path."""
    if err.filename is None:
        return str(err) or type(err).__name__
    path = str(err.filename)
    if err.errno == errno.EEXIST and os.path.isfile(path):
        return f"{path!r} is a file, not a folder; choose a folder path or move the file away"
    paths = f"{path!r}" + (f" -> {str(err.filename2)!r}" if err.filename2 is not None else "")
    hint = _OS_HINTS.get(err.errno or 0)
    return f"{paths}: {err.strerror or type(err).__name__}" + (f" ({hint})" if hint else "")


def _user_error(err: BaseException) -> str | None:
    """The one-line message of a user's error (see the module docstring), or None for a bug."""
    if isinstance(err, OSError):
        return _os_message(err)
    if isinstance(err, (ValueError, FloatingPointError)):
        return str(err) or type(err).__name__
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(err, torch.OutOfMemoryError):
        return ("the device ran out of memory; lower --batch-size (or the benchmark's --batch), or use another "
                f"device ({_one_line(str(err))[:200]})")
    return None


def _fail(message: str, err: BaseException | None = None) -> int:
    """Print ``attnlab: error: message`` as one line on stderr (the traceback too with ``ATTNLAB_TRACEBACK=1``);
    returns 2."""
    if err is not None and os.environ.get("ATTNLAB_TRACEBACK"):
        traceback.print_exception(err)
    print(f"attnlab: error: {_one_line(message)}", file=sys.stderr, flush=True)
    return 2


def _interrupted(err: KeyboardInterrupt) -> int:
    """Print ``attnlab: interrupted[: message]`` (the message says how to continue, when there is one); 130."""
    message = _one_line(str(err))
    sys.stdout.flush()
    print("attnlab: interrupted" + (f": {message}" if message else ""), file=sys.stderr, flush=True)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``attnlab`` console script: 0 on success, 2 after one ``attnlab: error:`` line for a
    user's mistake, 130 on Ctrl-C; a bug keeps its traceback (see the module docstring)."""
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:
            command = " ".join(filter(None, [args.command, getattr(args, "target", None)]))
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see 'attnlab {command} --help')")
        return COMMANDS[args.command][2](args)
    except UsageError as err:
        return _fail(str(err))
    except KeyboardInterrupt as err:
        return _interrupted(err)
    except Exception as err:
        message = _user_error(err)
        if message is None:
            raise
        return _fail(message, err)


if __name__ == "__main__":
    raise SystemExit(main())
