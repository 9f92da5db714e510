"""Tests for the saccade conversion, the digit sources and the SaccadeDigits data set."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from snnlib.data import saccade_digits
from snnlib.data.digits import SKLEARN_TEST_FRACTION, load_digit_split, load_sklearn_digits
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.mnist import MNISTNotFoundError
from snnlib.data.saccade import saccade_events, saccade_frames, saccade_path
from snnlib.data.saccade_digits import SaccadeDigits


def place(image, sensor, top, left):
    """``image`` pasted into a zero sensor image with its top-left corner at (top, left)."""
    canvas = np.zeros(sensor)
    canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
    return canvas


def test_saccade_path_is_the_triangle():
    times, offsets = saccade_path(duration_us=300_000, n_frames=61, amplitude_px=3.0)
    assert times[0] == 0 and times[-1] == 300_000 and len(times) == 61
    np.testing.assert_allclose(offsets[[0, 20, 40, 60]], [(0, -3), (3, 3), (-3, 3), (0, -3)])
    np.testing.assert_allclose(offsets[10], (1.5, 0.0))  # halfway down the first diagonal
    speeds = np.linalg.norm(np.diff(offsets, axis=0), axis=1)
    np.testing.assert_allclose(speeds[20:40], 6 / 20)  # constant speed on the horizontal saccade


def test_saccade_frames_shift_the_image_exactly_at_integer_offsets():
    image = np.random.default_rng(0).uniform(0, 1, (28, 28))
    frames, times = saccade_frames(image, sensor_size=(34, 34, 2), n_frames=61, amplitude_px=2.0)
    assert frames.shape == (61, 34, 34) and times.shape == (61,)
    # Centred at (3, 3); offsets (dx, dy) = (0, -2), (2, 2), (-2, 2) at the vertices.
    np.testing.assert_allclose(frames[0], place(image, (34, 34), 1, 3), atol=1e-12)
    np.testing.assert_allclose(frames[20], place(image, (34, 34), 5, 5), atol=1e-12)
    np.testing.assert_allclose(frames[40], place(image, (34, 34), 5, 1), atol=1e-12)


def test_saccade_frames_fractional_shift_is_the_bilinear_blend_of_neighbours():
    image = np.random.default_rng(1).uniform(0, 1, (6, 6))
    frames, _ = saccade_frames(image[None], sensor_size=(10, 10), n_frames=10, amplitude_px=1.0)
    # Frame 1 is a third of the way along (0, -1) -> (1, 1): offset (dx, dy) = (1/3, -1/3).
    expected = np.zeros((10, 10))
    for dy, wy in ((-1, 1 / 3), (0, 2 / 3)):
        for dx, wx in ((0, 2 / 3), (1, 1 / 3)):
            expected += wy * wx * place(image, (10, 10), 2 + dy, 2 + dx)
    assert frames.shape == (10, 1, 10, 10)
    np.testing.assert_allclose(frames[1, 0], expected, atol=1e-12)


def test_image_that_would_leave_the_sensor_is_rejected():
    with pytest.raises(ValueError, match="leaves a sensor"):
        saccade_frames(np.ones((28, 28)), sensor_size=(34, 34), amplitude_px=4.0)


def test_saccade_events_fall_on_the_digit_edges_inside_the_sensor():
    images, _ = load_sklearn_digits()
    image = images[0]
    events = saccade_events(image, DVSSimulator(seed=0), sensor_size=(34, 34))
    assert len(events) > 1000
    assert events["x"].max() < 34 and events["y"].max() < 34 and events["t"].max() <= 300_000
    assert 0.3 < events["p"].mean() < 0.7  # the motion goes back and forth: both polarities
    # Edges: where the centred digit's intensity gradient is non-zero, widened by the 3 px motion.
    centred = place(image, (34, 34), 3, 3)
    gy, gx = np.gradient(centred)
    edge = np.abs(gx) + np.abs(gy) > 0.05
    reach = np.zeros_like(edge)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            reach |= np.roll(np.roll(edge, dy, axis=0), dx, axis=1)
    assert reach[events["y"], events["x"]].mean() > 0.97
    assert (~reach).sum() > 300  # the test is not vacuous: much of the sensor lies off the edges


def test_sklearn_digits_are_upsampled_into_the_mnist_box():
    images, labels = load_sklearn_digits()
    digits = load_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(labels, digits.target)
    assert not images[:, :4].any() and not images[:, 24:].any() and not images[:, :, :4].any()
    # Independent bilinear resampling (half-pixel centres, edge clamped) of digit 5: 8x8 -> 20x20.
    source = digits.images[5] / 16.0
    coords = np.clip((np.arange(20) + 0.5) * 8 / 20 - 0.5, 0, 7)
    weights = np.maximum(0, 1 - np.abs(coords[:, None] - np.arange(8)))
    np.testing.assert_allclose(images[5, 4:24, 4:24], weights @ source @ weights.T, atol=1e-6)


def test_sklearn_split_is_stratified_disjoint_and_seeded():
    _, labels = load_sklearn_digits()
    _, train_labels, train = load_digit_split("sklearn", "train", seed=0)
    _, test_labels, test = load_digit_split("sklearn", "test", seed=0)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 1797
    np.testing.assert_array_equal(test_labels, labels[test])
    per_class = np.bincount(labels, minlength=10)
    assert np.all(np.abs(np.bincount(test_labels, minlength=10) - SKLEARN_TEST_FRACTION * per_class) <= 1)
    np.testing.assert_array_equal(load_digit_split("sklearn", "test", seed=0)[2], test)
    assert not np.array_equal(load_digit_split("sklearn", "test", seed=1)[2], test)
    np.testing.assert_array_equal(load_digit_split("sklearn", "test", seed=0, n_samples=10)[2], test[:10])


def test_bad_digit_requests_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="source"):
        load_digit_split("emnist", "train")
    with pytest.raises(ValueError, match="n_samples"):
        load_digit_split("sklearn", "train", n_samples=5000)
    with pytest.raises(MNISTNotFoundError, match="fetch mnist"):
        SaccadeDigits(source="mnist", data_dir=tmp_path, n_samples=2)


def test_saccade_digits_dataset_and_its_cache(tmp_path, monkeypatch):
    sim = DVSSimulator(noise_rate_hz=20.0, seed=0)
    data = SaccadeDigits(source="sklearn", split="test", n_samples=8, n_time_bins=6, data_dir=tmp_path,
                         simulator=sim, progress=False)
    assert len(data) == 8
    frames, label = data[3]
    assert frames.shape == (6, 2, 34, 34) and frames.dtype == torch.float32
    assert frames.sum().item() == len(data.events(3))  # every event lands in a bin
    _, labels, index = load_digit_split("sklearn", "test", seed=0, n_samples=8)
    assert label == labels[3]
    np.testing.assert_array_equal(data.source_index, index)
    # Events of a digit equal a direct conversion with the same noise seed.
    images, _, _ = load_digit_split("sklearn", "test", seed=0, n_samples=8)
    direct = saccade_events(images[3], sim, rng=np.random.default_rng(np.random.SeedSequence([0, 1, index[3]])))
    np.testing.assert_array_equal(data.events(3), direct)

    def no_conversion(*args, **kwargs):
        raise AssertionError("cache miss")

    monkeypatch.setattr(saccade_digits, "convert_digits", no_conversion)
    again = SaccadeDigits(source="sklearn", split="test", n_samples=8, n_time_bins=3, data_dir=tmp_path,
                          simulator=DVSSimulator(noise_rate_hz=20.0, seed=0))
    np.testing.assert_array_equal(again.events(5), data.events(5))
    assert again[5][0].shape == (3, 2, 34, 34)
    with pytest.raises(AssertionError, match="cache miss"):  # another simulator parameter: another key
        SaccadeDigits(source="sklearn", split="test", n_samples=8, data_dir=tmp_path,
                      simulator=DVSSimulator(noise_rate_hz=21.0, seed=0))


def test_saccade_digits_batches_with_a_dataloader(tmp_path):
    data = SaccadeDigits(n_samples=4, n_time_bins=5, data_dir=tmp_path, progress=False)
    frames, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert frames.shape == (4, 5, 2, 34, 34) and labels.dtype == torch.int64
    with pytest.raises(IndexError):
        data.events(4)
