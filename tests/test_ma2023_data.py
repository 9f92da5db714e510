"""The grasshopper recordings (nitime's wheel) and the simulated retina (scikit-image's photographs)."""

import numpy as np
import pytest

from snnlib.data import grasshopper, retina


def test_grasshopper_bins_and_split():
    env, spikes = grasshopper.load_grasshopper(1, bin_ms=2.0)
    assert env.shape == spikes.shape == (5000,)
    assert spikes.sum() == 929  # every spike in its own bin (shortest interval 3.2 ms)
    assert 0.0 < env.min() and env.max() <= 1.0
    _, s2 = grasshopper.load_grasshopper(2, bin_ms=2.0)
    assert s2.sum() == 868
    (tr_e, tr_s), (te_e, te_s) = grasshopper.split_time(env, spikes, 0.7)
    assert len(tr_e) == 3500 and len(te_s) == 1500 and tr_s.sum() + te_s.sum() == 929
    assert grasshopper.clips(tr_e, 100).shape == (100, 35)
    with pytest.raises(ValueError, match="1 or 2"):
        grasshopper.load_grasshopper(3)
    with pytest.raises(ValueError, match="multiple"):
        grasshopper.load_grasshopper(1, bin_ms=0.07)


def test_movie_is_deterministic_and_jittered():
    a = retina.natural_movie(50, "camera", seed=0)
    assert a.shape == (50, 64) and np.array_equal(a, retina.natural_movie(50, "camera", seed=0))
    assert not np.array_equal(a, retina.natural_movie(50, "camera", seed=1))
    assert 0 < np.abs(np.diff(a, axis=0)).mean()  # the window moves
    with pytest.raises(ValueError, match="image must be"):
        retina.load_image("lena")


def test_cells_respond_to_the_stimulus_with_refractoriness():
    cells = retina.make_cells(4, seed=0)
    movie = retina.natural_movie(400, "astronaut", seed=2)
    s = retina.simulate_responses(cells, movie, trials=40, seed=3)
    assert s.shape == (400, 40, 4) and s.dtype == np.uint8
    assert np.array_equal(s, retina.simulate_responses(cells, movie, trials=40, seed=3))
    # repeated trials share the stimulus: split halves' PSTHs correlate
    r = [np.corrcoef(s[:, :20, n].mean(1), s[:, 20:, n].mean(1))[0, 1] for n in range(4)]
    assert np.mean(r) > 0.3
    # post-spike filter: a spike right after a spike is rarer than the mean rate
    after = s[1:][s[:-1] == 1].mean()
    assert after < 0.5 * s.mean()
    # blank screen: only the baseline rate
    blank = retina.simulate_responses(cells, np.zeros((300, 64), np.float32), trials=20, seed=0)
    assert blank.mean() < s.mean()
