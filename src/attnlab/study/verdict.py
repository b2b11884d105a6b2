"""The plain verdict on the seed's claim, from the numbers and their uncertainty.

Two rules live here. :func:`decide` is the first study's rule (one metric, the energy pointing game, and a
majority of t-intervals); :func:`decide_claim` and :func:`combine_conditions` test the claim as a reviewer
would: both halves, each by its own primary metric declared in ``CLAIM_HALVES`` before any number, t-tests
over seeds Holm-corrected across the attention models, effect sizes, and per-image paired evidence
(:func:`claim_rule` says it in words).

The first rule follows.

The claim (the seed tutorial): attention models focus more tightly on the target object and ignore
background clutter, compared with vanilla CNNs. The primary measure is the energy-based pointing game
of Grad-CAM (the fraction of the map's energy inside the object's box: exactly "focus on the object,
ignore the clutter"), compared between each attention model and the vanilla one on the same test images.

Rules (stated in the report):

* With two or more seeds, each model's gain is the mean over seeds of its gain over vanilla, with a
  95% Student-t interval over seeds (run-to-run variation included). The claim is **supported** when
  the interval lies above zero for a majority of the attention models, **not supported** when it lies
  below zero for a majority, or lies within +/- ``PRACTICAL_MARGIN`` (no practical difference) for a majority;
  otherwise **undecided**.
* With one seed, run-to-run variation is not measured, and differences between single training runs
  cannot be told apart from it: the verdict is **undecided at this budget**, whatever the image
  bootstrap says (which is reported, as evidence about this seed only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from .measure import METRIC_LABELS
from .stats import OVER_IMAGES, Interval, bootstrap_mean_ci, effect_size_over_seeds, holm, t_test_p

__all__ = ["ALPHA", "AUC_MARGIN", "CLAIM_HALVES", "CLAIM_LABELS", "ClaimHalf", "ClaimVerdict", "Evidence",
           "HalfVerdict", "ModelFinding", "PRACTICAL_MARGIN", "SHARE_MARGIN", "Verdict", "claim_rule",
           "combine_conditions", "decide", "decide_claim", "decision_rule"]

#: Gains of the primary metric within +/- this margin count as no practical difference.
PRACTICAL_MARGIN = 0.01


def decision_rule(margin: float = PRACTICAL_MARGIN) -> str:
    """The rule :func:`decide` applies, in words (the report prints it under the verdict)."""
    return ("Decision rule: with two or more seeds, the claim is supported when a majority of the attention models "
            "gain significantly (95% Student-t interval over seeds above zero), not supported when a majority lose "
            f"significantly or show no practical difference (interval within ±{margin:g}); otherwise undecided. "
            "One seed cannot separate attention from run-to-run variation, so a one-seed study is undecided by "
            "rule; its image-bootstrap intervals are shown as evidence about that seed only.")


@dataclass
class Verdict:
    """The decision and its grounds.

    Attributes:
        label: "supported", "not supported" or "undecided".
        text: the verdict in sentences, with every model's gain and interval.
        per_model: model -> its gain over vanilla, as decided on.
        margin: the practical margin applied.
    """

    label: str
    text: str
    per_model: Mapping[str, Interval] = field(default_factory=dict)
    margin: float = PRACTICAL_MARGIN

    @property
    def rule(self) -> str:
        return decision_rule(self.margin)


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.3f}"


def decide(gains: Mapping[str, Interval], seeds: int, margin: float = PRACTICAL_MARGIN,
           cam: str = "Grad-CAM") -> Verdict:
    """Decide from each attention model's gain over vanilla.

    Args:
        gains: model -> the primary metric's gain over vanilla (seed-level interval when ``seeds`` >= 2,
            image-bootstrap interval of one seed otherwise).
        seeds: seeds per model.
        margin: gains within +/- margin count as no practical difference.
        cam: the CAM method's name as the verdict's sentences say it.
    """
    names = sorted(gains)
    if not names:
        return Verdict("undecided", "no attention model was measured", gains, margin)
    above = [n for n in names if gains[n].low > 0]
    below = [n for n in names if gains[n].high < 0]
    flat = [n for n in names if -margin < gains[n].low and gains[n].high < margin]
    detail = "; ".join(f"{n}: {_fmt(gains[n].mean)} [{_fmt(gains[n].low)}, {_fmt(gains[n].high)}]" for n in names)
    half = len(names) / 2
    if seeds < 2:
        lean = (f"at this one seed, {len(above)} of {len(names)} attention models put more of their {cam} energy "
                f"on the object than the vanilla network and {len(below)} less (image-bootstrap 95% intervals: "
                f"{detail})")
        return Verdict("undecided", "Undecided at this budget: one training run per model cannot separate the "
                       f"effect of attention from run-to-run variation. {lean[0].upper() + lean[1:]}. Run more "
                       "seeds (--preset full, or --seeds 0 1 2) to decide.", gains, margin)
    if len(above) > half:
        return Verdict("supported", f"Supported: {len(above)} of {len(names)} attention models put significantly more "
                       f"of their {cam} energy on the object than the vanilla network over {seeds} seeds "
                       f"(gain in energy pointing game, 95% t-interval over seeds: {detail}).", gains, margin)
    if len(below) > half or len(flat) > half:
        why = "less" if len(below) > half else f"no more (within the practical margin of ±{margin:g})"
        return Verdict("not supported", f"Not supported: the attention models put {why} of their {cam} energy on "
                       f"the object than the vanilla network over {seeds} seeds ({detail}).", gains, margin)
    return Verdict("undecided", f"Undecided at this budget: over {seeds} seeds the gains are mixed or their intervals "
                   f"include zero ({detail}).", gains, margin)



# --- the claim as a reviewer would test it ---------------------------------------------------------------------

SUPPORTED, NOT_SUPPORTED, UNDECIDED = "supported", "not supported", "undecided"
#: The three verdicts, for a model, a half, a condition and the claim.
CLAIM_LABELS = (SUPPORTED, NOT_SUPPORTED, UNDECIDED)
#: The significance level of every test, after Holm's correction.
ALPHA = 0.05
#: No practical difference in the object AUC: a gain whose interval lies within +/- this. 0.01 is one object /
#: other pixel pair in a hundred ranked the other way, 2% of the way from chance (0.5) to a perfect ranking
#: (1): below what a reader could see in a map, so a smaller gain would not make the focus "tighter".
AUC_MARGIN = 0.01
#: No practical difference in the clutter share. The share is a fraction of the map's energy, the unit of the
#: energy pointing game, so it takes that game's margin (``PRACTICAL_MARGIN``): one percentage point of the energy
#: moved off the clutter. At the default 4 fragments of 9 x 9 pixels the clutter covers at most 8% of a 64 x 64
#: canvas (a uniform map's share), so 0.01 is an eighth of what chance puts there: smaller would be invisible,
#: larger would call a reduction by a quarter of the chance level nothing at 4 fragments.
SHARE_MARGIN = PRACTICAL_MARGIN


@dataclass(frozen=True)
class ClaimHalf:
    """One half of the claim and the primary metric that judges it, fixed before any number is seen.

    Attributes:
        name: the half ("focus", "ignore clutter").
        metric: its primary metric (a ``measure.score_maps`` per-image key).
        higher_is_better: the direction in which the metric supports the claim.
        margin: gains within +/- margin (in the metric's units) are no practical difference.
        measures: what the metric measures, in one sentence (printed in the report).
    """

    name: str
    metric: str
    higher_is_better: bool
    margin: float
    measures: str

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def signed(self, model_minus_vanilla: Any) -> Any:
        """A difference (float or tensor) signed so that positive supports the claim."""
        return model_minus_vanilla if self.higher_is_better else -model_minus_vanilla


#: The claim's two halves, in the order the report shows them.
CLAIM_HALVES: Mapping[str, ClaimHalf] = MappingProxyType({
    "focus": ClaimHalf(
        "focus", "object_auc", True, AUC_MARGIN,
        "how well the map's values rank the object's pixels above the rest of the canvas (the pixel AUROC of the "
        "object: 0.5 is chance, 1 a perfect ranking), whatever the map's offset and scale"),
    "ignore clutter": ClaimHalf(
        "ignore clutter", "clutter_share", False, SHARE_MARGIN,
        "the share of the map's min-max normalised energy that lands on the clutter (lower: the map ignores the "
        "clutter), whatever the map's offset and scale"),
})


def _half(half: ClaimHalf | str) -> ClaimHalf:
    if isinstance(half, ClaimHalf):
        return half
    if half not in CLAIM_HALVES:
        raise ValueError(f"unknown half of the claim {half!r}: choose from {', '.join(map(repr, CLAIM_HALVES))}")
    return CLAIM_HALVES[half]


@dataclass(frozen=True, eq=False)
class Evidence:
    """One attention model's evidence on one half of the claim, in one condition.

    Attributes:
        gains: per seed, the model's primary metric minus vanilla's on the same seed and test images, signed
            so that positive supports the claim (:meth:`ClaimHalf.signed`).
        paired: optional, per seed, (N,) per-image differences model minus vanilla on the same images, signed
            likewise (NaN where the metric is undefined for an image: left out).
        model_values, vanilla_values: optional per-seed figures of the model and of vanilla (shown in the text).
    """

    gains: tuple[float, ...]
    paired: tuple[Tensor, ...] = ()
    model_values: tuple[float, ...] = ()
    vanilla_values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "gains", tuple(float(g) for g in self.gains))
        object.__setattr__(self, "paired", tuple(torch.as_tensor(d).flatten() for d in self.paired))
        if not self.gains:
            raise ValueError("evidence needs the gain of at least one seed")
        for what, seq in (("paired", self.paired), ("model_values", self.model_values),
                          ("vanilla_values", self.vanilla_values)):
            if seq and len(seq) != len(self.gains):
                raise ValueError(f"evidence has {len(self.gains)} seeds of gains but {len(seq)} of {what}")

    @classmethod
    def from_values(cls, half: ClaimHalf | str, model: Sequence[float], vanilla: Sequence[float],
                    model_per_image: Sequence[Tensor] | None = None,
                    vanilla_per_image: Sequence[Tensor] | None = None) -> Evidence:
        """Evidence from the raw figures: per-seed means of the model and of vanilla (same seeds, same order) and
        optionally their per-seed per-image values (N,) on the same images; signed by the half's direction."""
        h = _half(half)
        if len(model) != len(vanilla):
            raise ValueError(f"the model has {len(model)} seeds and vanilla {len(vanilla)}: pair them by seed")
        paired = ()
        if model_per_image is not None or vanilla_per_image is not None:
            model_per_image, vanilla_per_image = model_per_image or (), vanilla_per_image or ()
            if not len(model_per_image) == len(vanilla_per_image) == len(model):
                raise ValueError(f"per-image values need one tensor per seed for the model and for vanilla "
                                 f"({len(model)} seeds), got {len(model_per_image)} and {len(vanilla_per_image)}")
            paired = tuple(h.signed(_paired(m, v)) for m, v in zip(model_per_image, vanilla_per_image, strict=True))
        return cls(tuple(h.signed(float(m) - float(v)) for m, v in zip(model, vanilla, strict=True)), paired,
                   tuple(float(m) for m in model), tuple(float(v) for v in vanilla))


def _paired(model: Tensor, vanilla: Tensor) -> Tensor:
    model, vanilla = torch.as_tensor(model).double().flatten(), torch.as_tensor(vanilla).double().flatten()
    if model.shape != vanilla.shape:
        raise ValueError(f"per-image values must pair image by image: {model.numel()} vs {vanilla.numel()} images")
    return model - vanilla


@dataclass
class ModelFinding:
    """What one attention model shows on one half.

    Attributes:
        label: supported, not supported or undecided (for this model).
        reason: why, in a few words.
        gain: mean signed gain over seeds with its Student-t 95% interval (no bounds for one seed).
        p, p_holm: the t-test's p-value over seeds, and Holm-adjusted across the half's attention models.
        effect: Cohen's d_z of the per-image differences, mean over seeds with its t-interval (None without them).
        per_seed_images: per seed, the mean per-image paired difference with its bootstrap 95% interval.
        model_mean, vanilla_mean: the raw figures' means over seeds (NaN when not given).
    """

    label: str
    reason: str
    gain: Interval
    p: float
    p_holm: float
    effect: Interval | None = None
    per_seed_images: tuple[Interval, ...] = ()
    model_mean: float = float("nan")
    vanilla_mean: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "reason": self.reason, "gain": self.gain.to_dict(), "p": self.p,
                "p_holm": self.p_holm, "effect_size_dz": None if self.effect is None else self.effect.to_dict(),
                "per_seed_images": [i.to_dict() for i in self.per_seed_images], "model": self.model_mean,
                "vanilla": self.vanilla_mean}


@dataclass
class HalfVerdict:
    """The verdict on one half: its label, its sentences, and each attention model's finding (empty when the
    half was combined over conditions)."""

    half: ClaimHalf
    label: str
    text: str
    models: dict[str, ModelFinding] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"half": self.half.name, "metric": self.half.metric, "direction": self.half.direction,
                "measures": self.half.measures, "margin": self.half.margin, "label": self.label, "text": self.text,
                "models": {name: f.to_dict() for name, f in self.models.items()}}


@dataclass
class ClaimVerdict:
    """The verdict on the claim in one condition (or over several: then ``conditions`` holds each one's).

    Attributes:
        label: supported, not supported or undecided.
        text: the verdict in sentences, with every model's figures.
        halves: half name -> its verdict.
        seeds: seeds per model.
        alpha: the significance level applied after Holm's correction.
        condition: what was studied ("fragments", "photos"; "" when unnamed, "overall" when combined).
        conditions: condition -> its own verdict (only in a combined verdict).
    """

    label: str
    text: str
    halves: dict[str, HalfVerdict]
    seeds: int
    alpha: float = ALPHA
    condition: str = ""
    conditions: dict[str, ClaimVerdict] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        return claim_rule({name: h.half.margin for name, h in self.halves.items()}, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: labels, sentences, the rule, every figure (floats; NaN where there is none)."""
        return {"label": self.label, "text": self.text, "rule": self.rule, "seeds": self.seeds, "alpha": self.alpha,
                "condition": self.condition, "halves": {n: h.to_dict() for n, h in self.halves.items()},
                "conditions": {n: v.to_dict() for n, v in self.conditions.items()}}


def claim_rule(margins: Mapping[str, float] | None = None, alpha: float = ALPHA) -> str:
    """The rule :func:`decide_claim` and :func:`combine_conditions` apply, in words (printed in the report).

    Args:
        margins: half name -> its practical margin (default: each half's own).
        alpha: the significance level after Holm's correction.
    """
    margins = {name: h.margin for name, h in CLAIM_HALVES.items()} | dict(margins or {})
    halves = "; ".join(f"{name} by the {METRIC_LABELS.get(h.metric, h.metric)} ({h.direction}, no practical "
                       f"difference within ±{margins[name]:g})" for name, h in CLAIM_HALVES.items())
    return (f"Decision rule, declared before any number: each half of the claim is judged by one primary metric: "
            f"{halves}. For each attention model, its gain over vanilla is taken per seed on the same test images, "
            "signed so that positive supports the claim, and tested with a two-sided one-sample Student t-test over "
            "seeds; the p-values of the attention models are Holm-adjusted within each half. A model supports a half "
            f"when its adjusted p < {alpha:g} and its mean gain is positive; it does not when its adjusted "
            f"p < {alpha:g} and the gain is negative, or when the gain's 95% t-interval over seeds lies within the "
            "practical margin (no practical difference); otherwise it is undecided. A half is supported when a "
            "majority of the attention models support it, not supported when a majority do not, otherwise "
            "undecided. The claim is supported in a condition only when both halves are, not supported when either "
            "is not, otherwise undecided; over several conditions, supported only when every condition supports "
            "it, not supported when any does not. One seed cannot separate attention from run-to-run variation, so "
            "a one-seed study is undecided by rule; its per-image paired bootstrap intervals are shown as evidence "
            "about that seed only. Effect sizes (Cohen's d_z of the per-image paired differences, per seed, with a "
            "t-interval over seeds) and each seed's paired bootstrap interval are supporting evidence, not part "
            "of the decision.")


def _model_label(gain: Interval, p_holm: float, seeds: int, margin: float, alpha: float) -> tuple[str, str]:
    """One model's verdict on one half and its reason, by the rule of :func:`claim_rule`."""
    if seeds < 2 or gain.n < 2:
        return UNDECIDED, "one seed"
    if p_holm < alpha and gain.mean > 0:
        return SUPPORTED, "significant gain"
    if p_holm < alpha and gain.mean < 0:
        return NOT_SUPPORTED, "significant loss"
    if gain.has_bounds and -margin < gain.low and gain.high < margin:
        return NOT_SUPPORTED, f"no practical difference (within ±{margin:g})"
    return UNDECIDED, "not significant after Holm" if not math.isnan(p_holm) else "no test"


def _image_intervals(paired: Sequence[Tensor], n_boot: int) -> tuple[Interval, ...]:
    """Each seed's mean per-image paired difference with its bootstrap interval (NaN images left out)."""
    out = []
    for d in paired:
        d = d[~d.isnan()]
        if d.numel():
            out.append(Interval(*bootstrap_mean_ci(d, n_boot=n_boot), n=1, method=f"paired {OVER_IMAGES}, one seed"))
        else:
            out.append(Interval(float("nan"), float("nan"), float("nan"), n=1, method="no image to compare"))
    return tuple(out)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _findings(half: ClaimHalf, evidence: Mapping[str, Evidence], seeds: int, margin: float, alpha: float,
              n_boot: int) -> dict[str, ModelFinding]:
    """Every attention model's finding on one half, the p-values Holm-adjusted across the models."""
    names = sorted(evidence)
    pvalues = {n: t_test_p(evidence[n].gains) for n in names}
    adjusted = holm(pvalues)
    out = {}
    for n in names:
        ev = evidence[n]
        gain = Interval.over_seeds(list(ev.gains))
        label, reason = _model_label(gain, adjusted[n], seeds, margin, alpha)
        out[n] = ModelFinding(label, reason, gain, pvalues[n], adjusted[n],
                              effect_size_over_seeds(ev.paired) if ev.paired else None,
                              _image_intervals(ev.paired, n_boot), _mean(ev.model_values), _mean(ev.vanilla_values))
    return out


def _majority(labels: Sequence[str]) -> str:
    """A half's verdict from its models' verdicts: a strict majority decides, else undecided."""
    for label in (SUPPORTED, NOT_SUPPORTED):
        if sum(lab == label for lab in labels) > len(labels) / 2:
            return label
    return UNDECIDED


def _all_of(labels: Sequence[str]) -> str:
    """Parts that must all hold (both halves, every condition): supported only when all are, not supported when
    any is not, else undecided."""
    if labels and all(lab == SUPPORTED for lab in labels):
        return SUPPORTED
    return NOT_SUPPORTED if NOT_SUPPORTED in labels else UNDECIDED


def _num(v: float, signed: bool = True) -> str:
    if math.isnan(v):
        return "n/a"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _p(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.3g}"


def _iv(i: Interval) -> str:
    return f"{_num(i.mean)} [{_num(i.low)}, {_num(i.high)}]" if i.has_bounds else _num(i.mean)


def _model_text(name: str, half: ClaimHalf, f: ModelFinding) -> str:
    """One model's figures on one half, in words."""
    label = METRIC_LABELS.get(half.metric, half.metric)
    parts = [f"{name}: {label} {_num(f.model_mean, False)} vs vanilla {_num(f.vanilla_mean, False)}"
             if not math.isnan(f.model_mean) else name]
    if f.gain.n >= 2:
        parts.append(f"gain {_iv(f.gain)} over {f.gain.n} seeds, p = {_p(f.p)} (Holm {_p(f.p_holm)})")
    else:
        parts.append(f"gain {_num(f.gain.mean)} at one seed")
    if f.effect is not None:
        parts.append(f"d_z {_iv(f.effect)}")
    if f.per_seed_images:
        parts.append("paired image bootstrap per seed " + ", ".join(_iv(i) for i in f.per_seed_images))
    return ", ".join(parts) + f": {f.label} ({f.reason})"


def _half_verdict(half: ClaimHalf, evidence: Mapping[str, Evidence], seeds: int, alpha: float,
                  n_boot: int) -> HalfVerdict:
    """The verdict on one half from every attention model's evidence."""
    head = (f"{half.name.capitalize()} ({METRIC_LABELS.get(half.metric, half.metric)}, {half.direction}; gains "
            "signed so that positive supports the claim)")
    if not evidence:
        return HalfVerdict(half, UNDECIDED, f"{head}: undecided: no attention model was measured on it.")
    models = _findings(half, evidence, seeds, half.margin, alpha, n_boot)
    labels = [f.label for f in models.values()]
    label = _majority(labels) if seeds >= 2 else UNDECIDED
    count = (f"{labels.count(SUPPORTED)} of {len(labels)} attention models support it and "
             f"{labels.count(NOT_SUPPORTED)} do not, over {seeds} seed{'s' if seeds != 1 else ''}")
    details = "; ".join(_model_text(n, half, f) for n, f in models.items())
    return HalfVerdict(half, label, f"{head}: {label}: {count}. {details}.", models)


def _halves(margins: Mapping[str, float] | None) -> dict[str, ClaimHalf]:
    margins = dict(margins or {})
    unknown = sorted(set(margins) - set(CLAIM_HALVES))
    if unknown:
        raise ValueError(f"margins for unknown halves {unknown}: the halves are {', '.join(CLAIM_HALVES)}")
    for name, m in margins.items():
        if not (isinstance(m, (int, float)) and math.isfinite(m) and m >= 0):
            raise ValueError(f"the practical margin of {name!r} must be a number >= 0, got {m!r}")
    return {name: ClaimHalf(h.name, h.metric, h.higher_is_better, float(margins.get(name, h.margin)), h.measures)
            for name, h in CLAIM_HALVES.items()}


def decide_claim(per_model: Mapping[str, Mapping[str, Evidence]], seeds: int, condition: str = "",
                 margins: Mapping[str, float] | None = None, alpha: float = ALPHA, n_boot: int = 2000) -> ClaimVerdict:
    """Decide the claim in one condition, both halves, by the rule of :func:`claim_rule`.

    Args:
        per_model: half name (``CLAIM_HALVES``) -> attention model -> its :class:`Evidence` on that half's
            primary metric. A half with no evidence (e.g. no clutter masks) is undecided.
        seeds: seeds per model (fewer than two: undecided by rule).
        condition: the condition's name, used in the text ("fragments", "photos").
        margins: half name -> practical margin, overriding the half's own.
        alpha: the significance level after Holm's correction.
        n_boot: bootstrap resamples of each seed's per-image paired differences.

    Raises:
        ValueError: an unknown half, or a bad margin.
    """
    unknown = sorted(set(per_model) - set(CLAIM_HALVES))
    if unknown:
        raise ValueError(f"unknown halves of the claim {unknown}: the halves are {', '.join(CLAIM_HALVES)}")
    halves = {name: _half_verdict(h, per_model.get(name, {}), seeds, alpha, n_boot)
              for name, h in _halves(margins).items()}
    label = _all_of([h.label for h in halves.values()])
    where = f" on {condition}" if condition else ""
    lead = f"{label.capitalize()}{where}"
    if seeds < 2:
        lead = (f"Undecided at this budget{where}: one training run per model cannot separate the effect of "
                "attention from run-to-run variation; the per-image paired bootstrap intervals are evidence about "
                "that seed only. Run more seeds (--preset full, or --seeds 0 1 2) to decide")
    text = f"{lead}. " + " ".join(h.text for h in halves.values())
    return ClaimVerdict(label, text, halves, seeds, alpha, condition)


def combine_conditions(verdicts: Mapping[str, ClaimVerdict]) -> ClaimVerdict:
    """The overall verdict over conditions (e.g. clutter of fragments and of photographs): supported only when
    every condition supports the claim, not supported when any does not, otherwise undecided; each half
    likewise over the conditions.

    Raises:
        ValueError: no condition.
    """
    if not verdicts:
        raise ValueError("combine_conditions needs the verdict of at least one condition")
    first = next(iter(verdicts.values()))
    halves = {}
    for name in first.halves:
        labels = {cond: v.halves[name].label for cond, v in verdicts.items() if name in v.halves}
        label = _all_of(list(labels.values()))
        each = ", ".join(f"{lab} on {cond}" for cond, lab in labels.items())
        halves[name] = HalfVerdict(first.halves[name].half, label, f"{name.capitalize()}: {label} ({each}).")
    label = _all_of([v.label for v in verdicts.values()])
    each = ", ".join(f"{v.label} on {cond}" for cond, v in verdicts.items())
    over = f"{len(verdicts)} conditions" if len(verdicts) > 1 else "the one condition studied"
    text = f"{label.capitalize()} over {over} ({each}). " + " ".join(
        v.text for v in verdicts.values())
    return ClaimVerdict(label, text, halves, min(v.seeds for v in verdicts.values()), first.alpha, "overall",
                        dict(verdicts))
