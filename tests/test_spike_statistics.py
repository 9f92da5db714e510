"""snnlib.spike_statistics (elephant underneath) on hand-computed cases."""

import math

import numpy as np
import pytest

from snnlib import spike_statistics as ss


def test_van_rossum_hand_cases():
    empty, one = [0] * 10, [0, 1] + [0] * 8
    # elephant's normalisation: one spike against nothing is at distance 1 (tau-independent)
    assert ss.van_rossum([one], [empty], tau=2.0)[0, 0] == pytest.approx(1.0)
    # spikes at 1.5 and 3.5 ms against 1.5 ms, tau 2: D^2 = (2 + 2e^-1) + 1 - 2 (1 + e^-1) = 1
    two = [0, 1, 0, 1] + [0] * 6
    assert ss.van_rossum([two], [one], tau=2.0)[0, 0] == pytest.approx(1.0)
    # one spike shifted by s ms: D^2 = 2 (1 - exp(-s / tau))
    shifted = [0, 0, 0, 1] + [0] * 6
    assert ss.van_rossum([one], [shifted], tau=4.0, dt=1.0)[0, 0] == pytest.approx(math.sqrt(2 * (1 - math.exp(-0.5))))
    assert ss.van_rossum([one, two], [one, empty, two], tau=2.0).shape == (2, 3)


def test_intervals_use_bin_width():
    assert sorted(ss.intervals([[1, 0, 0, 1, 0, 1], [0, 1, 1, 0, 0, 0]], dt=2.0)) == [2.0, 4.0, 6.0]
    assert len(ss.intervals([[0, 1, 0]])) == 0


def test_fano_factor_hand_case():
    trials = np.array([[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]])
    # window counts [1, 2, 1, 1]: var 0.1875 / mean 1.25 = 0.15; [2, 1, 0, 0]: 0.6875 / 0.75
    assert ss.fano_factor(trials, window=2) == pytest.approx((0.15 + 0.6875 / 0.75) / 2)
    assert ss.fano_factor(np.ones((3, 4), int), window=2) == 0.0
    with pytest.raises(ValueError, match="0/1"):
        ss.fano_factor(trials * 2, window=2)


def test_psth_correlation_and_constant_rate():
    a = np.array([[0, 1, 0, 1], [0, 1, 0, 0]])
    assert ss.psth(a).tolist() == [0, 1, 0, 0.5]
    assert ss.psth_correlation(a, a) == pytest.approx(1.0)
    assert math.isnan(ss.psth_correlation(np.zeros((2, 4)), a))
    ll = ss.constant_rate_log_likelihood(np.array([[1], [0], [0], [0]]), np.array([[1], [0]]))
    assert ll.ravel() == pytest.approx([math.log(0.25), math.log(0.75)])
    assert ss.isi_distance([1.0, 2.0], [2.0, 3.0]) == pytest.approx(1.0)
