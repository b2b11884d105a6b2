"""The study: train vanilla and attention networks alike, measure accuracy, cost and localisation, and
write a report with a verdict on the seed's claim. Floor 5: the only place that knows about everything."""

from .presets import PRESETS, VANILLA_NAMES, StudyPreset, get_preset, parse_variants
from .results import Environment, GridPictures, ModelRow, RunRecord, StudyResults, variant_name
from .runner import StudyResult, run_study
from .stats import Interval
from .verdict import PRACTICAL_MARGIN, Verdict, decide

__all__ = ["PRACTICAL_MARGIN", "PRESETS", "Environment", "GridPictures", "Interval", "ModelRow", "RunRecord",
           "StudyPreset", "StudyResult", "StudyResults", "VANILLA_NAMES", "Verdict", "decide", "get_preset",
           "parse_variants", "run_study", "variant_name"]
