"""The plain verdict on the seed's claim, from the numbers and their uncertainty.

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
from collections.abc import Mapping
from dataclasses import dataclass, field

from .stats import Interval

__all__ = ["PRACTICAL_MARGIN", "Verdict", "decide", "decision_rule"]

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
