"""The study's report: one self-contained HTML page (figures embedded as PNG data URIs) and its figures."""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_text
from ..train.optim import describe_optimizer, describe_schedule
from .measure import BOX_IOU_FRACTION, METRIC_LABELS, TRAIN_STEP
from .results import GridPictures, StudyResults, variant_name
from .stats import Interval

__all__ = ["write_report"]

Figure = Callable[[str, str], str]  # (figure key, caption) -> the <figure> element, or "" when it was not drawn

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2433;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}th,td{border:1px solid #ccd;padding:.35em .6em;
text-align:right}th{background:#f2f4f8}td:first-child,th:first-child{text-align:left}
.verdict{padding:1em 1.2em;border-radius:6px;font-size:1.05em;margin:1em 0}
.supported{background:#e6f6ea;border:1px solid #7cc48a}.not-supported{background:#fbe9e9;border:1px solid #d98c8c}
.undecided{background:#fdf6e3;border:1px solid #e0c068}
code,pre{background:#f4f5f7;border-radius:4px;padding:.1em .3em}pre{padding:.6em;overflow-x:auto}
figure{margin:1em 0}figcaption{color:#556;font-size:.9em}img{max-width:100%}.small{color:#667;font-size:.88em}
"""

# Logs one line the report test reads; reports broken images as console errors.
_SELF_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  if (broken.length) { console.error('attnlab-report: ' + broken.length + ' image(s) failed to load'); }
  console.log('attnlab-report-ok tables=' + document.getElementsByTagName('table').length +
              ' images=' + (imgs.length - broken.length));
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def _ci(d: Interval | None, digits: int = 3) -> str:
    if d is None:
        return "–"
    if not d.has_bounds:
        return _num(d.mean, digits)
    return f"{_num(d.mean, digits)} <span class='small'>[{_num(d.low, digits)}, {_num(d.high, digits)}]</span>"


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _bar_chart(path: Path, title: str, series: dict[str, Interval | None], ylabel: str) -> Path | None:
    from ..viz import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure

    names = [n for n, d in series.items() if d]
    if not names:
        return None
    bars = [series[n] for n in names]
    lows = [b.mean - b.low if b.has_bounds else 0 for b in bars]
    highs = [b.high - b.mean if b.has_bounds else 0 for b in bars]
    fig = Figure(figsize=(6, 3.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    colors = ["#8a94a6" if n == "vanilla" else "#3b7dd8" for n in names]
    ax.bar(names, [b.mean for b in bars], yerr=[lows, highs], capsize=4, color=colors)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _figures(out: Path, results: StudyResults, grid: GridPictures) -> dict[str, Path]:
    """The PNG figures under ``OUT/figures``, by key (a chart with nothing to show is left out)."""
    from ..viz import compare_grid

    fdir, models, cam = out / "figures", results.models, results.cam
    primary = METRIC_LABELS[results.primary_metric]
    charts = {
        "accuracy": ("Test accuracy (95% interval)", {n: m.accuracy for n, m in models.items()}, "accuracy"),
        "gradcam_epg": (f"{cam}: {primary} (95% interval)",
                        {n: m.cam.get(results.primary_metric) for n, m in models.items()}, primary),
        "attention_epg": (f"Attention maps: {primary} (95% interval)",
                          {n: m.attention.get(results.primary_metric) for n, m in models.items() if m.attention},
                          primary),
    }
    figs = {key: _bar_chart(fdir / f"{key}.png", *chart) for key, chart in charts.items()}
    figs = {key: path for key, path in figs.items() if path}
    if grid.maps:
        figs["grid"] = compare_grid(grid.images, grid.maps, titles=grid.titles, out_path=fdir / "grid.png",
                                    suptitle=f"Same test images: {cam} (ground-truth class) and attention maps",
                                    cell_size=1.6)
    return figs


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table id='{table_id}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _results_tables(results: StudyResults) -> str:
    """Two tables: accuracy and cost; localisation of the CAM maps and of the attention maps."""
    cost_rows, loc_rows = [], []
    for name, m in results.models.items():
        c = m.cost
        cost_rows.append([_e(name), _ci(m.accuracy)] + [
            _num(getattr(c, k, None), d) for k, d in (("params", 0), ("mflops", 1), ("infer_img_s", 0),
                                                      ("infer_time_ratio", 2), ("train_img_s", 0),
                                                      ("train_time_ratio", 2))] + [_num(m.seconds_per_epoch, 1)])
        for kind, d in ((results.cam, m.cam), ("attention map", m.attention)):
            if d:
                loc_rows.append([_e(name), _e(kind)] + [_ci(d.get(k)) for k in METRIC_LABELS])
    cost = _table("results", ["model", "test accuracy", "params", "MFLOPs", "inference img/s",
                              "inference time ×vanilla", "training img/s", "training step ×vanilla", "s/epoch"], cost_rows)
    loc = _table("localisation", ["model", "map", *METRIC_LABELS.values()], loc_rows)
    return f"<h3>Accuracy and cost</h3>{cost}<h3>Localisation against the ground-truth boxes and masks</h3>{loc}"


def _gains_table(results: StudyResults) -> str:
    rows = "".join(f"<tr><td>{_e(n)}</td><td>{_ci(g)}</td><td>{_e(g.method)}</td></tr>"
                   for n, g in results.gains.items())
    return (f"<table id='gains'><thead><tr><th>model</th><th>gain in {_e(results.cam)} "
            f"{_e(METRIC_LABELS[results.primary_metric])} over vanilla</th><th>interval</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _shown(key: str, value: Any) -> str:
    """A preset or training value as the page shows it."""
    if value is None:
        return "all" if key.startswith("limit") else "none"
    if key == "attentions":
        return ", ".join(variant_name(a) for a in value)
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _budget(results: StudyResults) -> str:
    """The training budget every run had, in words: epochs, batch, optimiser, schedule, data."""
    t = results.train
    words = (f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}, batch {t.batch_size}, {describe_optimizer(t.optimizer, t.lr, t.momentum, t.weight_decay)}"
             f"; {describe_schedule(t.warmup_epochs)}")
    if t.label_smoothing:
        words += f"; label smoothing {t.label_smoothing:g}"
    return words + ("; training augmentation" if t.augment else "; no training augmentation")


def _data_line(results: StudyResults) -> str:
    t = results.train
    train = f"the first {results.n_train:,}" if t.limit_train else f"all {results.n_train:,}"
    test = f"the first {results.n_test:,}" if t.limit_test else f"all {results.n_test:,}"
    return f"{train} training images, accuracy on {test} test images"


def _header(results: StudyResults) -> str:
    """The title, the preset (its description only when it ran as defined) and the budget actually run."""
    p = results.preset
    changed = p.overrides()
    if changed:
        what = "; ".join(f"{_e(k)} {_e(_shown(k, b))} (preset: {_e(_shown(k, a))})" for k, (a, b) in changed.items())
        preset = f"preset <b>{_e(p.name)}</b>, changed for this run: {what}"
    else:
        preset = f"preset <b>{_e(p.name)}</b> ({_e(p.description)})"
    return (f"<h1>Does attention make a CNN look at the object?</h1>\n<p class='small'>attnlab study, {preset}.</p>\n"
            f"<p class='small' id='budget'>Budget run: {_e(_budget(results))}; {_e(_data_line(results))}; "
            f"{results.seeds} seed{'s' if results.seeds > 1 else ''}.</p>")


def _question(results: StudyResults) -> str:
    cam = _e(results.cam)
    return f"""<h2>The question</h2>
<p>The tutorial that started attnlab closes on an observation: <i>attention models tend to focus more tightly on
the target object and ignore background clutter compared to vanilla CNNs.</i> This study tests it on
{_e(results.train.dataset)}, whose test images carry the ground-truth box and mask of their object. The primary
measure is the <b>energy-based pointing game</b> of {cam} for the true class: the fraction of the map's energy inside
the object's box (Wang et al. 2020). The pointing game, the box IoU of the thresholded map (Grad-CAM protocol,
threshold at {BOX_IOU_FRACTION:.0%} of the maximum), MaxBoxAccV2 and PxAP (Choe et al. 2020) are reported beside it, for {cam} and for the
modules' own spatial attention maps where a module has one.</p>"""


def _verdict_section(results: StudyResults) -> str:
    v = results.verdict
    return f"""<h2>Verdict</h2>
<div class="verdict {v.label.replace(' ', '-')}" id="verdict"><b>{_e(v.label.capitalize())}.</b> {_e(v.text)}</div>
{_gains_table(results)}
<p class="small">{_e(v.rule)}</p>"""


def _results_section(results: StudyResults, fig: Figure) -> str:
    p, cam = results.preset, results.cam
    methods = {"accuracy": {m.accuracy.method for m in results.models.values()},
               "localisation": {i.method for m in results.models.values() for i in m.cam.values()}}
    intervals = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in methods.items() if v)
    return f"""<h2>Results</h2>
{_results_tables(results)}
<p class="small">Intervals in brackets: {_e(intervals)}.
Localisation is scored on {results.n_localisation:,} test images. Throughput was measured side by side in
one process (paired rounds, median of {p.repeats}), inference at batch {p.throughput_batch} and training steps
({_e(TRAIN_STEP)}) at batch {p.train_batch}; "×vanilla" is the time ratio to the vanilla network.</p>
{fig('accuracy', 'Test accuracy of each model.')}
{fig('gradcam_epg', f'{cam} energy pointing game: the share of the map inside the object box (higher: tighter on '
                    'the object).')}
{fig('attention_epg', "The modules' own spatial maps (mean over the network's attention modules), same measure.")}

<h2>Where the networks look</h2>
{fig('grid', f'Rows: the same test images. Columns: the input, then each model’s {cam} for the true class and, '
             'for modules with a spatial map, the mean attention map.')}"""


def _setup_section(results: StudyResults) -> str:
    p, t, env = results.preset, results.train, results.environment
    rows = [("data", f"{t.dataset}{' ' + str(t.dataset_kwargs) if t.dataset_kwargs else ''}: {_data_line(results)}"),
            ("models", f"{t.model} with {_shown('attentions', p.attentions)} (same backbone, seeds, data order "
                       "and budget)"),
            ("budget", _budget(results)), ("seeds", _shown("seeds", p.seeds)),
            ("machine", f"{env.machine}; {env.platform}"),
            ("versions", f"attnlab {env.attnlab}, torch {env.torch}, python {env.python}")]
    body = "".join(f"<tr><td>{k}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"""<h2>Setup</h2>
<table id="setup"><tbody>{body}
<tr><td>command</td><td><code>{_e(results.command)}</code></td></tr>
<tr><td>wall-clock</td><td>{results.wall_seconds:.0f} s</td></tr>
</tbody></table>
<p class="small">Every figure is also in <code>results.json</code> beside this page.</p>"""


def _figure_html(figs: dict[str, Path]) -> Figure:
    def fig(key: str, caption: str) -> str:
        if key not in figs:
            return ""
        return (f"<figure><img src='{_png_uri(figs[key])}' alt='{_e(caption)}'>"
                f"<figcaption>{_e(caption)}</figcaption></figure>")

    return fig


def write_report(out: str | os.PathLike, results: StudyResults, grid: GridPictures) -> Path:
    """Write ``OUT/index.html`` (self-contained) and ``OUT/figures/*.png``; returns the page's path.

    Every fact the page states is read from ``results`` (the preset and budget that ran, the optimiser, the
    verdict and its rule, the intervals' methods) and ``grid`` (the pictures of the same test images).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = _figure_html(_figures(out, results, grid))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnlab study: does attention look at the object?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
{_header(results)}

{_question(results)}

{_verdict_section(results)}

{_results_section(results, fig)}

{_setup_section(results)}
<script>{_SELF_CHECK}</script>
</body></html>
"""
    return atomic_write_text(out / "index.html", page)
