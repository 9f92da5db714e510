"""Tests for snnlib.data.dvs_simulator against analytic crossing times and plain recurrences."""

import numpy as np
import pytest

from snnlib.data.dvs_simulator import THRESHOLD_FLOOR, DVSSimulator

EPS = 0.1
THETA = 0.2


def intensities(log_levels):
    """Linear intensities whose log(I + EPS) equals ``log_levels``."""
    return np.exp(np.asarray(log_levels, dtype=float)) - EPS


def one_pixel_movie(log_levels):
    return intensities(log_levels).reshape(-1, 1, 1)


def ideal(**kwargs):
    """A simulator without mismatch, so thresholds are exactly THETA."""
    return DVSSimulator(contrast_threshold_pos=THETA, contrast_threshold_neg=THETA, threshold_sigma=0.0,
                        log_eps=EPS, **kwargs)


@pytest.mark.parametrize("steps", [3, 5.0, 4.5])
@pytest.mark.parametrize("direction", [+1, -1])
def test_linear_ramp_gives_one_event_per_threshold_at_the_crossing_times(steps, direction):
    l0, dt = np.log(0.5 + EPS), 10_000.0
    events = ideal().simulate(one_pixel_movie([l0, l0 + direction * steps * THETA]), [0.0, dt])
    k = int(np.floor(steps))
    expected_t = np.rint(np.arange(1, k + 1) / steps * dt)  # L crosses l0 + j*THETA at j/steps of the ramp
    np.testing.assert_array_equal(events["t"], expected_t)
    assert np.all(events["p"] == (1 if direction > 0 else 0))
    assert np.all(events["x"] == 0) and np.all(events["y"] == 0)


def test_reference_carries_over_between_segments():
    # Up 2.5 thresholds in 1 ms, then back down to the start in 1 ms.
    l0 = np.log(0.3 + EPS)
    events = ideal().simulate(one_pixel_movie([l0, l0 + 2.5 * THETA, l0]), [0.0, 1000.0, 2000.0])
    # ON at l0+θ, l0+2θ; the reference is then l0+2θ, so OFF at l0+θ and l0 on the way down.
    up = [1000 * 1 / 2.5, 1000 * 2 / 2.5]
    down = [1000 + 1000 * 1.5 / 2.5, 1000 + 1000 * 2.5 / 2.5]
    np.testing.assert_array_equal(events["t"], np.rint(up + down))
    np.testing.assert_array_equal(events["p"], [1, 1, 0, 0])


def test_refractory_period_follows_the_delayed_event_recurrence():
    # Crossings every 100 µs; refractory 250 µs; the scene then stays still for 2 ms.
    k, ramp, refractory = 8, 800.0, 250.0
    l0 = np.log(0.2 + EPS)
    events = ideal(refractory_us=refractory).simulate(
        one_pixel_movie([l0, l0 + k * THETA, l0 + k * THETA]), [0.0, ramp, ramp + 2000.0])
    expected, last = [], -np.inf
    for j in range(1, k + 1):  # v2e-like: a blocked crossing keeps the reference, fires when allowed
        last = max(j * ramp / k, last + refractory)
        expected.append(last)
    np.testing.assert_array_equal(events["t"], np.rint(expected))
    assert np.all(np.diff(events["t"]) >= refractory)


def test_refractory_period_drops_a_change_that_is_undone_in_time():
    l0 = np.log(0.4 + EPS)
    # +1θ at 100 µs (event), +2θ at 200 µs (blocked until 1100 µs), back to +1θ by 300 µs.
    movie = one_pixel_movie([l0, l0 + 2 * THETA, l0 + THETA, l0 + THETA])
    events = ideal(refractory_us=1000.0).simulate(movie, [0.0, 200.0, 300.0, 5000.0])
    np.testing.assert_array_equal(events["t"], [100])


def test_mismatched_thresholds_set_each_pixels_event_count():
    sim = DVSSimulator(threshold_sigma=0.05, log_eps=EPS, seed=3)
    height, width = 4, 5
    rise = np.linspace(0.3, 1.5, height * width).reshape(height, width)  # total log change per pixel
    start = np.full((height, width), np.log(0.2 + EPS))
    movie = np.stack([intensities(start), intensities(start + rise)])
    events = sim.simulate(movie, [0.0, 1000.0])
    theta_on, _ = sim.thresholds(height, width)
    counts = np.zeros((height, width), int)
    np.add.at(counts, (events["y"], events["x"]), 1)
    np.testing.assert_array_equal(counts, np.floor(rise / theta_on))
    assert np.all(events["p"] == 1)


def test_threshold_mismatch_statistics_and_floor():
    theta_on, theta_off = DVSSimulator(threshold_sigma=0.03, seed=1).thresholds(100, 100)
    for theta in (theta_on, theta_off):
        assert abs(theta.mean() - 0.2) < 0.002 and abs(theta.std() - 0.03) < 0.002
    assert not np.allclose(theta_on, theta_off)
    wide, _ = DVSSimulator(contrast_threshold_pos=0.05, threshold_sigma=0.1).thresholds(50, 50)
    assert wide.min() == THRESHOLD_FLOOR


def test_static_scene_without_noise_gives_no_events():
    frame = np.random.default_rng(0).uniform(0, 1, (16, 16))
    events = DVSSimulator().simulate(np.stack([frame] * 5), np.arange(5) * 1000.0)
    assert len(events) == 0


def test_noise_rate_gives_poisson_count_of_events():
    rate, duration, height, width = 50.0, 200_000.0, 20, 30
    frame = np.full((height, width), 0.5)
    events = DVSSimulator(noise_rate_hz=rate).simulate(np.stack([frame, frame]), [0.0, duration])
    mean = rate * duration * 1e-6 * height * width  # 6000 expected events
    assert abs(len(events) - mean) < 5 * np.sqrt(mean)
    assert abs(events["p"].mean() - 0.5) < 0.05
    assert events["t"].min() >= 0 and events["t"].max() <= duration
    assert np.all(np.diff(events["t"]) >= 0)
    per_pixel = np.bincount(events["y"] * width + events["x"], minlength=height * width)
    assert abs(per_pixel.var() / per_pixel.mean() - 1) < 0.3  # Poisson: variance = mean


def moving_bar_movie():
    frames = np.full((12, 10, 10), 0.1)
    for k in range(12):
        frames[k, :, k % 10] = 0.9
    return frames, np.arange(12) * 1000.0


def test_same_seed_same_events_other_seed_other_events():
    frames, times = moving_bar_movie()
    a = DVSSimulator(threshold_sigma=0.05, noise_rate_hz=100.0, seed=7).simulate(frames, times)
    b = DVSSimulator(threshold_sigma=0.05, noise_rate_hz=100.0, seed=7).simulate(frames, times)
    c = DVSSimulator(threshold_sigma=0.05, noise_rate_hz=100.0, seed=8).simulate(frames, times)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)
    d = DVSSimulator(threshold_sigma=0.05, noise_rate_hz=100.0, seed=7).simulate(frames, times, rng=1)
    assert not np.array_equal(a, d)  # another noise stream, same chip


def test_simulate_batch_equals_separate_calls():
    frames, times = moving_bar_movie()
    movies = np.stack([frames, frames[:, ::-1], frames[:, :, ::-1]], axis=1)  # [F, N, H, W]
    sim = DVSSimulator(threshold_sigma=0.05, noise_rate_hz=200.0, seed=2)
    batch = sim.simulate_batch(movies, times, rngs=[10, 11, 12])
    for i in range(3):
        np.testing.assert_array_equal(batch[i], sim.simulate(movies[:, i], times, rng=10 + i))


@pytest.mark.parametrize(
    "frames, times, match",
    [
        (np.ones((4, 4)), [0.0, 1.0, 2.0, 3.0], r"\[F, H, W\]"),
        (np.ones((3, 4, 4)), [0.0, 2.0, 1.0], "strictly increasing"),
        (-np.ones((2, 4, 4)), [0.0, 1.0], "non-negative"),
        (np.ones((2, 4, 4)), [0.0, 1.0, 2.0], "one entry per frame"),
    ],
)
def test_bad_movies_are_rejected(frames, times, match):
    with pytest.raises(ValueError, match=match):
        DVSSimulator().simulate(frames, times)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="contrast_threshold_pos"):
        DVSSimulator(contrast_threshold_pos=0.0)
    with pytest.raises(ValueError, match="refractory_us"):
        DVSSimulator(refractory_us=-1.0)
