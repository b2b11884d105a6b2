import json
import math

import pytest
import torch

from attnlab.study import decide
from attnlab.study.measure import METRIC_LABELS, PER_IMAGE
from attnlab.study.stats import Interval, t_test_p
from attnlab.study.verdict import (
    AUC_MARGIN,
    CLAIM_HALVES,
    CLAIM_LABELS,
    PRACTICAL_MARGIN,
    SHARE_MARGIN,
    Evidence,
    combine_conditions,
    decide_claim,
)


def g(mean, low, high):
    return Interval(mean, low, high, n=3, method="test")


def test_one_seed_is_undecided_whatever_the_images_say():
    v = decide({"se": g(0.2, 0.1, 0.3), "cbam": g(0.2, 0.1, 0.3), "eca": g(0.1, 0.05, 0.2)}, seeds=1)
    assert v.label == "undecided" and "one training run" in v.text and "3 of 3" in v.text


def test_majority_significantly_better_is_supported():
    v = decide({"se": g(0.05, 0.02, 0.08), "cbam": g(0.06, 0.01, 0.1), "eca": g(0.01, -0.02, 0.04)}, seeds=3)
    assert v.label == "supported" and "2 of 3" in v.text


def test_majority_significantly_worse_is_not_supported():
    v = decide({"se": g(-0.05, -0.08, -0.02), "cbam": g(-0.06, -0.1, -0.01), "eca": g(0.01, -0.02, 0.04)}, seeds=3)
    assert v.label == "not supported" and "less" in v.text


def test_no_practical_difference_is_not_supported():
    v = decide({"se": g(0.0, -0.005, 0.006), "cbam": g(0.001, -0.004, 0.007), "eca": g(0.0, -0.01, 0.2)}, seeds=2)
    assert v.label == "not supported" and "margin" in v.text


def test_mixed_is_undecided():
    v = decide({"se": g(0.05, 0.02, 0.08), "cbam": g(-0.06, -0.1, -0.01), "eca": g(0.01, -0.05, 0.08),
                "bam": g(0.0, -0.1, 0.1)}, seeds=3)
    assert v.label == "undecided"


def test_the_margin_is_one_parameter_and_the_rule_states_it():
    gains = {"se": g(0.0, -0.015, 0.015), "cbam": g(0.0, -0.015, 0.015)}
    assert decide(gains, seeds=3).label == "undecided"  # beyond the default margin
    v = decide(gains, seeds=3, margin=0.02)
    assert v.label == "not supported" and "±0.02" in v.text and "±0.02" in v.rule
    assert f"±{PRACTICAL_MARGIN:g}" in decide(gains, seeds=3).rule


def test_the_cam_method_is_named_in_the_text():
    assert "Score-CAM energy" in decide({"se": g(0.1, 0.05, 0.2)}, seeds=1, cam="Score-CAM").text


# --- the claim as a reviewer would test it: decide_claim / combine_conditions --------------------------------------

CLEAR_GAIN = (0.045, 0.05, 0.055)  # t = 17.3 with 2 df: p = 0.0033, Holm over four 0.013
CLEAR_LOSS = (-0.045, -0.05, -0.055)
NO_DIFFERENCE = (0.001, -0.001, 0.0005)  # interval within +/- 0.01, p large
NOISY = (0.05, -0.03, 0.04)
MODELS = ("bam", "cbam", "eca", "se")


def ev(gains):
    return Evidence(tuple(gains))


def same(gains, models=MODELS):
    return {m: ev(gains) for m in models}


def both(focus, clutter, seeds=3):
    return decide_claim({"focus": focus, "ignore clutter": clutter}, seeds=seeds, condition="fragments")


def test_the_halves_and_their_primary_metrics_are_declared_in_code():
    assert list(CLAIM_HALVES) == ["focus", "ignore clutter"]
    focus, clutter = CLAIM_HALVES["focus"], CLAIM_HALVES["ignore clutter"]
    assert (focus.metric, focus.higher_is_better) == ("object_auc", True)
    assert (clutter.metric, clutter.higher_is_better) == ("clutter_share", False)
    assert focus.measures and clutter.measures and focus.margin == AUC_MARGIN and clutter.margin == SHARE_MARGIN
    for half in CLAIM_HALVES.values():
        assert half.metric in METRIC_LABELS and half.metric in PER_IMAGE


def test_evidence_is_signed_so_that_positive_supports_the_claim():
    # the clutter share is better lower: a model with less energy on clutter than vanilla gains
    e = Evidence.from_values("ignore clutter", [0.10, 0.12], [0.15, 0.14],
                             [torch.tensor([0.1, 0.2])] * 2, [torch.tensor([0.3, 0.1])] * 2)
    assert e.gains == pytest.approx((0.05, 0.02))
    assert torch.allclose(e.paired[0], torch.tensor([0.2, -0.1], dtype=torch.float64))
    assert Evidence.from_values("focus", [0.9], [0.8]).gains == pytest.approx((0.1,))
    with pytest.raises(ValueError, match="the model has 2 seeds and vanilla 1"):
        Evidence.from_values("focus", [0.9, 0.8], [0.8])
    with pytest.raises(ValueError, match="one tensor per seed"):
        Evidence.from_values("focus", [0.9, 0.8], [0.8, 0.7], [torch.zeros(3)], [torch.zeros(3)])
    with pytest.raises(ValueError, match="pair image by image"):
        Evidence.from_values("focus", [0.9], [0.8], [torch.zeros(3)], [torch.zeros(4)])
    with pytest.raises(ValueError, match="unknown half of the claim 'tight'"):
        Evidence.from_values("tight", [0.9], [0.8])


def test_supported_when_most_models_gain_significantly_on_both_halves():
    v = both(same(CLEAR_GAIN), same(CLEAR_GAIN))
    assert v.label == "supported"
    assert all(h.label == "supported" for h in v.halves.values())
    f = v.halves["focus"].models["se"]
    assert f.label == "supported" and f.reason == "significant gain"
    assert f.p == pytest.approx(t_test_p(CLEAR_GAIN)) and f.p_holm == pytest.approx(min(1, 4 * f.p))
    assert f.gain.mean == pytest.approx(0.05) and f.gain.low > 0 and f.gain.n == 3
    assert v.text.startswith("Supported on fragments.") and "4 of 4 attention models support it" in v.text
    for m in MODELS:  # every model's figures are in the sentences
        assert f"{m}, gain +0.050 [" in v.text


def test_not_supported_by_a_significant_loss():
    v = both(same(CLEAR_LOSS), same(CLEAR_GAIN))
    assert v.halves["focus"].label == "not supported" and v.label == "not supported"
    assert v.halves["focus"].models["cbam"].reason == "significant loss"


def test_not_supported_by_no_practical_difference():
    v = both(same(CLEAR_GAIN), same(NO_DIFFERENCE))
    clutter = v.halves["ignore clutter"]
    assert clutter.label == "not supported" and v.label == "not supported"
    assert clutter.models["eca"].reason == "no practical difference (within ±0.01)"
    # a wider margin for that half is one parameter, and the rule states it
    wide = decide_claim({"focus": same(NOISY), "ignore clutter": same((0.01, 0.02, 0.015))}, seeds=3,
                        margins={"ignore clutter": 0.1})
    assert wide.halves["ignore clutter"].models["se"].reason == "no practical difference (within ±0.1)"
    assert "±0.1)" in wide.rule and f"±{AUC_MARGIN:g})" in wide.rule


def test_undecided_when_gains_are_noisy_or_mixed():
    assert both(same(NOISY), same(CLEAR_GAIN)).label == "undecided"
    mixed = {"bam": ev(CLEAR_GAIN), "cbam": ev(CLEAR_GAIN), "eca": ev(CLEAR_LOSS), "se": ev(NOISY)}
    v = both(mixed, same(CLEAR_GAIN))
    assert v.halves["focus"].label == "undecided" and v.label == "undecided"  # 2 of 4 is no majority
    assert v.halves["focus"].models["se"].reason == "not significant after Holm"


def test_holm_turns_a_lone_p_of_003_among_four_models_into_undecided():
    lone = (0.035, 0.05, 0.065)  # t = 5.77 with 2 df: p = 0.029
    assert 0.025 < t_test_p(lone) < 0.035
    alone = decide_claim({"focus": {"se": ev(lone)}}, seeds=3).halves["focus"].models["se"]
    assert alone.label == "supported" and alone.p_holm == alone.p
    four = {"se": ev(lone), "bam": ev(NOISY), "cbam": ev((0.02, -0.04, 0.05)), "eca": ev((-0.03, 0.06, 0.01))}
    f = decide_claim({"focus": four}, seeds=3).halves["focus"].models["se"]
    assert f.p == pytest.approx(alone.p) and f.p_holm == pytest.approx(4 * f.p) and f.p_holm > 0.05
    assert f.label == "undecided"


def test_one_seed_is_undecided_by_rule_with_the_image_bootstrap_as_evidence():
    paired = (torch.full((40,), 0.2) + torch.linspace(-0.01, 0.01, 40),)
    ev1 = {m: Evidence((0.2,), paired) for m in MODELS}
    v = decide_claim({"focus": ev1, "ignore clutter": ev1}, seeds=1)
    assert v.label == "undecided" and "one training run" in v.text and "about that seed only" in v.text
    f = v.halves["focus"].models["se"]
    assert f.label == "undecided" and f.reason == "one seed" and math.isnan(f.p)
    (boot,) = f.per_seed_images
    assert boot.mean == pytest.approx(0.2) and boot.low > 0.19 and boot.high < 0.21
    assert "gain +0.200 at one seed" in v.text and "paired image bootstrap per seed +0.200 [" in v.text


def test_effect_sizes_and_per_seed_image_intervals_come_with_paired_differences():
    g = torch.Generator().manual_seed(0)
    paired = tuple(0.05 + 0.1 * torch.randn(200, generator=g) for _ in range(3))
    v = decide_claim({"focus": {"se": Evidence(CLEAR_GAIN, paired)}}, seeds=3)
    f = v.halves["focus"].models["se"]
    assert f.effect is not None and f.effect.n == 3 and 0.2 < f.effect.mean < 0.8 and f.effect.has_bounds
    assert len(f.per_seed_images) == 3 and all(i.low < i.mean < i.high for i in f.per_seed_images)
    assert "d_z +" in v.text
    assert v.halves["ignore clutter"].label == "undecided" and "no attention model" in v.halves["ignore clutter"].text


def test_combine_conditions_needs_every_condition():
    good = both(same(CLEAR_GAIN), same(CLEAR_GAIN))
    unsure = both(same(NOISY), same(CLEAR_GAIN))
    bad = both(same(CLEAR_LOSS), same(CLEAR_GAIN))
    assert combine_conditions({"fragments": good, "photos": good}).label == "supported"
    assert combine_conditions({"fragments": good, "photos": unsure}).label == "undecided"
    overall = combine_conditions({"fragments": good, "photos": unsure, "more": bad})
    assert overall.label == "not supported" and overall.condition == "overall"
    assert overall.halves["focus"].label == "not supported" and overall.halves["ignore clutter"].label == "supported"
    assert "supported on fragments, undecided on photos, not supported on more" in overall.text
    assert set(overall.conditions) == {"fragments", "photos", "more"}
    with pytest.raises(ValueError, match="at least one condition"):
        combine_conditions({})


def test_every_verdict_states_its_rule_and_is_json_ready():
    overall = combine_conditions({"fragments": both(same(CLEAR_GAIN), same(NO_DIFFERENCE))})
    for v in (overall, overall.conditions["fragments"]):
        assert v.label in CLAIM_LABELS and v.text
        assert "Holm" in v.rule and "±0.01" in v.rule and "One seed" in v.rule and "majority" in v.rule
    d = json.loads(json.dumps(overall.to_dict()))
    assert d["label"] == "not supported" and d["rule"] == overall.rule
    se = d["conditions"]["fragments"]["halves"]["focus"]["models"]["se"]
    assert se["label"] == "supported" and se["gain"]["mean"] == pytest.approx(0.05) and "p_holm" in se


def test_bad_requests_are_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown halves of the claim \['tightness'\]"):
        decide_claim({"tightness": same(CLEAR_GAIN)}, seeds=3)
    with pytest.raises(ValueError, match="practical margin of 'focus' must be a number >= 0"):
        decide_claim({"focus": same(CLEAR_GAIN)}, seeds=3, margins={"focus": -1.0})
    with pytest.raises(ValueError, match="at least one seed"):
        Evidence(())
