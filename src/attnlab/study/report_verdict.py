"""The report's verdict section: the overall verdict and its rule, each dataset's verdict at its decisive clutter
level with per-model verdicts, the gains at every level, the dose-response plot and the per-image evidence."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .measure import METRIC_LABELS
from .report_html import _ci, _e, _table
from .results import StudyResults
from .verdict import ClaimVerdict

__all__ = ["verdict_section"]

Figure = Callable[[str, str], str]


def _box(verdict: Any, box_id: str, title: str = "") -> str:
    """A verdict's label and text in its coloured box."""
    label = str(verdict.label)
    return (f'<div class="verdict {label.replace(" ", "-")}" id="{box_id}">{title}<b>{_e(label.capitalize())}.</b> '
            f"{_e(verdict.text)}</div>")


def _gains_table(results: StudyResults, half: str) -> str:
    """Each attention model's gain in ``half``'s primary metric at every condition (a column each)."""
    conds = list(results.conditions.values())
    models = list(dict.fromkeys(m for c in conds for m in c.gains.get(half, {})))
    rows = [[_e(m)] + [_ci(c.gains.get(half, {}).get(m)) for c in conds] for m in models]
    slug = half.replace(" ", "-")
    return _table(f"gains-{slug}", ["model", *(c.condition.name for c in conds)], rows)


def _paired_table(verdict: ClaimVerdict, half: str, key: str, seeds: tuple[int, ...]) -> str:
    """Per seed, each attention model's mean per-image paired difference from vanilla, with its interval."""
    findings = verdict.halves[half].models if half in verdict.halves else {}
    rows = [[_e(m)] + [_ci(i) for i in f.per_seed_images] for m, f in findings.items()]
    return _table(f"paired-{half.replace(' ', '-')}-{key}", ["model", *(f"seed {s}" for s in seeds)], rows)


def _findings_table(verdict: ClaimVerdict, key: str) -> str:
    """The per-model verdicts of one condition: each half, each model, its verdict and why, its gain, the raw and
    Holm-adjusted p-values and the effect size with its interval."""
    rows = [[_e(half), _e(model), f"{_e(f.label)} <span class='small'>({_e(f.reason)})</span>", _ci(f.gain),
             _p(f.p), _p(f.p_holm), _ci(f.effect)]
            for half, hv in verdict.halves.items() for model, f in hv.models.items()]
    return _table(f"per-model-{key}", ["half", "model", "verdict", "gain over vanilla (t 95% over seeds)", "p",
                                       "p (Holm)", "effect size d_z (t 95% over seeds)"], rows)


def _p(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.3g}"


def _decisive(results: StudyResults) -> str:
    """Each dataset's verdict at its decisive condition, with the per-model findings and the paired evidence."""
    parts = []
    for condition in results.preset.decisive().values():
        verdict = results.conditions[condition.key].verdict
        if verdict is None:
            continue
        parts.append(f"<h3>{_e(condition.name)} (decisive: the highest clutter level studied)</h3>"
                     + _box(verdict, f"verdict-{condition.key}") + _findings_table(verdict, condition.key))
        for half, metric in results.halves.items():
            parts.append(f"<p class='small'>Supporting evidence, {_e(half)}: per seed, the mean per-image paired "
                         f"difference from vanilla in {_e(METRIC_LABELS.get(metric, metric))} (signed so that a "
                         "positive difference supports the claim; bootstrap 95% over images).</p>"
                         + _paired_table(verdict, half, condition.key, results.preset.seeds))
    return "\n".join(parts)


def verdict_section(results: StudyResults, fig: Figure) -> str:
    """The whole verdict section (see the module's docstring)."""
    v = results.verdict
    gains = "\n".join(f"<p class='small'>Gain in {_e(results.cam)} {_e(METRIC_LABELS.get(m, m))} over vanilla "
                      f"({_e(half)}; positive supports the claim):</p>" + _gains_table(results, half)
                      for half, m in results.halves.items())
    return f"""<h2>Verdict</h2>
{_box(v, "verdict")}
<p class="small" id="rule">{_e(v.rule)}</p>
{_decisive(results)}
<h3>Dose and response: the gains at every clutter level</h3>
{gains}
{fig('dose-response', 'Gain of each attention model over vanilla against the clutter level, one panel per half of '
                      'the claim (95% intervals). An attention effect that exists should grow with clutter.')}"""
