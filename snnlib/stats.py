"""Statistics over seeds for the claims: paired intervals, equivalence (TOST), ratios.

Every comparative claim compares two arms run with the same seeds, so the seeds pair the runs:
arm A's value on seed s is compared with arm B's on seed s. All intervals here are t intervals
over seeds (Student's t with n - 1 degrees of freedom), computed by ``scipy.stats``:

* :func:`paired_difference` -- d_s = a_s - b_s; mean(d) +- t_{1-alpha/2, n-1} sd(d) / sqrt(n),
  and the paired t-test's p-value for mean(d) = 0 (``scipy.stats.ttest_rel``).
* :func:`mean_interval` -- one sample, mean(a) +- t sd(a) / sqrt(n) (``scipy.stats.ttest_1samp``).
* :func:`tost` -- two one-sided tests of |mean(d)| < margin: p = max(p(d > -margin), p(d < margin)),
  with the (1 - 2 alpha) interval of mean(d) that matches it (90 % for alpha = 0.05).
* :func:`ratio_interval` -- mean(a) / mean(b) with Fieller's interval for paired samples: the set of
  R with (ma - R mb)^2 <= t^2 (va - 2 R cab + R^2 vb), where va, vb, cab are the variances and the
  covariance of the two means. If g = t^2 vb / mb^2 >= 1 the denominator is not distinguishable
  from zero and the interval is unbounded (low = -inf, high = inf).

A single value (n = 1) has no interval: low = high = the value, method ``"single value"``.
Zero spread (every d_s equal) gives a zero-width interval at the mean, with p = 0 unless the mean
is 0 too, where scipy would return NaN.

Inputs are per-seed values: lists or arrays in the same seed order, or pandas Series indexed by
seed (aligned on the index, which must hold the same seeds in both).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval over ``n`` seeds."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str
    p_value: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _values(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} has no values: pass one value per seed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values ({arr.tolist()}); a run diverged or was not measured")
    return arr


def align(a, b) -> tuple[np.ndarray, np.ndarray]:
    """The two samples as float arrays paired by seed.

    pandas Series are aligned on their index (the seeds), which must be the same set in both;
    anything else is taken in the order given and must have the same length.
    """
    if hasattr(a, "loc") and hasattr(b, "loc"):
        if set(a.index) != set(b.index):
            raise ValueError(f"the two arms were run on different seeds: {sorted(a.index)} vs {sorted(b.index)}")
        b = b.loc[list(a.index)]
    a, b = _values(a, "arm A"), _values(b, "arm B")
    if a.shape != b.shape:
        raise ValueError(f"paired samples need one value per seed in each arm, got {a.size} and {b.size}")
    return a, b


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def mean_interval(a, *, confidence: float = 0.95) -> Interval:
    """Mean of ``a`` with its t interval (p-value of the test mean = 0)."""
    _check_confidence(confidence)
    a = _values(a, "sample")
    mean = float(a.mean())
    if a.size == 1:
        return Interval(mean, mean, mean, 1, confidence, "single value")
    if np.ptp(a) == 0:
        return Interval(mean, mean, mean, a.size, confidence, "t (zero spread)", 0.0 if mean != 0 else 1.0)
    result = sps.ttest_1samp(a, 0.0)
    ci = result.confidence_interval(confidence)
    return Interval(mean, float(ci.low), float(ci.high), a.size, confidence, "t", float(result.pvalue))


def paired_difference(a, b, *, confidence: float = 0.95) -> Interval:
    """Mean of a_s - b_s over seeds with its paired t interval and paired t-test p-value."""
    a, b = align(a, b)
    iv = mean_interval(a - b, confidence=confidence)
    method = "paired " + iv.method if iv.n > 1 else iv.method
    return Interval(iv.estimate, iv.low, iv.high, iv.n, confidence, method, iv.p_value)


def tost(a, b, margin: float, *, alpha: float = 0.05) -> tuple[float, Interval]:
    """Two one-sided paired t-tests of -margin < mean(a - b) < margin.

    Returns (p, interval): p = the larger one-sided p-value; the interval of mean(a - b) at
    confidence 1 - 2 alpha, which lies inside (-margin, margin) exactly when p < alpha.
    """
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin}")
    a, b = align(a, b)
    d = a - b
    iv = paired_difference(a, b, confidence=1 - 2 * alpha)
    if d.size == 1 or np.ptp(d) == 0:
        p = 0.0 if -margin < d.mean() < margin else 1.0
    else:
        lower = sps.ttest_1samp(d, -margin, alternative="greater").pvalue
        upper = sps.ttest_1samp(d, margin, alternative="less").pvalue
        p = float(max(lower, upper))
    return p, Interval(iv.estimate, iv.low, iv.high, iv.n, iv.confidence, "TOST " + iv.method, p)


def ratio_interval(a, b, *, confidence: float = 0.95) -> Interval:
    """mean(a) / mean(b) with Fieller's interval for paired samples (see the module docstring)."""
    _check_confidence(confidence)
    a, b = align(a, b)
    ma, mb, n = float(a.mean()), float(b.mean()), a.size
    if mb == 0:
        raise ValueError("the ratio's denominator arm has mean 0; compare differences instead")
    estimate = ma / mb
    if n == 1:
        return Interval(estimate, estimate, estimate, 1, confidence, "single value")
    cov = np.cov(a, b, ddof=1) / n
    va, vb, cab = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    t = float(sps.t.ppf(0.5 + confidence / 2, n - 1))
    g = t * t * vb / (mb * mb)
    if g >= 1:
        return Interval(estimate, -math.inf, math.inf, n, confidence, "Fieller (unbounded: mean B not distinct from 0)")
    # (mb^2 - t^2 vb) R^2 - 2 (ma mb - t^2 cab) R + (ma^2 - t^2 va) = 0
    qa = mb * mb - t * t * vb
    qb = ma * mb - t * t * cab
    qc = ma * ma - t * t * va
    disc = max(qb * qb - qa * qc, 0.0)
    low, high = sorted(((qb - math.sqrt(disc)) / qa, (qb + math.sqrt(disc)) / qa))
    return Interval(estimate, low, high, n, confidence, "Fieller (paired)")
