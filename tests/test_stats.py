"""snnlib.stats against scipy.stats and hand-computed cases."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from snnlib import stats

A = [0.82, 0.79, 0.85, 0.80, 0.84]
B = [0.75, 0.77, 0.78, 0.74, 0.80]


def test_paired_difference_matches_scipy_ttest_rel():
    iv = stats.paired_difference(A, B)
    ref = sps.ttest_rel(A, B)
    ci = ref.confidence_interval(0.95)
    assert iv.estimate == pytest.approx(np.mean(np.subtract(A, B)))
    assert (iv.low, iv.high, iv.p_value) == pytest.approx((ci.low, ci.high, ref.pvalue))
    assert iv.n == 5 and iv.method == "paired t"


def test_paired_difference_by_hand():
    # d = [1, 2, 3]: mean 2, sd 1, se 1/sqrt(3), t_{0.975, 2} = 4.302653
    iv = stats.paired_difference([2, 4, 6], [1, 2, 3])
    half = 4.302652729911275 / math.sqrt(3)
    assert (iv.low, iv.high) == pytest.approx((2 - half, 2 + half))


def test_series_are_paired_by_seed_not_by_position():
    a = pd.Series([1.0, 2.0, 3.5], index=[0, 1, 2])
    b = pd.Series([3.0, 1.0, 2.0], index=[2, 0, 1])  # same seeds, other order
    assert stats.paired_difference(a, b).estimate == pytest.approx(np.mean([0.0, 0.0, 0.5]))
    with pytest.raises(ValueError, match="different seeds"):
        stats.paired_difference(a, pd.Series([1.0, 2.0, 3.0], index=[0, 1, 5]))


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        stats.mean_interval([])
    with pytest.raises(ValueError, match="confidence"):
        stats.mean_interval([1, 2], confidence=95)


def test_mean_interval_matches_scipy_and_degenerate_cases():
    iv = stats.mean_interval(A, confidence=0.9)
    ci = sps.ttest_1samp(A, 0).confidence_interval(0.9)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high))
    single = stats.mean_interval([0.7])
    assert (single.low, single.high, single.method) == (0.7, 0.7, "single value")
    flat = stats.mean_interval([0.5, 0.5, 0.5])
    assert (flat.low, flat.high, flat.p_value) == (0.5, 0.5, 0.0)


def test_tost_matches_two_one_sided_scipy_tests():
    margin = 0.1
    p, iv = stats.tost(A, B, margin)
    d = np.subtract(A, B)
    p_low = sps.ttest_1samp(d, -margin, alternative="greater").pvalue
    p_high = sps.ttest_1samp(d, margin, alternative="less").pvalue
    assert p == pytest.approx(max(p_low, p_high))
    ci = sps.ttest_rel(A, B).confidence_interval(0.90)
    assert (iv.low, iv.high, iv.confidence) == pytest.approx((ci.low, ci.high, 0.90))
    # the 90 % interval lies inside the margin exactly when p < 0.05
    assert (p < 0.05) == (-margin < iv.low and iv.high < margin)
    p_tight, _ = stats.tost(A, B, 0.01)
    assert p_tight > 0.05
    with pytest.raises(ValueError, match="margin"):
        stats.tost(A, B, 0.0)


def test_fieller_interval_solves_its_defining_equation():
    a, b = np.array([10.0, 12.0, 11.0, 13.0, 12.5]), np.array([5.0, 5.5, 5.2, 6.1, 6.0])
    iv = stats.ratio_interval(a, b)
    n = len(a)
    cov = np.cov(a, b, ddof=1) / n
    t = sps.t.ppf(0.975, n - 1)
    for r in (iv.low, iv.high):  # the bounds are where the Fieller statistic equals t
        lhs = (a.mean() - r * b.mean()) ** 2
        rhs = t * t * (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1])
        assert lhs == pytest.approx(rhs, rel=1e-9)
    assert iv.low < a.mean() / b.mean() < iv.high
    # an exact ratio gives a zero-width interval
    exact = stats.ratio_interval(2 * b, b)
    assert (exact.low, exact.high) == pytest.approx((2.0, 2.0))


def test_fieller_is_unbounded_when_the_denominator_may_be_zero():
    iv = stats.ratio_interval([1.0, 2.0, 1.5], [0.1, -0.2, 0.15])
    assert iv.low == -math.inf and iv.high == math.inf
