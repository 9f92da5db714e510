"""Tests for snnlib.data.events: tonic-compatible event arrays and frames."""

import math

import numpy as np
import pytest
import tonic
import tonic.transforms as tt

from snnlib.data.events import EVENT_DTYPE, make_events, pack_events, to_frames, unpack_events, validate_events

SENSOR = (34, 30, 2)  # W, H, P: not square, so a swapped H/W shows up


def random_events(n, seed=0, t_max=300_000, sensor=SENSOR):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, sensor[0], n), rng.integers(0, sensor[1], n),
                       rng.integers(0, t_max, n), rng.integers(0, 2, n), sensor)


def count_by_hand(events, start, width, n_bins, sensor=SENSOR):
    """frames[k, p, y, x] by a plain loop over events."""
    frames = np.zeros((n_bins, sensor[2], sensor[1], sensor[0]))
    for e in events:
        k = math.floor((e["t"] - start) / width)
        if 0 <= k < n_bins:
            frames[k, e["p"] if sensor[2] == 2 else 0, e["y"], e["x"]] += 1
    return frames


def test_dtype_is_tonics_nmnist_dtype():
    assert EVENT_DTYPE == tonic.datasets.NMNIST.dtype


def test_make_events_sorts_stably_and_keeps_columns():
    events = make_events([1, 2, 3, 4], [0, 1, 2, 3], [30, 10, 30, 20], [1, 0, 0, True])
    assert events.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(events["t"], [10, 20, 30, 30])
    np.testing.assert_array_equal(events["x"], [2, 4, 1, 3])  # equal times keep their input order
    np.testing.assert_array_equal(events["p"], [0, 1, 1, 0])


@pytest.mark.parametrize(
    "columns, error, words",
    [
        (([0, 34], [0, 0], [0, 1], [0, 1]), ValueError, ["x", "[0, 34)"]),
        (([0, 1], [0, 30], [0, 1], [0, 1]), ValueError, ["y", "[0, 30)"]),
        (([0, 1], [0, 0], [-5, 1], [0, 1]), ValueError, ["t", ">= 0"]),
        (([0, 1], [0, 0], [0.5, 1.0], [0, 1]), TypeError, ["t", "np.rint"]),
        (([0, 1], [0, 0], [0, 1], [0, 2]), ValueError, ["polarities"]),
        (([0, 1], [0], [0, 1], [0, 1]), ValueError, ["same length"]),
    ],
)
def test_make_events_rejects_bad_input(columns, error, words):
    with pytest.raises(error) as info:
        make_events(*columns, sensor_size=SENSOR)
    for word in words:
        assert word in str(info.value)


def test_validate_events_rejects_unsorted_and_non_structured():
    events = random_events(20)
    with pytest.raises(ValueError, match="sorted by time"):
        validate_events(events[::-1])
    with pytest.raises(TypeError, match="fields x, y, t, p"):
        validate_events(np.zeros((20, 4)))


def test_tonic_transforms_accept_events():
    events = make_events([5, 6, 20], [5, 5, 20], [20_000, 20_010, 20_020], [1, 1, 0], SENSOR)
    # Denoise keeps an event only if a 4-neighbour fired within filter_time before it.
    kept = tt.Denoise(filter_time=1000)(events)
    np.testing.assert_array_equal(kept, events[1:2])
    halved = tt.Downsample(spatial_factor=0.5)(events)
    np.testing.assert_array_equal(halved["x"], events["x"] // 2)
    np.testing.assert_array_equal(halved["t"], events["t"])
    jittered = tt.TimeJitter(std=5.0, clip_negative=True, sort_timestamps=True)(events)
    assert jittered.dtype == EVENT_DTYPE and np.all(np.abs(jittered["t"] - events["t"]) < 100)
    frames = tt.ToFrame(sensor_size=SENSOR, n_time_bins=2)(events)
    assert frames.shape == (2, 2, 30, 34)


@pytest.mark.parametrize("n_bins, duration", [(10, 300_000), (7, 300_001)])
def test_to_frames_n_time_bins_counts_match_hand_count(n_bins, duration):
    events = random_events(2000, seed=n_bins)
    frames = to_frames(events, SENSOR, n_time_bins=n_bins, start_us=0, duration_us=duration)
    assert frames.shape == (n_bins, 2, 30, 34) and frames.dtype == np.float32
    np.testing.assert_array_equal(frames, count_by_hand(events, 0, duration / n_bins, n_bins))
    assert frames.sum() == len(events)


def test_to_frames_time_window_includes_a_partial_last_bin_and_ignores_outside_events():
    events = random_events(1500, seed=3, t_max=10_000)
    frames = to_frames(events, SENSOR, time_window=3000, start_us=1000, duration_us=8000)
    assert frames.shape[0] == 3  # ceil(8000 / 3000)
    np.testing.assert_array_equal(frames, count_by_hand(events, 1000, 3000, 3))
    assert frames.sum() == np.sum(events["t"] >= 1000)  # last bin runs to 10000 > every t


def test_to_frames_default_window_counts_every_event_including_the_last():
    events = random_events(500, seed=4)
    for kwargs in ({"n_time_bins": 5}, {"time_window": 12_345}):
        assert to_frames(events, SENSOR, **kwargs).sum() == len(events)


def test_to_frames_single_polarity_merges_and_leaves_input_untouched():
    events = random_events(300, seed=5)
    before = events.copy()
    frames = to_frames(events, (34, 30, 1), n_time_bins=3)
    np.testing.assert_array_equal(frames[:, 0], to_frames(events, SENSOR, n_time_bins=3).sum(axis=1))
    np.testing.assert_array_equal(events, before)


def test_to_frames_empty_events_give_zeros():
    empty = make_events([], [], [], [])
    np.testing.assert_array_equal(to_frames(empty, SENSOR, n_time_bins=4), np.zeros((4, 2, 30, 34)))
    assert to_frames(empty, SENSOR, time_window=100, start_us=0, duration_us=1000).shape == (10, 2, 30, 34)


def test_to_frames_bad_arguments():
    events = random_events(10)
    with pytest.raises(ValueError, match="exactly one"):
        to_frames(events, SENSOR)
    with pytest.raises(ValueError, match="W, H, P"):
        to_frames(events, (34, 30), n_time_bins=2)
    with pytest.raises(ValueError, match="must lie in"):
        to_frames(events, (10, 10, 2), n_time_bins=2)


def test_pack_events_round_trips_in_the_compact_dtype():
    events = random_events(3000, seed=6)
    codes = pack_events(events, SENSOR)
    assert codes.dtype == np.uint32  # 300000 µs * 30 * 34 * 2 < 2**32
    np.testing.assert_array_equal(unpack_events(codes, SENSOR), events)
    first = events[0]
    assert codes[0] == ((first["t"] * 30 + first["y"]) * 34 + first["x"]) * 2 + first["p"]
    late = make_events([1], [2], [2**40], [1])
    np.testing.assert_array_equal(unpack_events(pack_events(late, SENSOR), SENSOR), late)
