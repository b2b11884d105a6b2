"""The CAM benchmark behind ``attnlab bench cam`` and ``benchmarks/cam.py``.

For each configuration (resnet18 at 224 x 224 on ``layer4`` and resnet20 at 64 x 64 on ``layer3``, batch
16, random weights, eval mode): images per second and peak memory of every attnlab method, with
captum's ``LayerGradCam`` and torchcam's ``GradCAM`` timed in the same paired rounds as the baseline.
Every candidate produces the same thing: (N, H, W) maps at the input size for the same given classes
(the baselines' maps are ReLU'd, upsampled and normalised as ours are).

Score-CAM makes one forward pass per channel and image, so it is timed on fewer images
(``score_images``) against torchcam's ``ScoreCAM`` at the same batch size, and the table reports the
agreement of the two maps (max |difference| after upsampling and normalisation) and the error of the
approximate ``top_k`` mode against the exact maps.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..benchtools import PairedTimes, format_table, markdown_table, peak_memory, time_paired
from ..cam import CAM_METHODS, ScoreCAM, create_cam, normalize_maps, upsample_maps
from ..fileio import atomic_write_text, check_file
from ..models import create_model, get_model_builder
from ..names import lookup
from ._shared import RESULTS_DIR, provenance

__all__ = ["CAMConfig", "CHECK_HEADER", "CONFIGS", "DEFAULT_OUT", "SPEED_HEADER", "ScoreCAMCheck", "SpeedResult",
           "benchmark_cams", "check_table", "run", "speed_table"]

#: Where ``run`` writes its tables by default (relative to the current directory).
DEFAULT_OUT = RESULTS_DIR / "cam.md"


@dataclass(frozen=True)
class CAMConfig:
    """One benchmark setting: a model from ``attnlab.create_model`` at an input size, its CAM layer."""

    model: str
    size: int
    layer: str
    score_images: int  # images for the Score-CAM timing (it costs one forward per channel and image)

    def __post_init__(self) -> None:
        """Refuse a size or image count below 1 (before anything is built)."""
        for name in ("size", "score_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"a config's {name.upper()} must be a whole number >= 1, got {value!r} in {self}")

    @classmethod
    def parse(cls, text: str) -> CAMConfig:
        """A config from ``"MODEL:SIZE:LAYER:SCORE_IMAGES"``, e.g. ``"resnet20:64:layer3:16"``.

        Raises:
            ValueError: ``text`` is not four colon-separated fields with integer SIZE and SCORE_IMAGES.
        """
        try:
            model, size, layer, images = text.split(":")
            numbers = int(size), int(images)
        except ValueError as err:
            raise ValueError(f"a config is MODEL:SIZE:LAYER:SCORE_IMAGES, got {text!r}") from err
        return cls(model, numbers[0], layer, numbers[1])

    def __str__(self) -> str:
        """The ``MODEL:SIZE:LAYER:SCORE_IMAGES`` text that :meth:`parse` reads."""
        return f"{self.model}:{self.size}:{self.layer}:{self.score_images}"


CONFIGS: tuple[CAMConfig, ...] = (CAMConfig("resnet18", 224, "layer4", 2), CAMConfig("resnet20", 64, "layer3", 16))


@dataclass
class SpeedResult:
    """One row of the speed table."""

    model: str
    input: str
    method: str
    impl: str
    images: int
    images_per_s: float
    peak_mb: float
    x_best_baseline: float | None  # our images/s over the fastest baseline Grad-CAM's in the same rounds


@dataclass
class ScoreCAMCheck:
    """Score-CAM against torchcam on the same images, and the top-k approximation's error."""

    model: str
    images: int
    channels: int  # masked inputs a naive Score-CAM forwards (images x channels)
    forwarded: int  # masked inputs ours forwarded (constant channels share one zero image; duplicates once)
    max_diff_torchcam: float  # max |ours - torchcam| over all pixels, maps normalised at input size
    x_torchcam: float  # our images/s over torchcam's, same batch size, same rounds
    top_k: int
    topk_x_exact: float  # top-k images/s over exact images/s
    topk_max_err: float  # max |top-k - exact| (normalised maps)
    topk_mean_err: float  # mean |top-k - exact|
    topk_corr: float  # mean Pearson correlation of top-k and exact maps


def _model(name: str, device: str) -> nn.Module:
    """Network ``name`` with seeded random weights, in eval mode."""
    torch.manual_seed(0)
    return create_model(name).to(device).eval()


def _captum_gradcam(model: nn.Module, layer: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """captum's LayerGradCam as (x (N, 3, H, W), classes (N,)) -> normalised (N, H, W) maps."""
    from captum.attr import LayerGradCam

    lgc = LayerGradCam(model, layer)

    def run(x: Tensor, classes: Tensor) -> Tensor:
        a = lgc.attribute(x, target=classes)  # (N, 1, h, w)
        return normalize_maps(upsample_maps(F.relu(a[:, 0]).detach(), x.shape[-2:]))

    return run


def _torchcam_gradcam(model: nn.Module, layer: str) -> tuple[Callable[[Tensor, Tensor], Tensor], object]:
    """torchcam's GradCAM as (x, classes) -> normalised (N, H, W) maps, and its extractor (to remove hooks)."""
    from torchcam.methods import GradCAM as TorchcamGradCAM

    extractor = TorchcamGradCAM(model, layer)

    def run(x: Tensor, classes: Tensor) -> Tensor:
        with torch.enable_grad():
            scores = model(x)
        cam = extractor(class_idx=classes.tolist(), scores=scores, normalized=False)[0]
        return normalize_maps(upsample_maps(cam, x.shape[-2:]))

    return run, extractor


def _torchcam_scorecam(model: nn.Module, layer: str,
                       batch_size: int) -> tuple[Callable[[Tensor, Tensor], Tensor], object]:
    """torchcam's ScoreCAM as (x, classes) -> normalised (N, H, W) maps, and its extractor (to remove hooks)."""
    from torchcam.methods import ScoreCAM as TorchcamScoreCAM

    extractor = TorchcamScoreCAM(model, layer, batch_size=batch_size)

    def run(x: Tensor, classes: Tensor) -> Tensor:
        with torch.no_grad():
            model(x)
            cam = extractor(class_idx=classes.tolist(), normalized=False)[0]
        return normalize_maps(upsample_maps(cam, x.shape[-2:]))

    return run, extractor


def _corr(a: Tensor, b: Tensor) -> float:
    """Mean over images of the Pearson correlation of two (N, H, W) map batches."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    den = (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)
    return float(((a * b).sum(1) / den).mean())


def _remove_hooks(extractors: Sequence[Any]) -> None:
    """Remove the hooks of every CAM extractor (ours and the baselines')."""
    for ex in extractors:
        ex.remove_hooks()


def _one_pass_candidates(model: nn.Module, layer: str, x: Tensor, classes: Tensor, methods: Sequence[str],
                         baselines: bool, extractors: list[Any]) -> dict[str, Callable[[], object]]:
    """"impl method" -> a zero-argument call making (N, H, W) maps of ``x``; every extractor built is appended to
    ``extractors`` (so the caller removes its hooks even if a later one fails)."""
    fns: dict[str, Callable[[], object]] = {}
    for m in methods:
        cam = create_cam(m, model, layer)
        extractors.append(cam)
        fns[f"attnlab {m}"] = partial(cam, x, None if cam.class_agnostic else classes)
    if "gradcam" in methods:  # the same method in the input's own (NCHW) layout: what the layout alone buys
        plain = create_cam("gradcam", model, layer, channels_last=False)
        extractors.append(plain)
        fns["attnlab gradcam (NCHW)"] = partial(plain, x, classes)
    if baselines:
        cap = _captum_gradcam(model, dict(model.named_modules())[layer])
        tc, ex = _torchcam_gradcam(model, layer)
        extractors.append(ex)
        fns["captum gradcam"] = partial(cap, x, classes)
        fns["torchcam gradcam"] = partial(tc, x, classes)
    return fns


def _time_one_pass(model: nn.Module, cfg: CAMConfig, x: Tensor, classes: Tensor, methods: Sequence[str],
                   repeats: int, baselines: bool, device: str) -> list[SpeedResult]:
    """Time the one-pass methods and the baseline Grad-CAMs in paired rounds: one speed row each."""
    batch, label = x.shape[0], f"{cfg.size}x{cfg.size}"
    extractors: list[Any] = []
    try:
        fns = _one_pass_candidates(model, cfg.layer, x, classes, methods, baselines, extractors)
        times = time_paired(fns, repeats=repeats, warmup=1, device=device)
        base_keys = [k for k in fns if not k.startswith("attnlab")]
        best = min(base_keys, key=times.median) if base_keys else None
        rows = []
        for key, fn in fns.items():
            impl, method = key.split(" ", 1)
            mem = peak_memory(fn, device)
            ratio = 1 / times.ratio(key, best) if best is not None and impl == "attnlab" else None
            rows.append(SpeedResult(cfg.model, label, method, impl, batch, batch / times.median(key),
                                    mem.peak_bytes / 2**20, ratio))
        return rows
    finally:
        _remove_hooks(extractors)


def _layer_channels(model: nn.Module, layer: str, x: Tensor) -> int:
    """K, the channel count of ``layer``'s output on ``x`` (one forward pass)."""
    shape: list[int] = []
    handle = dict(model.named_modules())[layer].register_forward_hook(
        lambda _m, _i, o: shape.extend(o.shape) if not shape else None)
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return shape[1]


def _time_once(fns: dict[str, Callable[[], Tensor]], device: str) -> tuple[PairedTimes, dict[str, Tensor]]:
    """One paired round of ``fns``, keeping each call's (N, H, W) maps."""
    outs: dict[str, Tensor] = {}

    def keep(name: str, fn: Callable[[], Tensor]) -> Callable[[], Tensor]:
        def run() -> Tensor:
            outs[name] = fn()
            return outs[name]

        return run

    times = time_paired({k: keep(k, f) for k, f in fns.items()}, repeats=1, warmup=0, device=device)
    return times, outs


def _score_rows(cfg: CAMConfig, n: int, times: PairedTimes, keys: Sequence[str], exact_peak_mb: float,
                baselines: bool) -> list[SpeedResult]:
    """The Score-CAM speed rows: ours against torchcam's (``x best baseline``), top-k with no ratio."""
    rows = []
    for key in keys:
        impl, method = key.split(" ", 1)
        exact = key == "attnlab scorecam"
        ratio = 1 / times.ratio(key, "torchcam scorecam") if baselines and exact else None
        rows.append(SpeedResult(cfg.model, f"{cfg.size}x{cfg.size}", method, impl, n, n / times.median(key),
                                exact_peak_mb if exact else float("nan"), ratio))
    return rows


def _score_summary(cfg: CAMConfig, exact: ScoreCAM, n: int, top_k: int, times: PairedTimes,
                   outs: dict[str, Tensor], baselines: bool) -> ScoreCAMCheck:
    """Agreement with torchcam, what the exact mode saved, and the top-k mode's error, from one round's maps."""
    ours, top = outs["attnlab scorecam"], outs[f"attnlab scorecam top-{top_k}"]
    diff = float((ours - outs["torchcam scorecam"]).abs().max()) if baselines else float("nan")
    xt = 1 / times.ratio("attnlab scorecam", "torchcam scorecam") if baselines else float("nan")
    return ScoreCAMCheck(cfg.model, n, exact.last_candidates, exact.last_forwarded, diff, xt, top_k,
                         1 / times.ratio(f"attnlab scorecam top-{top_k}", "attnlab scorecam"),
                         float((top - ours).abs().max()), float((top - ours).abs().mean()), _corr(top, ours))


def _score_check(model: nn.Module, cfg: CAMConfig, x: Tensor, classes: Tensor, batch_size: int,
                 top_k_fraction: float, baselines: bool, device: str) -> tuple[list[SpeedResult], ScoreCAMCheck]:
    """Exact and top-k Score-CAM (and torchcam's) on ``x`` (n, 3, H, W), one round: speed rows and the check."""
    n = x.shape[0]
    top_k = max(1, int(round(top_k_fraction * _layer_channels(model, cfg.layer, x[:1]))))
    exact = ScoreCAM(model, cfg.layer, batch_size=batch_size)
    extractors: list[Any] = [exact]
    try:
        approx = ScoreCAM(model, cfg.layer, batch_size=batch_size, top_k=top_k)
        extractors.append(approx)
        fns: dict[str, Callable[[], Tensor]] = {
            "attnlab scorecam": lambda: exact(x, classes),
            f"attnlab scorecam top-{top_k}": lambda: approx(x, classes),
        }
        if baselines:
            tc, ex = _torchcam_scorecam(model, cfg.layer, batch_size)
            extractors.append(ex)
            fns["torchcam scorecam"] = lambda: tc(x, classes)
        times, outs = _time_once(fns, device)
        check = _score_summary(cfg, exact, n, top_k, times, outs, baselines)
        # peak memory of one exact call on one image (the same chunks as a full call)
        peak_mb = peak_memory(lambda: exact(x[:1], classes[:1]), device).peak_bytes / 2**20
        return _score_rows(cfg, n, times, list(fns), peak_mb, baselines), check
    finally:
        _remove_hooks(extractors)


def _methods_to_measure(methods: Sequence[str] | None) -> list[str]:
    """The registry names of the CAM methods asked for (all when empty); an unknown one raises the registry's
    ``ValueError``."""
    if not methods:
        return list(CAM_METHODS)
    return [lookup(CAM_METHODS, name, "CAM method").name for name in methods]


def benchmark_cams(configs: Sequence[CAMConfig] | None = None, batch: int = 16, methods: Sequence[str] | None = None,
                   repeats: int = 9, score_batch_size: int = 64, top_k_fraction: float = 0.125,
                   baselines: bool = True, device: str = "cpu",
                   log: Callable[[str], None] | None = print) -> tuple[list[SpeedResult], list[ScoreCAMCheck]]:
    """Time every CAM method and the baselines; check Score-CAM against torchcam.

    Args:
        configs: model, input size, CAM layer and Score-CAM image count of each setting (default: :data:`CONFIGS`).
        batch: images per call for all but Score-CAM.
        methods: attnlab method names (default all; "scorecam" triggers the Score-CAM check).
        repeats: paired rounds for the one-pass methods (median reported).
        score_batch_size: masked inputs per forward for both Score-CAMs.
        top_k_fraction: channels kept by the approximate Score-CAM (k = max(1, fraction x K)).
        baselines: include captum and torchcam (needs both installed).
        device: "cpu" or a CUDA device.
        log: progress callback (None for silence).

    Raises:
        ValueError: an unknown method or model name (before anything is measured).
    """
    methods = _methods_to_measure(methods)
    for cfg in configs or CONFIGS:
        get_model_builder(cfg.model)
    speed: list[SpeedResult] = []
    checks: list[ScoreCAMCheck] = []
    for cfg in configs or CONFIGS:
        model = _model(cfg.model, device)
        x = torch.randn(batch, 3, cfg.size, cfg.size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            classes = model(x).argmax(1)  # (N,): the model's predictions
        one_pass = [m for m in methods if not CAM_METHODS[m].forwards_per_channel]  # Ablation-CAM: not timed
        rows = _time_one_pass(model, cfg, x, classes, one_pass, repeats, baselines, device)
        speed += rows
        if log:
            log(f"  {cfg.model} {cfg.size}x{cfg.size}: timed {len(rows)} one-pass candidates at batch {batch}")
        if "scorecam" in methods:
            rows, check = _score_check(model, cfg, x[:cfg.score_images], classes[:cfg.score_images],
                                       score_batch_size, top_k_fraction, baselines, device)
            speed += rows
            checks.append(check)
            if log:
                log(f"  {cfg.model} {cfg.size}x{cfg.size}: Score-CAM on {check.images} images, max diff vs "
                    f"torchcam {check.max_diff_torchcam:.2e}, x torchcam {check.x_torchcam:.2f}")
    return speed, checks


SPEED_HEADER = ["model", "input", "method", "impl", "images", "images/s", "peak MB", "x best baseline"]
CHECK_HEADER = ["model", "images", "channels", "forwarded", "max diff vs torchcam", "x torchcam", "top-k",
                "top-k x exact", "top-k max err", "top-k mean err", "top-k corr"]


def speed_table(results: Sequence[SpeedResult]) -> tuple[list[str], list[list[object]]]:
    """Header and rows of the speed table."""
    rows = [[r.model, r.input, r.method, r.impl, r.images, r.images_per_s, r.peak_mb,
             "-" if r.x_best_baseline is None else r.x_best_baseline] for r in results]
    return SPEED_HEADER, rows


def check_table(checks: Sequence[ScoreCAMCheck]) -> tuple[list[str], list[list[object]]]:
    """Header and rows of the Score-CAM table."""
    rows = [[c.model, c.images, c.channels, c.forwarded, c.max_diff_torchcam, c.x_torchcam, c.top_k,
             c.topk_x_exact, c.topk_max_err, c.topk_mean_err, c.topk_corr] for c in checks]
    return CHECK_HEADER, rows


NOTES = """\
images/s: median over paired rounds (every candidate once per round, in turn); each produces (N, H, W)
maps at the input size for the same classes (the model's predictions), baselines included (captum's
LayerGradCam and torchcam's GradCAM, then ReLU, bilinear upsampling and min-max normalisation).
x best baseline: our images/s over the fastest baseline Grad-CAM's, within the same rounds (> 1: faster).
Our methods feed the model channels-last inputs by default (``channels_last=None``); "gradcam (NCHW)"
is the same Grad-CAM in the input's own layout, to separate what the layout buys from the rest.
peak MB: memory allocated by one call (CPU: profiler memory events; Score-CAM: one image, same chunks).
Score-CAM rows run on fewer images (one forward pass per channel and image) against torchcam's ScoreCAM
at the same batch size; its x best baseline column is over torchcam's Score-CAM. Models have random
weights: a trained network has many more all-zero channels, which ours forwards once for all
(see "forwarded" against "channels")."""


def _write(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a re-run replaces it whole)."""
    return atomic_write_text(path, text)


def run(out: str | os.PathLike | None = DEFAULT_OUT, command: str = "attnlab bench cam",
        **kwargs: Any) -> tuple[list[SpeedResult], list[ScoreCAMCheck]]:
    """Run ``benchmark_cams(**kwargs)``, print both tables, and save them to ``out`` (Markdown; None or "" to skip)
    with the exact command and machine."""
    if out:
        check_file(out, "the results file (--out)")
    speed, checks = benchmark_cams(**kwargs)
    print(format_table(*speed_table(speed)))
    if checks:
        print()
        print(format_table(*check_table(checks)))
    if out:
        text = (f"# CAM benchmark\n\n{provenance(command, kwargs.get('device', 'cpu'))}\n\n{NOTES}\n\n"
                f"## Speed\n\n{markdown_table(*speed_table(speed))}\n")
        if checks:
            text += ("\n## Score-CAM: agreement with torchcam, exact savings, top-k approximation\n\n"
                     f"{markdown_table(*check_table(checks))}\n")
        path = _write(out, text)
        print(f"\nsaved {path}")
    return speed, checks
