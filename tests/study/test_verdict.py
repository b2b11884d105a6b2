from attnlab.study import decide
from attnlab.study.stats import Interval
from attnlab.study.verdict import PRACTICAL_MARGIN


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
