"""The ``attnlab`` command line: parse arguments, call the library, print. No logic of its own.

Subcommands are registered in ``COMMANDS`` (name -> (add_arguments, run)).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import Field
from typing import Any

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
    m.add_argument("--channels-last", action="store_true", help="inputs in channels_last memory format")
    m.add_argument("--device", default="cpu")
    m.add_argument("--out", default="benchmarks/results/modules.md", help="Markdown results file ('' to skip)")

    n = sub.add_parser("models", help="ResNet-50 and ResNet-20 with each attention: params, GMACs, throughput, memory")
    n.add_argument("--models", default="resnet50,resnet20", help="comma-separated network names")
    n.add_argument("--attention", default=None, help="comma-separated attention names (default: all registered)")
    n.add_argument("--infer-batch", type=int, default=16)
    n.add_argument("--train-batch", type=int, default=8)
    n.add_argument("--repeats", type=int, default=5, help="paired rounds per measurement (median reported)")
    n.add_argument("--warmup", type=int, default=1, help="rounds run first and discarded")
    n.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    n.add_argument("--channels-last", action="store_true", help="networks and inputs in channels_last memory format")
    n.add_argument("--device", default="cpu")
    n.add_argument("--out", default="benchmarks/results/models.md", help="Markdown results file ('' to skip)")

    c = sub.add_parser("cam", help="images/s and memory of every CAM method against captum and torchcam")
    c.add_argument("--methods", default=None, help="comma-separated CAM methods (default: all)")
    c.add_argument("--configs", type=_cam_config, nargs="+", default=None,
                   help="MODEL:SIZE:LAYER:SCORE_IMAGES (default: resnet18:224:layer4:2 resnet20:64:layer3:16)")
    c.add_argument("--batch", type=int, default=16)
    c.add_argument("--repeats", type=int, default=9, help="paired rounds for the one-pass methods")
    c.add_argument("--score-batch-size", type=int, default=64, help="masked inputs per forward, both Score-CAMs")
    c.add_argument("--top-k-fraction", type=float, default=0.125, help="channels kept by approximate Score-CAM")
    c.add_argument("--no-baselines", action="store_true", help="skip captum and torchcam")
    c.add_argument("--device", default="cpu")
    c.add_argument("--out", default="benchmarks/results/cam.md", help="Markdown results file ('' to skip)")

    t = sub.add_parser("train", help="test accuracy after a stated budget and seconds per epoch (a full training run)")
    _add_train(t, run_dir=False)
    t.set_defaults(epochs=20, channels_last=True)  # the recorded ResNet-20 / Fashion-MNIST figure
    t.add_argument("--run", default=None, help="run directory, resumed or reused if it exists "
                                               "(default: runs/bench-train-DATASET-MODEL-ATTENTION)")
    t.add_argument("--out", default=None, help="Markdown results file (default: "
                                               "benchmarks/results/train-DATASET-MODEL[-ATTENTION]-DEVICE.md)")
    t.add_argument("--note", default="", help="a sentence for the results file (how the run was made, the load)")


def _cam_config(text: str):
    from .cam.benchmark import CAMConfig

    try:
        model, size, layer, images = text.split(":")
        return CAMConfig(model, int(size), layer, int(images))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a config is MODEL:SIZE:LAYER:SCORE_IMAGES, got {text!r}") from err


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [v.strip() for v in text.split(",") if v.strip()]


_ARGV: list[str] = []


def _command() -> str:
    """The command as the user could retype it (the arguments given to :func:`main`)."""
    return "attnlab " + " ".join(shlex.quote(a) for a in _ARGV)


def _run_bench(args: argparse.Namespace) -> int:
    return _BENCH_TARGETS[args.target](args)


def _bench_modules(args: argparse.Namespace) -> int:
    from .attention import benchmark as module_bench
    from .attention import get_attention_class

    names = _names(args.modules)
    for n in names or []:
        get_attention_class(n)  # an unknown name raises the registry's ValueError with suggestions
    kwargs = dict(names=names, batch=args.batch, repeats=args.repeats, backward=not args.no_backward,
                  device=args.device, channels_last=args.channels_last)
    if args.shapes:
        kwargs["shapes"] = args.shapes
    module_bench.run(out=args.out or None, command=_command(), **kwargs)
    return 0


def _bench_models(args: argparse.Namespace) -> int:
    from .models import benchmark as model_bench

    model_bench.run(out=args.out or None, command=_command(), models=_names(args.models),
                    attentions=_names(args.attention), infer_batch=args.infer_batch, train_batch=args.train_batch,
                    repeats=args.repeats, warmup=args.warmup, device=args.device, memory=not args.no_memory,
                    channels_last=args.channels_last)
    return 0


def _bench_cam(args: argparse.Namespace) -> int:
    from ._names import lookup
    from .cam import CAM_METHODS
    from .cam.benchmark import CONFIGS, run

    methods = _names(args.methods)
    for name in methods or []:
        lookup(CAM_METHODS, name, "CAM method")
    run(out=args.out or None, command=_command(), configs=args.configs or CONFIGS, batch=args.batch,
        methods=methods, repeats=args.repeats, score_batch_size=args.score_batch_size,
        top_k_fraction=args.top_k_fraction, baselines=not args.no_baselines, device=args.device)
    return 0


def _bench_train(args: argparse.Namespace) -> int:
    from .train.benchmark import run

    figures = run(_train_config(args), args.run, args.out or None, command=_command(), progress=not args.no_progress,
                  note=args.note)
    print(f"test accuracy {figures['test_acc']:.4f} after {figures['epochs']} epochs; median "
          f"{figures['median_epoch_seconds']:.1f} s/epoch ({figures['median_images_per_s']:.0f} img/s); "
          f"wrote {figures['out']}")
    return 0


_BENCH_TARGETS = {"modules": _bench_modules, "models": _bench_models, "cam": _bench_cam, "train": _bench_train}


def _add_cam(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="RUN",
                   help="one or more run/checkpoint directories: one column each")
    p.add_argument("--images", required=True, help="a dataset name (its test split), an image file, or a folder")
    p.add_argument("--method", default="gradcam", help="CAM method (gradcam, gradcampp, xgradcam, hirescam, "
                                                       "layercam, scorecam, eigencam)")
    p.add_argument("--out", required=True, help="output directory: grid.png and maps.pt")
    p.add_argument("-n", "--num-images", type=int, default=8)
    p.add_argument("--target", choices=["predicted", "label"], default="predicted")
    p.add_argument("--device", default=None)


def _run_cam(args: argparse.Namespace) -> int:
    from .study.cam_job import compare_checkpoints

    res = compare_checkpoints(args.checkpoint, args.images, args.out, method=args.method, n=args.num_images,
                              target=args.target, device=args.device)
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
    from .train import train

    train(_train_config(args), args.out, resume=args.resume, progress=not args.no_progress)
    return 0


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint directory")
    p.add_argument("--dataset", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _run_eval(args: argparse.Namespace) -> int:
    import json

    from .bench import format_table
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
    p.add_argument("--preset", default="quick", help="quick (default: minutes on a CPU) or full (meant for a GPU)")
    p.add_argument("--out", default="report", help="report directory: index.html, results.json, figures/, runs/")
    p.add_argument("--runs", default=None, help="where the training runs live (default: OUT/runs); finished runs "
                                                 "are reused")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="variants to compare (vanilla and attention names), e.g. vanilla se cbam")
    p.add_argument("--non-local", action="store_true", help="add the Non-Local variant")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="one training run per variant and seed "
                                                                        "(default: the preset's)")
    from .train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    train_help = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig)}
    for name in ("dataset", "data_root", "epochs", "limit_train", "limit_test"):  # overriding the preset's
        p.add_argument("--" + name.replace("_", "-"), type=_value_type(hints[name]), default=None,
                       help=f"{train_help[name]} (default: the preset's)")
    p.add_argument("--n-localisation", type=int, default=None,
                   help="test images scored for localisation (default: the preset's)")
    p.add_argument("--no-progress", action="store_true")


def _run_study(args: argparse.Namespace) -> int:
    from .study import get_preset, run_study

    preset = get_preset(args.preset)
    attentions = None
    if args.models:
        attentions = tuple(None if m in ("vanilla", "none") else m for m in args.models)
    if args.non_local:
        attentions = (*(attentions or preset.attentions), "non_local")
    preset = preset.with_overrides(attentions=attentions, seeds=tuple(args.seeds) if args.seeds else None,
                                   epochs=args.epochs, limit_train=args.limit_train, limit_test=args.limit_test,
                                   dataset=args.dataset, data_root=args.data_root,
                                   n_localisation=args.n_localisation)
    result = run_study(preset, args.out, runs_dir=args.runs, device=args.device, progress=not args.no_progress,
                       command=_command())
    print(f"\nreport: {result.report.resolve()}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list the attention modules with their parameter formulas and papers", _add_list, _run_list),
    "bench": ("benchmark modules, models or CAM methods", _add_bench, _run_bench),
    "cam": ("class activation maps of trained checkpoints on the same images, as a comparison grid", _add_cam,
            _run_cam),
    "train": ("train a model (also under torchrun for many processes/GPUs)", _add_train, _run_train),
    "study": ("train vanilla and attention networks alike, measure accuracy, cost and localisation, and write "
              "an HTML report with a verdict", _add_study, _run_study),
    "eval": ("evaluate a trained checkpoint: accuracy, loss, per-class accuracy, confusion matrix", _add_eval,
             _run_eval),
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
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError, FloatingPointError) as err:
        print(f"attnlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
