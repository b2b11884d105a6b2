"""The study: train vanilla and attention networks alike on each condition (a dataset at a clutter level), measure
accuracy, cost and where their maps land (object, clutter, background), and write a report with a verdict on both
halves of the seed's claim. Floor 5: the only place that knows about everything."""

from .executor import RunJob, train_runs
from .presets import (
    CLUTTER_LEVELLED,
    PRESETS,
    VANILLA_NAMES,
    Condition,
    StudyPreset,
    get_preset,
    parse_clutter_levels,
    parse_variants,
)
from .results import (
    ConditionResults,
    Environment,
    GridPictures,
    ModelRow,
    RunRecord,
    StudyResults,
    variant_name,
)
from .runner import StudyResult, run_study
from .stats import Interval
from .verdict import CLAIM_HALVES, PRACTICAL_MARGIN, ClaimVerdict, Verdict, combine_conditions, decide, decide_claim

__all__ = ["CLAIM_HALVES", "CLUTTER_LEVELLED", "PRACTICAL_MARGIN", "PRESETS", "ClaimVerdict", "Condition",
           "ConditionResults", "Environment", "GridPictures", "Interval", "ModelRow", "RunJob", "RunRecord",
           "StudyPreset", "StudyResult", "StudyResults", "VANILLA_NAMES", "Verdict", "combine_conditions", "decide",
           "decide_claim", "get_preset", "parse_clutter_levels", "parse_variants", "run_study", "train_runs",
           "variant_name"]
