"""``MovingDots``: a DVS-captured-style event data set whose label lives in the order of the events.

N-MNIST-style conversions of still images (``SaccadeDigits``) carry their label in *where*
events occur: summed over the whole recording, a digit is still a digit. Recordings of real
motion, such as DVS128 Gesture, also carry it in *when*: a hand sweeping left and one
sweeping right light up the same pixels with the same polarities, only in the opposite
order. This data set isolates that property on the saccade digits' sensor (34x34, two
polarities) and time window (300 ms), through the same ``DVSSimulator``.

Each sample is a bright Gaussian dot crossing the sensor along a straight line. The label
``k`` is its direction, ``angle_k = 360 * k / n_directions`` degrees counter-clockwise from
"right" (with 8 directions: right, up-right, up, up-left, left, ...), seen as on screen
(image rows grow downwards). The intensity movie, time-first ``[F, H, W]`` at ``F`` equally
spaced frame times over ``[0, duration_us]``:

    I(t, y, x) = brightness * exp(-|(x, y) - c(t)|^2 / (2 sigma^2))
    c(t) = centre + offset * n + (-R + 2 R s(t)) * u,   s(t) = clip((t - t0) / crossing, 0, 1)
    u = (cos a, -sin a),  n = (sin a, cos a),  R = half sensor diagonal + 4 sigma

``centre`` is the middle of the sensor; the dot starts and ends ``R`` from it, 4 sigma beyond
the last pixel, so it enters and leaves unseen and every pixel it passes sees its brightness
rise and fall again. Reversing the direction (``a + 180``, ``offset -> -offset``) replays the
same movie backwards: each pixel gets the same ON and OFF events in reverse order, so with
one time bin the two classes give (nearly) the same frame; with several bins they differ.

Nuisances, drawn per sample (uniform): angle ``a = angle_k + U(-ANGLE_JITTER_DEG, +)``;
perpendicular ``offset`` in ``+-OFFSET_PX``; ``sigma`` in ``SIGMA_PX``; ``brightness`` in
``BRIGHTNESS`` (on a black background); the crossing time ``crossing`` is a fraction
``CROSSING_FRACTION`` of the window, starting at ``t0`` uniform in
``[0, duration - crossing]``. The default simulator adds ``NOISE_RATE_HZ`` background
events per pixel.

Sample ``i`` is ``(frames, label)``: ``frames`` float32 ``[T, P, H, W]`` (time-first)
counts events in ``T = n_time_bins`` equal bins over ``[0, duration_us]``; ``label = i %
n_directions`` (every prefix is balanced). ``.events(i)`` gives the raw events
(``EVENT_DTYPE``). Randomness: sample ``i``'s nuisances and noise come from
``SeedSequence([seed, split, i])`` (train and test never share a stream, and a sample does
not depend on how many are generated); the simulator's own seed fixes its threshold
mismatch. The events are generated once and cached (``snnlib.data.cache``) under
``<data_dir>/cache/moving-dots-<key>.npz``; bump ``GENERATOR_VERSION`` whenever the
generator changes behaviour.
"""

import math

import numpy as np

from snnlib.data.cache import cached_arrays
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.events import PackedEventSet
from snnlib.data.saccade import SACCADE_DURATION_US, _sensor_hw

GENERATOR_VERSION = "1"
N_FRAMES = 151  # a frame every 2 ms: under a pixel of motion per frame at the fastest crossing
ANGLE_JITTER_DEG = 10.0  # well under half the 45 degrees between 8 classes
OFFSET_PX = 6.0
SIGMA_PX = (1.0, 2.0)
BRIGHTNESS = (0.5, 1.0)
CROSSING_FRACTION = (0.5, 0.85)
NOISE_RATE_HZ = 0.5  # background events per pixel and second of the default simulator
_SPLIT_CODE = {"train": 0, "test": 1}


def dot_movie(angle_deg, *, offset_px=0.0, sigma_px=1.5, brightness=1.0, start_us=0.0, crossing_us=None,
              sensor_size=(34, 34), duration_us=SACCADE_DURATION_US, n_frames=N_FRAMES):
    """The intensity movie of one dot crossing: ``(frames [F, H, W] float64, times_us [F])``.

    See the module docstring for the equations. ``crossing_us`` defaults to the whole window;
    the crossing must fit in it (``start_us + crossing_us <= duration_us``).
    """
    height, width = _sensor_hw(sensor_size)
    crossing_us = duration_us - start_us if crossing_us is None else crossing_us
    if not (sigma_px > 0 and brightness > 0 and crossing_us > 0):
        raise ValueError(f"sigma_px, brightness and crossing_us must be > 0, got {sigma_px}, {brightness}, "
                         f"{crossing_us}")
    if start_us < 0 or start_us + crossing_us > duration_us:
        raise ValueError(f"the crossing [{start_us}, {start_us + crossing_us}] µs must lie inside the window "
                         f"[0, {duration_us}] µs; shorten crossing_us or move start_us")
    if int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2, got {n_frames!r}")
    times = np.linspace(0.0, float(duration_us), int(n_frames))
    a = math.radians(angle_deg)
    u, n = np.array([math.cos(a), -math.sin(a)]), np.array([math.sin(a), math.cos(a)])
    reach = math.hypot(height - 1, width - 1) / 2 + 4 * sigma_px
    s = np.clip((times - start_us) / crossing_us, 0.0, 1.0)
    centre = np.array([(width - 1) / 2, (height - 1) / 2]) + offset_px * n
    path = centre + (2 * s[:, None] - 1) * reach * u  # [F, 2]: (x, y) of the dot
    dx = np.arange(width)[None, None, :] - path[:, 0, None, None]
    dy = np.arange(height)[None, :, None] - path[:, 1, None, None]
    return brightness * np.exp(-(dx**2 + dy**2) / (2 * sigma_px**2)), times


def draw_nuisances(label, n_directions, duration_us, rng):
    """One sample's dot parameters for class ``label``: keyword arguments of ``dot_movie``."""
    angle = 360.0 * label / n_directions + rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG)
    crossing = rng.uniform(*CROSSING_FRACTION) * duration_us
    return {
        "angle_deg": angle,
        "offset_px": rng.uniform(-OFFSET_PX, OFFSET_PX),
        "sigma_px": rng.uniform(*SIGMA_PX),
        "brightness": rng.uniform(*BRIGHTNESS),
        "start_us": rng.uniform(0.0, duration_us - crossing),
        "crossing_us": crossing,
    }


def simulate_dots(labels, seeds, simulator, *, n_directions, sensor_size, duration_us, n_frames, progress=True):
    """Events of one dot movie per label, packed: ``{"codes": ..., "offsets": int64 [N + 1]}``
    (``DVSSimulator.simulate_packed``); ``seeds[i]`` (a ``SeedSequence``) drives sample ``i``'s
    nuisances and noise."""

    def movies(batch, rngs):
        frames = [dot_movie(**draw_nuisances(labels[i], n_directions, duration_us, rng), sensor_size=sensor_size,
                            duration_us=duration_us, n_frames=n_frames) for i, rng in zip(batch, rngs)]
        return np.stack([movie for movie, _ in frames], axis=1), frames[0][1]

    return simulator.simulate_packed(len(labels), seeds, movies, sensor_size, desc="moving dots", progress=progress)


class MovingDots(PackedEventSet):
    """A dot crossing a simulated DVS in one of ``n_directions`` directions: ``(frames [T, P, H, W], label)``.

    Arguments: ``split`` "train" or "test"; ``n_samples``; ``n_time_bins`` T; ``sensor_size``
    tonic's ``(W, H, P)``; ``seed``; ``data_dir`` (the cache goes to ``<data_dir>/cache``);
    ``simulator`` a ``DVSSimulator`` (default ``DVSSimulator(noise_rate_hz=NOISE_RATE_HZ,
    seed=seed)``); ``duration_us``; ``n_frames`` rendered frames; ``n_directions`` classes;
    ``progress`` shows a bar while simulating (only when it takes more than two seconds).
    """

    def __init__(self, split="train", n_samples=1000, n_time_bins=10, sensor_size=(34, 34, 2), seed=0,
                 data_dir="data", simulator=None, duration_us=SACCADE_DURATION_US, n_frames=N_FRAMES,
                 n_directions=8, progress=True):
        if split not in _SPLIT_CODE:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        for name, value, low in (("n_samples", n_samples, 1), ("n_time_bins", n_time_bins, 1),
                                 ("n_directions", n_directions, 2)):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if len(sensor_size) != 3:
            raise ValueError(f"sensor_size must be tonic's (W, H, P), got {sensor_size!r}")
        self.simulator = DVSSimulator(noise_rate_hz=NOISE_RATE_HZ, seed=seed) if simulator is None else simulator
        self.n_time_bins = int(n_time_bins)
        self.n_directions = int(n_directions)
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.duration_us = int(duration_us)
        labels = np.arange(int(n_samples), dtype=np.int64) % self.n_directions

        def build():
            seeds = [np.random.SeedSequence([seed, _SPLIT_CODE[split], i]) for i in range(len(labels))]
            arrays = simulate_dots(labels, seeds, self.simulator, n_directions=self.n_directions,
                                   sensor_size=self.sensor_size, duration_us=self.duration_us,
                                   n_frames=n_frames, progress=progress)
            return dict(arrays, labels=labels)

        params = {"version": GENERATOR_VERSION, "split": split, "n_samples": len(labels), "seed": int(seed),
                  "sensor": list(self.sensor_size[:2]), "duration_us": self.duration_us, "n_frames": int(n_frames),
                  "n_directions": self.n_directions, "simulator": self.simulator.params()}
        self._arrays = cached_arrays("moving-dots", params, build, data_dir)

    def angles_deg(self):
        """The nominal direction of each class, degrees counter-clockwise from "right"."""
        return 360.0 * np.arange(self.n_directions) / self.n_directions
