"""The study's report: one self-contained HTML page (figures embedded as PNG data URIs) and its figures."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_text
from ..train.optim import describe_optimizer, describe_schedule
from .figures import bar_chart, dose_response_chart
from .measure import BOX_IOU_FRACTION, METRIC_LABELS, TRAIN_STEP
from .presets import flag_of
from .report_html import _ci, _e, _num, _png_uri, _table
from .report_verdict import verdict_section
from .results import ConditionResults, GridPictures, StudyResults, variant_name
from .stats import Interval

__all__ = ["write_report"]

Figure = Callable[[str, str], str]  # (figure key, caption) -> the <figure> element, or "" when it was not drawn

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2433;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}th,td{border:1px solid #ccd;padding:.35em .6em;
text-align:right}th{background:#f2f4f8}td:first-child,th:first-child{text-align:left}
tr.baseline td{background:#f7f7f2;color:#555;font-style:italic}
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


def _levels(results: StudyResults) -> list[int]:
    return sorted({c.condition.clutter for c in results.conditions.values() if c.condition.clutter is not None})


def _dose_panels(results: StudyResults) -> dict[str, dict[str, dict[int, Interval]]]:
    """Half -> attention model -> clutter level -> its gain, over the levelled conditions."""
    panels: dict[str, dict[str, dict[int, Interval]]] = {half: {} for half in results.halves}
    for cond in results.conditions.values():
        if cond.condition.clutter is None:
            continue
        for half, gains in cond.gains.items():
            for model, gain in gains.items():
                panels.setdefault(half, {}).setdefault(model, {})[cond.condition.clutter] = gain
    return panels


def _figures(out: Path, results: StudyResults, grids: Mapping[str, GridPictures]) -> dict[str, Path]:
    """The PNG figures under ``OUT/figures``, by key (a chart with nothing to show is left out)."""
    from ..viz import compare_grid

    fdir, cam = out / "figures", results.cam
    decisive = [results.conditions[c.key] for c in results.preset.decisive().values()]
    figs: dict[str, Path | None] = {}
    for cond in decisive:
        figs[f"accuracy-{cond.condition.key}"] = bar_chart(
            fdir / f"accuracy-{cond.condition.key}.png", f"Test accuracy, {cond.condition.name} (95% interval)",
            {n: m.accuracy for n, m in cond.models.items()}, "accuracy")
    ylabels = {half: METRIC_LABELS.get(m, m) for half, m in results.halves.items()}
    figs["dose-response"] = dose_response_chart(fdir / "dose-response.png", _dose_panels(results), ylabels,
                                                f"{cam}: gain of each attention model over vanilla against clutter "
                                                "(95% intervals; above zero supports the claim)")
    for key, grid in grids.items():
        figs[key] = compare_grid(grid.images, grid.maps, titles=grid.titles, out_path=fdir / f"{key}.png",
                                 cell_size=1.6, boxes=grid.boxes, outlines=grid.clutter,
                                 cell_titles=grid.captions or None)
    return {key: path for key, path in figs.items() if path}


def _metric_keys(cond: ConditionResults) -> list[str]:
    """The localisation figures scored at ``cond``, in the report's order."""
    present = {k for m in cond.models.values() for k in m.cam} | {k for b in cond.baselines.values() for k in b}
    return [k for k in METRIC_LABELS if k in present]


def _localisation_table(results: StudyResults, cond: ConditionResults) -> str:
    """Every model's CAM and attention maps, and the two baselines (chance), scored on ``cond``'s canvases."""
    keys = _metric_keys(cond)
    rows, classes = [], []
    for name, m in cond.models.items():
        for kind, d in ((results.cam, m.cam), ("attention map", m.attention)):
            if d:
                rows.append([_e(name), _e(kind)] + [_ci(d.get(k)) for k in keys])
                classes.append("")
    for name, d in cond.baselines.items():
        rows.append([_e(name), "baseline (chance)"] + [_ci(d.get(k)) for k in keys])
        classes.append("baseline")
    return _table(f"localisation-{cond.condition.key}", ["model", "map", *(METRIC_LABELS[k] for k in keys)], rows,
                  classes)


def _accuracy_table(cond: ConditionResults) -> str:
    rows = [[_e(n), _ci(m.accuracy), _num(m.seconds_per_epoch, 1)] for n, m in cond.models.items()]
    return _table(f"accuracy-{cond.condition.key}", ["model", "test accuracy", "s/epoch"], rows)


def _cost_table(results: StudyResults) -> str:
    rows = []
    for name, c in results.cost.items():
        rows.append([_e(name)] + [_num(getattr(c, k, None), d) for k, d in (
            ("params", 0), ("mflops", 1), ("infer_img_s", 0), ("infer_time_ratio", 2), ("train_img_s", 0),
            ("train_time_ratio", 2))])
    return _table("results", ["model", "params", "MFLOPs", "inference img/s", "inference time ×vanilla",
                              "training img/s", "training step ×vanilla"], rows)


def _shown(key: str, value: Any) -> str:
    """A preset or training value as the page shows it."""
    if value is None:
        return "all" if key.startswith("limit") else "as configured" if key in ("datasets", "clutter_levels") else "none"
    if key == "attentions":
        return ", ".join(variant_name(a) for a in value)
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _schedule(results: StudyResults) -> str:
    """The training schedule every run had, in words: epochs, batch, optimiser, schedule, augmentation."""
    t = results.train
    words = (f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}, batch {t.batch_size}, "
             f"{describe_optimizer(t.optimizer, t.lr, t.momentum, t.weight_decay)}; {describe_schedule(t.warmup_epochs)}")
    if t.label_smoothing:
        words += f"; label smoothing {t.label_smoothing:g}"
    return words + ("; training augmentation" if t.augment else "; no training augmentation")


def _budget_items(results: StudyResults) -> list[tuple[str, str]]:
    """The budget actually run, item by item (read from the runs' conditions, not from the preset)."""
    conds = list(results.conditions.values())
    n_train = sorted({c.n_train for c in conds})
    n_test = sorted({c.n_test for c in conds})
    n_loc = sorted({c.n_localisation for c in conds})
    levels = _levels(results)
    return [("training", _schedule(results)),
            ("training canvases", f"{' / '.join(f'{n:,}' for n in n_train)} per run"),
            ("test canvases", f"{' / '.join(f'{n:,}' for n in n_loc)} scored for localisation per condition; "
                              f"accuracy on {' / '.join(f'{n:,}' for n in n_test)}"),
            ("seeds", f"{results.seeds} ({_shown('seeds', results.preset.seeds)})"),
            ("clutter levels", ", ".join(map(str, levels)) + " fragments per canvas" if levels else "none"),
            ("conditions", "; ".join(c.condition.name for c in conds)),
            ("runs", f"{sum(len(m.runs) for c in conds for m in c.models.values())} "
                     f"({len(conds)} conditions × {len(conds[0].models)} models × {results.seeds} seeds)")]


def _overrides(results: StudyResults) -> str:
    """Every field the command changed from the preset: flag, the preset's value, the value run."""
    changed = results.preset.overrides()
    if not changed:
        return f"<p class='small' id='overrides'>Run as the preset defines it ({_e(results.preset.description)}).</p>"
    rows = [[f"<code>{_e(flag_of(k) or k)}</code>", _e(_shown(k, a)), _e(_shown(k, b))] for k, (a, b) in changed.items()]
    return ("<p class='small'>Changed from the preset for this run:</p>"
            + _table("overrides", ["flag", "preset", "run"], rows))


def _header(results: StudyResults) -> str:
    """The title, the preset, the budget actually run, every override and the machine."""
    p, env = results.preset, results.environment
    budget = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in _budget_items(results))
    machine = f"{env.cpu or env.machine}; {env.threads} threads; GPU: {env.gpu or 'none'} (device {env.device})"
    return f"""<h1>Does attention make a CNN look at the object and ignore the clutter?</h1>
<p class='small'>attnlab study, preset <b>{_e(p.name)}</b>.</p>
<table id='budget'><thead><tr><th colspan='2'>Budget run</th></tr></thead><tbody>{budget}</tbody></table>
{_overrides(results)}
<p class='small' id='machine'>Machine: {_e(machine)}.</p>"""


def _question(results: StudyResults) -> str:
    cam = _e(results.cam)
    halves = "".join(f"<li><b>{_e(half)}</b>: {cam} {_e(METRIC_LABELS.get(m, m))} (<code>{_e(m)}</code>)</li>"
                     for half, m in results.halves.items())
    return f"""<h2>The question</h2>
<p>The tutorial that started attnlab closes on an observation: <i>attention models tend to focus more tightly on
the target object and ignore background clutter compared to vanilla CNNs.</i> The claim has two halves, and each
is decided from its own primary measure, declared here before any number:</p><ul id='primary'>{halves}</ul>
<p>The object AUC is the area under the ROC curve of the map's values as a classifier of object pixels against the
rest; the shares split the min-max normalised map's energy between the object, the clutter and the empty
background. Neither depends on an offset or a scale of the map, so a flat map scores as chance. Beside them: the
energy pointing game (the map's energy inside the box), the pointing game, the box IoU of the map thresholded at
{BOX_IOU_FRACTION:.0%} of its maximum, MaxBoxAccV2 and PxAP (Choe et al. 2020), for {cam} (true class) and for the
modules' own spatial attention maps. Two baselines, a uniform map and a centre prior (a Gaussian at the canvas
centre), are scored on the same canvases in every table: they show what chance looks like.</p>"""


def _results_section(results: StudyResults, fig: Figure) -> str:
    p = results.preset
    parts = ["<h2>Results by condition</h2>"]
    for cond in results.conditions.values():
        parts.append(f"<h3>{_e(cond.condition.name)}</h3>{_accuracy_table(cond)}"
                     f"<p class='small'>Localisation on {cond.n_localisation:,} test canvases of this condition:</p>"
                     f"{_localisation_table(results, cond)}{fig(f'accuracy-{cond.condition.key}', 'Test accuracy.')}")
    methods = sorted({i.method for c in results.conditions.values() for m in c.models.values()
                      for i in [m.accuracy, *m.cam.values()]})
    parts.append(f"<p class='small'>Intervals in brackets: {_e('; '.join(methods))}. Baselines: bootstrap over "
                 "images.</p><h3>Cost</h3>" + _cost_table(results) +
                 f"<p class='small'>Measured once, side by side in one process (paired rounds, median of {p.repeats}),"
                 f" inference at batch {p.throughput_batch} and training steps ({_e(TRAIN_STEP)}) at batch "
                 f"{p.train_batch}; ×vanilla is the time ratio to the vanilla network.</p>")
    return "\n".join(parts)


def _pictures_section(grids: Mapping[str, GridPictures], fig: Figure) -> str:
    return "<h2>Where the networks look</h2>\n" + "\n".join(fig(key, g.caption) for key, g in grids.items())


def _setup_section(results: StudyResults) -> str:
    p, t, env = results.preset, results.train, results.environment
    rows = [("models", f"{t.model} with {_shown('attentions', p.attentions)} (same backbone, seeds, data order "
                       "and budget)"),
            ("data", f"{', '.join(p.dataset_names)}{' ' + str(t.dataset_kwargs) if t.dataset_kwargs else ''}"),
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
        return (f"<figure id='fig-{_e(key)}'><img src='{_png_uri(figs[key])}' alt='{_e(caption)}'>"
                f"<figcaption>{_e(caption)}</figcaption></figure>")

    return fig


def write_report(out: str | os.PathLike, results: StudyResults, grids: Mapping[str, GridPictures]) -> Path:
    """Write ``OUT/index.html`` (self-contained) and ``OUT/figures/*.png``; returns the page's path.

    Every fact the page states is read from ``results`` (the preset and budget that ran, the overrides, the
    machine, the verdicts and their rule, the intervals' methods) and ``grids`` (the pictures).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = _figure_html(_figures(out, results, grids))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnlab study: does attention look at the object?</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
{_header(results)}

{_question(results)}

{verdict_section(results, fig)}

{_results_section(results, fig)}

{_pictures_section(grids, fig)}

{_setup_section(results)}
<script>{_SELF_CHECK}</script>
</body></html>
"""
    return atomic_write_text(out / "index.html", page)
