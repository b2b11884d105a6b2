import math

import pytest
import torch

from attnlab.study.stats import (
    EFFECT_OVER_SEEDS,
    betainc,
    bootstrap_mean_ci,
    cohens_dz,
    effect_size_over_seeds,
    holm,
    paired_bootstrap_ci,
    student_t_p,
    t_interval,
    t_test_p,
)


def test_t_interval_known_answer():
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(2) = 4.303: half-width 4.303 / sqrt(3)
    assert m == 2.0 and hi - m == pytest.approx(4.303 / math.sqrt(3)) and m - lo == pytest.approx(hi - m)


def test_t_interval_one_run_has_no_interval():
    m, lo, hi = t_interval([0.5])
    assert m == 0.5 and math.isnan(lo) and math.isnan(hi)


def test_bootstrap_interval_contains_mean_and_shrinks_with_n():
    g = torch.Generator().manual_seed(0)
    small = torch.rand(50, generator=g)
    large = torch.rand(5000, generator=g)
    m1, lo1, hi1 = bootstrap_mean_ci(small)
    m2, lo2, hi2 = bootstrap_mean_ci(large)
    assert lo1 < m1 < hi1 and lo2 < m2 < hi2
    assert hi2 - lo2 < (hi1 - lo1) / 3
    assert lo2 < 0.5 < hi2


def test_paired_bootstrap_sees_a_consistent_small_difference():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(400, generator=g)
    m, lo, hi = paired_bootstrap_ci(a + 0.02, a)
    assert m == pytest.approx(0.02) and lo > 0  # paired: the shared noise cancels
    with pytest.raises(ValueError):
        paired_bootstrap_ci(a, a[:10])


@pytest.mark.parametrize("a, b, x, expected", [
    (2.0, 1.0, 0.3, 0.3 ** 2),  # I_x(a, 1) = x^a
    (1.0, 3.0, 0.2, 1 - 0.8 ** 3),  # I_x(1, b) = 1 - (1 - x)^b
    (0.5, 0.5, 0.7, 2 / math.pi * math.asin(math.sqrt(0.7))),  # the arcsine law
    (5.0, 5.0, 0.5, 0.5),  # symmetry
    (3.0, 2.0, 0.9, 4 * 0.9 ** 3 - 3 * 0.9 ** 4),  # I_x(3, 2) = 4x^3 - 3x^4
])
def test_betainc_closed_forms(a, b, x, expected):
    assert betainc(a, b, x) == pytest.approx(expected, abs=1e-12)
    assert betainc(b, a, 1 - x) == pytest.approx(1 - expected, abs=1e-12)


@pytest.mark.parametrize("t, df, p", [
    (12.706205, 1, 0.05), (4.302653, 2, 0.05), (2.776445, 4, 0.05), (2.228139, 10, 0.05), (3.169273, 10, 0.01),
    (4.586894, 10, 0.001), (5.840909, 3, 0.01), (2.042272, 30, 0.05), (1.959966, 1e6, 0.05),
])
def test_student_t_p_matches_the_published_quantiles(t, df, p):
    assert student_t_p(t, df) == pytest.approx(p, rel=2e-6)
    assert student_t_p(-t, df) == student_t_p(t, df)


def test_student_t_p_rounded_table_values_and_closed_forms():
    assert student_t_p(2.776, 4) == pytest.approx(0.05, abs=1e-4)  # the brief's table values, 3 decimals
    assert student_t_p(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    for t in (0.1, 0.7, 1.0, 3.0, 30.0):
        assert student_t_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)  # Cauchy
        assert student_t_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert student_t_p(0.0, 5) == 1.0 and student_t_p(math.inf, 5) == 0.0 and math.isnan(student_t_p(math.nan, 5))
    with pytest.raises(ValueError, match="degrees of freedom must be > 0"):
        student_t_p(1.0, 0)


def test_t_test_p_by_hand():
    # mean 2, sd 1, n 3: t = 2 sqrt(3) = 3.4641 with 2 df: p = 1 - t / sqrt(2 + t^2) = 1 - 3.4641 / 3.7417
    t = 2 * math.sqrt(3)
    assert t_test_p([1.0, 2.0, 3.0]) == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert t_test_p(torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(t_test_p([1.0, 2.0, 3.0]))
    assert t_test_p([-1.0, 1.0]) == 1.0  # mean zero


def test_t_test_p_edge_cases():
    assert math.isnan(t_test_p([])) and math.isnan(t_test_p([0.3])) and math.isnan(t_test_p([0.1, math.nan]))
    assert t_test_p([0.02, 0.02, 0.02]) == 0.0  # every run agrees exactly: infinite t
    assert t_test_p([0.0, 0.0]) == 1.0  # no difference at all


def test_holm_textbook_example():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005})
    assert adj == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})


def test_holm_is_monotone_capped_and_skips_nan():
    adj = holm({"a": 0.4, "b": 0.3, "c": math.nan, "d": 0.001})
    assert math.isnan(adj["c"])
    assert adj["d"] == pytest.approx(0.003) and adj["b"] == pytest.approx(0.6) and adj["a"] == pytest.approx(0.6)
    assert holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}
    assert holm({"only": 0.03}) == {"only": 0.03} and holm({}) == {}
    with pytest.raises(ValueError, match=r"p-values lie in \[0, 1\], got 1.5 for 'x'"):
        holm({"x": 1.5})


def test_cohens_dz_by_hand():
    assert cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1
    assert cohens_dz(torch.tensor([1.0, math.nan, 2.0, 3.0])) == pytest.approx(2.0)  # undefined items left out
    assert math.isnan(cohens_dz([0.5])) and math.isnan(cohens_dz([0.0, 0.0]))
    assert cohens_dz([0.1, 0.1]) == math.inf and cohens_dz([-0.1, -0.1]) == -math.inf


def test_effect_size_over_seeds():
    iv = effect_size_over_seeds([torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 2.0]),
                                 torch.tensor([2.0, 3.0, 4.0, 5.0])])
    dz = [2.0, 1.0, 3.5 / math.sqrt(5 / 3)]
    m, lo, hi = t_interval(dz)
    assert iv.mean == pytest.approx(m) and iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi)
    assert iv.n == 3 and iv.method == EFFECT_OVER_SEEDS
    one = effect_size_over_seeds([[1.0, 2.0, 3.0]])
    assert one.mean == pytest.approx(2.0) and not one.has_bounds
    with pytest.raises(ValueError, match="at least one seed"):
        effect_size_over_seeds([])
