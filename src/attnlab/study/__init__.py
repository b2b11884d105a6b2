"""The study: train vanilla and attention networks alike, measure accuracy, cost and localisation, and
write a report with a verdict on the seed's claim. Floor 5: the only place that knows about everything."""

from .presets import PRESETS, StudyPreset, get_preset
from .runner import StudyResult, run_study, variant_name
from .verdict import Verdict, decide

__all__ = ["PRESETS", "StudyPreset", "StudyResult", "Verdict", "decide", "get_preset", "run_study", "variant_name"]
