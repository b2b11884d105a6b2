"""From scored runs to evidence on the claim: every figure with its interval, the baselines, each attention
model's gains over vanilla in both halves' primary metrics, the verdicts (the per-image paired differences are the
verdict's supporting evidence)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ..metrics import centre_prior_maps, uniform_maps
from .measure import PER_IMAGE, LocalisationScores
from .presets import StudyPreset
from .results import ConditionResults, RunRecord
from .stats import OVER_IMAGES, Interval, bootstrap_mean_ci
from .verdict import CLAIM_HALVES, ClaimVerdict, Evidence, combine_conditions, decide_claim

__all__ = ["BASELINES", "PAIRED_OVER_IMAGES", "claim_halves", "condition_gains", "decide_conditions",
           "score_intervals"]

#: The maps that show what chance looks like, scored on the same canvases as the models': name -> (n, h, w) -> maps.
BASELINES = {"uniform map": uniform_maps, "centre prior": centre_prior_maps}
#: How a one-seed gain's interval is made.
PAIRED_OVER_IMAGES = "paired bootstrap 95% over images, one seed"


def claim_halves() -> list[tuple[str, str, int]]:
    """Each half of the claim as (half, its primary metric, sign): the sign makes a positive gain support the
    claim (+1 where higher is better, -1 where lower is), as declared in :data:`attnlab.study.verdict.CLAIM_HALVES`."""
    return [(half, spec.metric, 1 if spec.higher_is_better else -1) for half, spec in CLAIM_HALVES.items()]


def _finite(values: Tensor) -> Tensor:
    """``values`` (N,) as float64 without the undefined (NaN) entries, e.g. the AUC of an empty mask."""
    v = values.double().flatten()
    return v[~torch.isnan(v)]


def score_intervals(scores: list[LocalisationScores], seeds: int) -> dict[str, Interval]:
    """Each localisation figure with its interval: over seeds, else (one run) over images where per image."""
    out = {}
    summaries = [s.summary() for s in scores]  # metric -> mean, one dict per run
    for metric in summaries[0]:
        values = [summary[metric] for summary in summaries]
        if seeds >= 2 and len(scores) >= 2:
            out[metric] = Interval.over_seeds(values)
        elif metric in PER_IMAGE and _finite(scores[0].per_image[metric]).numel():
            out[metric] = Interval(*bootstrap_mean_ci(_finite(scores[0].per_image[metric])), n=1, method=OVER_IMAGES)
        else:
            out[metric] = Interval(values[0], math.nan, math.nan, n=1, method="dataset-level figure, one run")
    return out


def _pairs(records: Mapping[str, list[RunRecord]]) -> dict[str, list[tuple[RunRecord, RunRecord]]]:
    """Attention variant -> its runs paired with vanilla's run of the same seed."""
    if "vanilla" not in records:
        return {}
    base = {r.seed: r for r in records["vanilla"]}
    return {name: [(r, base[r.seed]) for r in runs if r.seed in base]
            for name, runs in records.items() if name != "vanilla"}


def condition_gains(records: Mapping[str, list[RunRecord]], seeds: int) -> dict[str, dict[str, Interval]]:
    """Half -> attention variant -> its gain over vanilla in the half's primary metric (of the CAM maps), signed
    so that a positive gain supports the claim (the :class:`Evidence` the verdict decides on): a t-interval over
    seeds, or with one seed a paired bootstrap over images."""
    out: dict[str, dict[str, Interval]] = {}
    for half, per_model in _evidence(records).items():
        out[half] = {}
        for name, ev in per_model.items():
            if seeds >= 2:
                out[half][name] = Interval.over_seeds(list(ev.gains))
                continue
            d = _finite(ev.paired[0])  # the one seed's per-image differences, undefined images left out
            out[half][name] = (Interval(*bootstrap_mean_ci(d), n=1, method=PAIRED_OVER_IMAGES) if d.numel()
                               else Interval(math.nan, math.nan, math.nan, n=1, method=PAIRED_OVER_IMAGES))
    return out


def _evidence(records: Mapping[str, list[RunRecord]]) -> dict[str, dict[str, Evidence]]:
    """Half -> attention variant -> its :class:`Evidence`: per seed, the model's and vanilla's mean primary metric
    and their per-image values on the same canvases."""
    out: dict[str, dict[str, Evidence]] = {}
    for half, spec in CLAIM_HALVES.items():
        out[half] = {}
        for name, pairs in _pairs(records).items():
            if pairs and spec.metric in pairs[0][0].cam.per_image:
                out[half][name] = Evidence.from_values(
                    spec, [m.cam.summary()[spec.metric] for m, _ in pairs],
                    [v.cam.summary()[spec.metric] for _, v in pairs],
                    [m.cam.per_image[spec.metric] for m, _ in pairs], [v.cam.per_image[spec.metric] for _, v in pairs])
    return out


def decide_conditions(preset: StudyPreset, scored: Mapping[str, ConditionResults]) -> ClaimVerdict:
    """Decide the claim at each dataset's decisive condition (its highest clutter level; set on that condition's
    ``verdict``), then over the datasets; returns the overall verdict."""
    verdicts = {}
    for condition in preset.decisive().values():
        cond = scored[condition.key]
        records = {name: row.runs for name, row in cond.models.items()}
        cond.verdict = decide_claim(_evidence(records), len(preset.seeds), condition=condition.name)
        verdicts[condition.name] = cond.verdict
    return combine_conditions(verdicts)
