"""``SaccadeDigits``: an N-MNIST-like event data set made from real digits, as a torch Dataset.

Each digit (scikit-learn's digits or MNIST, see ``snnlib.data.digits``) is moved over a
simulated DVS along N-MNIST's three saccades (``snnlib.data.saccade``) and turned into
events by a ``DVSSimulator``. Sample ``i`` is ``(frames, label)``: ``frames`` float32
``[T, P, H, W]`` (time-first) counts events in ``T = n_time_bins`` equal bins over
``[0, duration_us]``; ``.events(i)`` gives the raw events (``EVENT_DTYPE``). With the
default simulator a digit gives about 8,000 (scikit-learn) or 11,000 (MNIST) events.

The conversion runs once and is cached (``snnlib.data.cache``) under
``<data_dir>/cache/saccade-digits-<key>.npz``; the key covers the source, split, number
of samples, seed, sensor, saccade and simulator parameters and ``GENERATOR_VERSION``
(bump it whenever the simulator or the saccade conversion changes behaviour). The time
binning is applied on access, so changing ``n_time_bins`` reuses the cache.

Randomness: the simulator's seed fixes its threshold mismatch; the noise of each digit
comes from ``SeedSequence([seed, split, source index])``, so a digit's events do not
depend on which other digits are converted; the scikit-learn split comes from ``seed``.
"""

import numpy as np

from snnlib.data.cache import cached_arrays
from snnlib.data.digits import load_digit_split
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.events import PackedEventSet
from snnlib.data.saccade import (SACCADE_AMPLITUDE_PX, SACCADE_DURATION_US, SACCADE_N_FRAMES,
                                 saccade_frames)

GENERATOR_VERSION = "1"
_SPLIT_CODE = {"train": 0, "test": 1}


def convert_digits(images, simulator, rng_seeds, *, sensor_size, duration_us, n_frames, amplitude_px,
                   progress=True):
    """Events of each image ``[N, h, w]``, packed: ``{"codes": ..., "offsets": int64 [N + 1]}``
    (``DVSSimulator.simulate_packed``); ``rng_seeds[i]`` seeds image ``i``'s noise."""

    def movies(batch, rngs):
        return saccade_frames(images[batch.start:batch.stop], sensor_size, duration_us, n_frames, amplitude_px)

    return simulator.simulate_packed(len(images), rng_seeds, movies, sensor_size, desc="saccade conversion",
                                     progress=progress)


class SaccadeDigits(PackedEventSet):
    """Saccade-converted real digits: ``(frames [T, P, H, W] float32, label int)`` per sample.

    Arguments: ``source`` "sklearn" or "mnist"; ``split`` "train" or "test"; ``n_samples``
    the first n digits of the split (default all); ``n_time_bins`` T; ``sensor_size``
    tonic's ``(W, H, P)``; ``seed``; ``data_dir`` (MNIST files and the cache);
    ``simulator`` a ``DVSSimulator`` (default ``DVSSimulator(seed=seed)``); the saccade
    parameters ``duration_us``, ``n_frames``, ``amplitude_px``; ``progress`` shows a
    progress bar while converting (only when it takes more than two seconds).
    """

    def __init__(self, source="sklearn", split="train", n_samples=None, n_time_bins=10, sensor_size=(34, 34, 2),
                 seed=0, data_dir="data", simulator=None, duration_us=SACCADE_DURATION_US,
                 n_frames=SACCADE_N_FRAMES, amplitude_px=SACCADE_AMPLITUDE_PX, progress=True):
        if int(n_time_bins) != n_time_bins or n_time_bins < 1:
            raise ValueError(f"n_time_bins must be a positive integer, got {n_time_bins!r}")
        if len(sensor_size) != 3:
            raise ValueError(f"sensor_size must be tonic's (W, H, P), got {sensor_size!r}")
        self.simulator = DVSSimulator(seed=seed) if simulator is None else simulator
        self.n_time_bins = int(n_time_bins)
        self.sensor_size = tuple(int(s) for s in sensor_size)
        self.duration_us = int(duration_us)
        images, labels, index = load_digit_split(source, split, seed, data_dir, n_samples)

        def build():
            seeds = [np.random.SeedSequence([seed, _SPLIT_CODE[split], int(i)]) for i in index]
            arrays = convert_digits(images, self.simulator, seeds, sensor_size=self.sensor_size,
                                    duration_us=self.duration_us, n_frames=n_frames,
                                    amplitude_px=amplitude_px, progress=progress)
            return dict(arrays, labels=labels, source_index=index)

        params = {"version": GENERATOR_VERSION, "source": source, "split": split, "n_samples": len(labels),
                  "seed": int(seed), "sensor": list(self.sensor_size[:2]), "duration_us": self.duration_us,
                  "n_frames": int(n_frames), "amplitude_px": float(amplitude_px),
                  "simulator": self.simulator.params()}
        self._arrays = cached_arrays("saccade-digits", params, build, data_dir)
        self.source_index = self._arrays["source_index"]
