from attnlab.study import decide


def g(mean, low, high):
    return {"mean": mean, "low": low, "high": high}


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
