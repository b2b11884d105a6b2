"""The CAM benchmark behind ``benchmarks/cam.py`` and ``attnlab bench cam``.

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
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..benchtools import format_table, machine_summary, markdown_table, peak_memory, time_paired
from ..cam import CAM_METHODS, ScoreCAM, create_cam, normalize_maps, upsample_maps
from ..models import create_model

__all__ = ["CAMConfig", "CONFIGS", "SpeedResult", "ScoreCAMCheck", "benchmark_cams", "run"]


@dataclass(frozen=True)
class CAMConfig:
    """One benchmark setting: a model from ``attnlab.create_model`` at an input size, its CAM layer."""

    model: str
    size: int
    layer: str
    score_images: int  # images for the Score-CAM timing (it costs one forward per channel and image)


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
    torch.manual_seed(0)
    return create_model(name).to(device).eval()


def _captum_gradcam(model: nn.Module, layer: nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    from captum.attr import LayerGradCam

    lgc = LayerGradCam(model, layer)

    def run(x: Tensor, classes: Tensor) -> Tensor:
        a = lgc.attribute(x, target=classes)  # (N, 1, h, w)
        return normalize_maps(upsample_maps(F.relu(a[:, 0]).detach(), x.shape[-2:]))

    return run


def _torchcam_gradcam(model: nn.Module, layer: str) -> tuple[Callable[[Tensor, Tensor], Tensor], object]:
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
    from torchcam.methods import ScoreCAM as TorchcamScoreCAM

    extractor = TorchcamScoreCAM(model, layer, batch_size=batch_size)

    def run(x: Tensor, classes: Tensor) -> Tensor:
        with torch.no_grad():
            model(x)
            cam = extractor(class_idx=classes.tolist(), normalized=False)[0]
        return normalize_maps(upsample_maps(cam, x.shape[-2:]))

    return run, extractor


def _corr(a: Tensor, b: Tensor) -> float:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    den = (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-30)
    return float(((a * b).sum(1) / den).mean())


def benchmark_cams(configs: Sequence[CAMConfig] = CONFIGS, batch: int = 16, methods: Sequence[str] | None = None,
                   repeats: int = 9, score_batch_size: int = 64, top_k_fraction: float = 0.125,
                   baselines: bool = True, device: str = "cpu",
                   log: Callable[[str], None] | None = print) -> tuple[list[SpeedResult], list[ScoreCAMCheck]]:
    """Time every CAM method and the baselines; check Score-CAM against torchcam.

    Args:
        configs: model, input size, CAM layer and Score-CAM image count of each setting.
        batch: images per call for all but Score-CAM.
        methods: attnlab method names (default all; "scorecam" triggers the Score-CAM check).
        repeats: paired rounds for the one-pass methods (median reported).
        score_batch_size: masked inputs per forward for both Score-CAMs.
        top_k_fraction: channels kept by the approximate Score-CAM (k = max(1, fraction x K)).
        baselines: include captum and torchcam (needs both installed).
        device: "cpu" or a CUDA device.
        log: progress callback (None for silence).
    """
    methods = list(methods) if methods else list(CAM_METHODS)
    speed: list[SpeedResult] = []
    checks: list[ScoreCAMCheck] = []
    for cfg in configs:
        model = _model(cfg.model, device)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, cfg.size, cfg.size, generator=g).to(device)
        with torch.no_grad():
            classes = model(x).argmax(1)
        label = f"{cfg.size}x{cfg.size}"
        one_pass = [m for m in methods if m != "scorecam"]
        n_fns = _time_one_pass(model, cfg, x, classes, one_pass, repeats, baselines, device, speed, label)
        if log:
            log(f"  {cfg.model} {label}: timed {n_fns} one-pass candidates at batch {batch}")
        if "scorecam" in methods:
            checks.append(_score_check(model, cfg, x[:cfg.score_images], classes[:cfg.score_images],
                                       score_batch_size, top_k_fraction, baselines, device, speed, label))
            if log:
                c = checks[-1]
                log(f"  {cfg.model} {label}: Score-CAM on {c.images} images, max diff vs torchcam "
                    f"{c.max_diff_torchcam:.2e}, x torchcam {c.x_torchcam:.2f}")
    return speed, checks


def _time_one_pass(model: nn.Module, cfg: CAMConfig, x: Tensor, classes: Tensor, methods: Sequence[str],
                   repeats: int, baselines: bool, device: str, speed: list[SpeedResult], label: str) -> int:
    """Time the one-pass methods and the baseline Grad-CAMs in paired rounds; append rows to ``speed``."""
    batch = x.shape[0]
    cams = {m: create_cam(m, model, cfg.layer) for m in methods}
    extractors: list[object] = list(cams.values())
    try:
        fns: dict[str, Callable[[], object]] = {}
        for m, cam in cams.items():
            tgt = None if m == "eigencam" else classes
            fns[f"attnlab {m}"] = partial(cam, x, tgt)
        if "gradcam" in cams:  # the same method in the input's own (NCHW) layout: what the layout alone buys
            plain = create_cam("gradcam", model, cfg.layer, channels_last=False)
            extractors.append(plain)
            fns["attnlab gradcam (NCHW)"] = partial(plain, x, classes)
        if baselines:
            cap = _captum_gradcam(model, dict(model.named_modules())[cfg.layer])
            tc, ex = _torchcam_gradcam(model, cfg.layer)
            extractors.append(ex)
            fns["captum gradcam"] = partial(cap, x, classes)
            fns["torchcam gradcam"] = partial(tc, x, classes)
        times = time_paired(fns, repeats=repeats, warmup=1, device=device)
        base_keys = [k for k in fns if not k.startswith("attnlab")]
        best = min(base_keys, key=times.median) if base_keys else None
        for key, fn in fns.items():
            impl, method = key.split(" ", 1)
            mem = peak_memory(fn, device)
            ratio = 1 / times.ratio(key, best) if best is not None and impl == "attnlab" else None
            speed.append(SpeedResult(cfg.model, label, method, impl, batch, batch / times.median(key),
                                     mem.peak_bytes / 2**20, ratio))
        return len(fns)
    finally:
        for ex in extractors:
            ex.remove_hooks()


def _score_check(model: nn.Module, cfg: CAMConfig, x: Tensor, classes: Tensor, batch_size: int,
                 top_k_fraction: float, baselines: bool, device: str, speed: list[SpeedResult],
                 label: str) -> ScoreCAMCheck:
    n = x.shape[0]
    shape: list[int] = []
    handle = dict(model.named_modules())[cfg.layer].register_forward_hook(
        lambda _m, _i, o: shape.extend(o.shape) if not shape else None)
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
    top_k = max(1, int(round(top_k_fraction * shape[1])))
    exact = ScoreCAM(model, cfg.layer, batch_size=batch_size)
    extractors: list[object] = [exact]
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
        outs: dict[str, Tensor] = {}

        def keep(name: str, fn: Callable[[], Tensor]) -> Callable[[], Tensor]:
            def run() -> Tensor:
                outs[name] = fn()
                return outs[name]

            return run

        times = time_paired({k: keep(k, f) for k, f in fns.items()}, repeats=1, warmup=0, device=device)
        channels, forwarded = exact.last_candidates, exact.last_forwarded
        for key in fns:
            impl, method = key.split(" ", 1)
            ratio = None
            if baselines and key == "attnlab scorecam":
                ratio = times.ratio("attnlab scorecam", "torchcam scorecam")
            speed.append(SpeedResult(cfg.model, label, method, impl, n, n / times.median(key), float("nan"),
                                     None if ratio is None else 1 / ratio))
        # peak memory of one exact call on one image (the same chunks as a full call)
        mem = peak_memory(lambda: exact(x[:1], classes[:1]), device)
        for r in speed[-len(fns):]:
            if r.method == "scorecam" and r.impl == "attnlab":
                r.peak_mb = mem.peak_bytes / 2**20
        ours = outs["attnlab scorecam"]
        diff = float((ours - outs["torchcam scorecam"]).abs().max()) if baselines else float("nan")
        xt = 1 / times.ratio("attnlab scorecam", "torchcam scorecam") if baselines else float("nan")
        top = outs[f"attnlab scorecam top-{top_k}"]
        return ScoreCAMCheck(cfg.model, n, channels, forwarded, diff, xt, top_k,
                             1 / times.ratio(f"attnlab scorecam top-{top_k}", "attnlab scorecam"),
                             float((top - ours).abs().max()), float((top - ours).abs().mean()), _corr(top, ours))
    finally:
        for ex in extractors:
            ex.remove_hooks()


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".md.tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def run(out: str | None = "benchmarks/results/cam.md", command: str = "attnlab bench cam",
        **kwargs) -> tuple[list[SpeedResult], list[ScoreCAMCheck]]:
    """Benchmark, print both tables, and save them (Markdown) with the exact command and machine."""
    device = kwargs.get("device", "cpu")
    speed, checks = benchmark_cams(**kwargs)
    print(format_table(*speed_table(speed)))
    if checks:
        print()
        print(format_table(*check_table(checks)))
    if out:
        text = (f"# CAM benchmark\n\nCommand: `{command}`\n\nMachine: {machine_summary(device)}\n\n{NOTES}\n\n"
                f"## Speed\n\n{markdown_table(*speed_table(speed))}\n")
        if checks:
            text += ("\n## Score-CAM: agreement with torchcam, exact savings, top-k approximation\n\n"
                     f"{markdown_table(*check_table(checks))}\n")
        path = _write(out, text)
        print(f"\nsaved {path}")
    return speed, checks


def as_dicts(results: Sequence[SpeedResult | ScoreCAMCheck]) -> list[dict]:
    """Results as plain dicts (for JSON)."""
    return [asdict(r) for r in results]
