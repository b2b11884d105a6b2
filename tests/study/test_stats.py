import math

import pytest
import torch

from attnlab.study.stats import bootstrap_mean_ci, paired_bootstrap_ci, t_interval


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
