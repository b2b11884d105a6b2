"""The study's report: one self-contained HTML page (figures embedded as PNG data URIs) and its figures."""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["write_report"]

METRIC_LABELS = {
    "energy_pointing_game": "energy pointing game",
    "pointing_game": "pointing game",
    "box_iou": "box IoU (15% of max)",
    "maxboxacc_v2": "MaxBoxAccV2",
    "pxap": "PxAP",
}

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


def _ci(d: dict[str, float] | None, digits: int = 3) -> str:
    if not d:
        return "–"
    if math.isnan(d.get("low", float("nan"))):
        return _num(d["mean"], digits)
    return f"{_num(d['mean'], digits)} <span class='small'>[{_num(d['low'], digits)}, {_num(d['high'], digits)}]</span>"


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _bar_chart(path: Path, title: str, series: dict[str, dict[str, float] | None], ylabel: str) -> Path | None:
    from ..viz.overlay import _mpl

    mpl = _mpl()
    from matplotlib.figure import Figure

    names = [n for n, d in series.items() if d]
    if not names:
        return None
    means = [series[n]["mean"] for n in names]
    lows = [series[n]["mean"] - series[n]["low"] if not math.isnan(series[n]["low"]) else 0 for n in names]
    highs = [series[n]["high"] - series[n]["mean"] if not math.isnan(series[n]["high"]) else 0 for n in names]
    fig = Figure(figsize=(6, 3.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    colors = ["#8a94a6" if n == "vanilla" else "#3b7dd8" for n in names]
    ax.bar(names, means, yerr=[lows, highs], capsize=4, color=colors)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    del mpl
    return path


def _figures(out: Path, results: dict[str, Any], grid: dict[str, Any]) -> dict[str, Path]:
    from ..viz import compare_grid

    figs: dict[str, Path] = {}
    fdir = out / "figures"
    models = results["models"]
    acc = _bar_chart(fdir / "accuracy.png", "Test accuracy (95% interval)",
                     {n: m["accuracy"] for n, m in models.items()}, "accuracy")
    if acc:
        figs["accuracy"] = acc
    epg = _bar_chart(fdir / "gradcam_epg.png", "Grad-CAM energy inside the object's box (95% interval)",
                     {n: (m["gradcam"] or {}).get("energy_pointing_game") for n, m in models.items()},
                     "energy pointing game")
    if epg:
        figs["gradcam_epg"] = epg
    att = _bar_chart(fdir / "attention_epg.png", "Attention maps: energy inside the object's box (95% interval)",
                     {n: (m["attention"] or {}).get("energy_pointing_game") for n, m in models.items()
                      if m["attention"]}, "energy pointing game")
    if att:
        figs["attention_epg"] = att
    if grid["maps"]:
        figs["grid"] = compare_grid(grid["images"], grid["maps"], titles=grid["titles"], out_path=fdir / "grid.png",
                                    suptitle="Same test canvases: Grad-CAM (ground-truth class) and attention maps",
                                    cell_size=1.6)
    return figs


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table id='{table_id}'><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _results_tables(results: dict[str, Any]) -> str:
    """Two tables: accuracy and cost; localisation of Grad-CAM and of the attention maps."""
    cost_rows, loc_rows = [], []
    for name, m in results["models"].items():
        c, g, a = m["cost"], m["gradcam"] or {}, m["attention"] or {}
        cost_rows.append([_e(name), _ci(m["accuracy"]), _num(c.get("params")), _num(c.get("mflops"), 1),
                          _num(c.get("infer_img_s"), 0), _num(c.get("infer_time_ratio"), 2),
                          _num(c.get("train_img_s"), 0), _num(c.get("train_time_ratio"), 2),
                          _num(m.get("seconds_per_epoch"), 1)])
        for kind, d in (("Grad-CAM", g), ("attention map", a)):
            if d:
                loc_rows.append([_e(name), kind] + [_ci(d.get(k)) for k in METRIC_LABELS])
    cost = _table("results", ["model", "test accuracy", "params", "MFLOPs", "inference img/s",
                              "inference time ×vanilla", "training img/s", "training step ×vanilla", "s/epoch"], cost_rows)
    loc = _table("localisation", ["model", "map", *METRIC_LABELS.values()], loc_rows)
    return f"<h3>Accuracy and cost</h3>{cost}<h3>Localisation against the ground-truth boxes and masks</h3>{loc}"


def _gains_table(results: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(n)}</td><td>{_ci(g)}</td><td>{_e(g.get('interval', ''))}</td></tr>"
                   for n, g in results["gains_vs_vanilla"].items())
    return ("<table id='gains'><thead><tr><th>model</th><th>gain in Grad-CAM energy pointing game over vanilla</th>"
            f"<th>interval</th></tr></thead><tbody>{rows}</tbody></table>")


def write_report(out: str | os.PathLike, results: dict[str, Any], grid: dict[str, Any]) -> Path:
    """Write ``OUT/index.html`` (self-contained) and ``OUT/figures/*.png``; returns the page's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = _figures(out, results, grid)
    p, env, v = results["preset"], results["environment"], results["verdict"]
    t = p["train"]
    klass = v["label"].replace(" ", "-")
    variants = ", ".join("vanilla" if a is None else a for a in p["attentions"])
    budget = (f"{t['epochs']} epochs, batch {t['batch_size']}, SGD (Nesterov, momentum 0.9) lr {t['lr']} with "
              f"{t['warmup_epochs']} warm-up epochs then cosine decay, weight decay {t['weight_decay']} "
              "(not on norm/bias)")
    limit = "all" if t["limit_train"] is None else f"the first {t['limit_train']:,}"
    limit_t = "all" if t["limit_test"] is None else f"the first {t['limit_test']:,}"

    def fig(key: str, caption: str) -> str:
        if key not in figs:
            return ""
        return (f"<figure><img src='{_png_uri(figs[key])}' alt='{_e(caption)}'>"
                f"<figcaption>{_e(caption)}</figcaption></figure>")

    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnlab study: does attention look at the object?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>Does attention make a CNN look at the object?</h1>
<p class="small">attnlab study, preset <b>{_e(p['name'])}</b> ({_e(p['description'])}).</p>

<h2>The question</h2>
<p>The tutorial that started attnlab closes on an observation: <i>attention models tend to focus more tightly on
the target object and ignore background clutter compared to vanilla CNNs.</i> This study tests it on Cluttered
Fashion-MNIST, where every test canvas carries the ground-truth box and mask of its one object among clutter made
of fragments of other items. The primary measure is the <b>energy-based pointing game</b> of Grad-CAM for the
true class: the fraction of the map's energy inside the object's box (Wang et al. 2020). The pointing game, the
box IoU of the thresholded map (Grad-CAM protocol, 15% of the maximum), MaxBoxAccV2 and PxAP (Choe et al. 2020)
are reported beside it, for Grad-CAM and for the modules' own spatial attention maps where a module has one.</p>

<h2>Verdict</h2>
<div class="verdict {klass}" id="verdict"><b>{_e(v['label'].capitalize())}.</b> {_e(v['text'])}</div>
{_gains_table(results)}
<p class="small">Decision rule: with two or more seeds, the claim is supported when a majority of the attention
models gain significantly (95% Student-t interval over seeds above zero), not supported when a majority lose
significantly or show no practical difference (interval within ±0.01); otherwise undecided. One seed cannot
separate attention from run-to-run variation, so a one-seed study is undecided by rule; its image-bootstrap
intervals are shown as evidence about that seed only.</p>

<h2>Results</h2>
{_results_tables(results)}
<p class="small">Intervals in brackets: {'Student-t 95% over seeds' if results['seeds'] > 1 else 'accuracy: Wilson 95% over test images; per-image metrics: bootstrap 95% over the scored images (one seed)'}.
Localisation is scored on {results['n_localisation']:,} test canvases. Throughput was measured side by side in
one process (paired rounds, median), inference at batch {p['throughput_batch']} and training steps
(forward, backward, SGD) at batch {p['train_batch']}; "×vanilla" is the time ratio to the vanilla network.</p>
{fig('accuracy', 'Test accuracy of each model.')}
{fig('gradcam_epg', 'Grad-CAM energy pointing game: the share of the map inside the object box (higher: tighter on the object).')}
{fig('attention_epg', "The modules' own spatial maps (mean over the network's attention modules), same measure.")}

<h2>Where the networks look</h2>
{fig('grid', 'Rows: the same test canvases. Columns: the input, then each model’s Grad-CAM for the true class and, for modules with a spatial map, the mean attention map.')}

<h2>Setup</h2>
<table id="setup"><tbody>
<tr><td>data</td><td>{_e(t['dataset'])} {_e(t['dataset_kwargs'] or '')}: {limit} training canvases, accuracy on {limit_t} test canvases</td></tr>
<tr><td>models</td><td>{_e(t['model'])} with {_e(variants)} (same backbone, seeds, data order and budget)</td></tr>
<tr><td>budget</td><td>{_e(budget)}</td></tr>
<tr><td>seeds</td><td>{_e(', '.join(map(str, p['seeds'])))}</td></tr>
<tr><td>machine</td><td>{_e(env['machine'])}; {_e(env['platform'])}</td></tr>
<tr><td>versions</td><td>attnlab {_e(env['attnlab'])}, torch {_e(env['torch'])}, python {_e(env['python'])}</td></tr>
<tr><td>command</td><td><code>{_e(results['command'])}</code></td></tr>
<tr><td>wall-clock</td><td>{results['wall_seconds']:.0f} s</td></tr>
</tbody></table>
<p class="small">Every figure is also in <code>results.json</code> beside this page.</p>
<script>{_SELF_CHECK}</script>
</body></html>
"""
    path = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
