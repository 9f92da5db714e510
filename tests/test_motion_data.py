"""Tests for snnlib.data.motion: the moving-dot data set whose label lives in the order of the events.

The property that makes it "DVS-captured-like" is checked directly: two directions that differ only in
temporal order give (nearly) the same frame with one time bin, and clearly different frames with several.
"""

import numpy as np
import pytest
import torch

from snnlib.data import DVSSimulator, MovingDots, to_frames
from snnlib.data.motion import dot_movie

SENSOR = (34, 34, 2)
DURATION = 300_000
QUIET = DVSSimulator(threshold_sigma=0.03, noise_rate_hz=0.0, seed=3)  # mismatch on, no noise


def frames_of(events, n_bins):
    return to_frames(events, SENSOR, n_time_bins=n_bins, start_us=0, duration_us=DURATION + 1)


def crossing(angle, offset, **kwargs):
    """Events of one dot crossing the whole window on the QUIET sensor."""
    movie, times = dot_movie(angle, offset_px=offset, sigma_px=1.5, brightness=0.8, sensor_size=SENSOR, **kwargs)
    return QUIET.simulate(movie, times)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return MovingDots("train", n_samples=12, n_time_bins=4, seed=0, data_dir=tmp_path_factory.mktemp("d"),
                      progress=False)


def test_labels_shapes_and_event_ranges(small_set):
    assert len(small_set) == 12
    assert small_set.labels.tolist() == [i % 8 for i in range(12)]
    frames, label = small_set[9]
    assert frames.shape == (4, 2, 34, 34) and frames.dtype == torch.float32
    assert label == 1
    for i in range(len(small_set)):
        events = small_set.events(i)
        assert len(events) > 500  # a dot crossing gives thousands of events
        assert events["t"].min() >= 0 and events["t"].max() <= DURATION
        assert frames_of(events, 1).sum() == len(events)  # every event lands in the window
    assert small_set.angles_deg().tolist() == [0, 45, 90, 135, 180, 225, 270, 315]



def test_tensor_dataset_holds_every_sample_as_indexing_frames_it(small_set):
    frames, labels = small_set.tensor_dataset().tensors
    assert frames.shape == (12, 4, 2, 34, 34) and labels.dtype == torch.long
    for i in (0, 5, 11):
        assert torch.equal(frames[i], small_set[i][0]) and labels[i].item() == small_set[i][1]

def test_same_seed_same_events_and_prefix_independent(small_set, tmp_path):
    again = MovingDots("train", n_samples=5, n_time_bins=4, seed=0, data_dir=tmp_path, progress=False)
    for i in range(5):
        np.testing.assert_array_equal(again.events(i), small_set.events(i))
    other_seed = MovingDots("train", n_samples=5, n_time_bins=4, seed=1, data_dir=tmp_path, progress=False)
    test_split = MovingDots("test", n_samples=5, n_time_bins=4, seed=0, data_dir=tmp_path, progress=False)
    for other in (other_seed, test_split):
        assert not np.array_equal(other.events(0), small_set.events(0))


def test_cache_is_reused(tmp_path):
    MovingDots("test", n_samples=3, seed=2, data_dir=tmp_path, progress=False)
    files = sorted((tmp_path / "cache").glob("moving-dots-*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    MovingDots("test", n_samples=3, seed=2, n_time_bins=7, data_dir=tmp_path, progress=False)  # binning is not cached
    assert files[0].stat().st_mtime_ns == mtime


def test_opposite_direction_is_the_movie_played_backwards():
    forward, _ = dot_movie(30.0, offset_px=2.5, sensor_size=SENSOR)
    backward, _ = dot_movie(210.0, offset_px=-2.5, sensor_size=SENSOR)
    np.testing.assert_allclose(backward[::-1], forward, atol=1e-9)


def test_dot_enters_and_leaves_unseen():
    for angle in (0.0, 45.0, 100.0):
        movie, _ = dot_movie(angle, offset_px=6.0, sigma_px=2.0, start_us=50_000, crossing_us=150_000)
        assert movie[0].max() < 1e-3 and movie[-1].max() < 1e-3
        assert movie.max(axis=(1, 2)).max() > 0.5


def test_one_bin_loses_the_order_that_several_bins_keep():
    right, left = crossing(0.0, 1.0), crossing(180.0, -1.0)
    one_r, one_l = frames_of(right, 1), frames_of(left, 1)
    assert np.abs(one_r - one_l).sum() < 0.05 * one_r.sum()  # nearly identical single frames
    many_r, many_l = frames_of(right, 6), frames_of(left, 6)
    assert np.abs(many_r - many_l).sum() > 1.0 * many_r.sum()  # mostly disjoint once time is resolved


@pytest.mark.parametrize("angle, axis, sign", [(0.0, "x", 1), (90.0, "y", -1), (180.0, "x", -1), (270.0, "y", 1)])
def test_direction_convention(angle, axis, sign):
    """Label angles count counter-clockwise from 'right' as seen on screen (rows grow downwards)."""
    events = crossing(angle, 0.0)
    on = events[events["p"] == 1]
    r = np.corrcoef(on["t"], on[axis])[0, 1]
    assert sign * r > 0.9


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="split"):
        MovingDots("valid", n_samples=2, data_dir=tmp_path)
    with pytest.raises(ValueError, match="n_directions"):
        MovingDots("train", n_samples=2, n_directions=1, data_dir=tmp_path)
    with pytest.raises(ValueError, match="n_samples"):
        MovingDots("train", n_samples=0, data_dir=tmp_path)
    with pytest.raises(ValueError, match="inside the window"):
        dot_movie(0.0, start_us=200_000, crossing_us=200_000)
    assert not (tmp_path / "cache").exists()
