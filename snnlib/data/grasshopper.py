"""Real stimulus -> spike recordings: locust (grasshopper) auditory receptor neurons, from nitime's wheel.

nitime==0.12.1 ships, under `nitime/data/`, `grasshopper_stimulus{1,2}.txt` (two columns: time in us,
sound amplitude in Pa; 20 kHz, 10 s; a Gaussian amplitude modulation of a 2.5 kHz carrier with a
200 Hz cut-off, so the file already holds the envelope) and `grasshopper_spike_times{1,2}.txt`
(one spike time in us per line after a `#` header; 929 and 868 spikes; one trial each). The files
are read where pip installed them (importlib.metadata); nitime itself is not imported.

`load_grasshopper(recording, bin_ms)` bins both: the stimulus envelope is the mean amplitude in each
bin, the response is 1 where a bin holds a spike (at bin_ms <= 3 ms no bin holds two: the shortest
interval in the recordings is 3.2 ms). `split_time` cuts one recording into a training part (the
first `train_fraction` of the time) and a held-out part (the rest).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from snnlib.checks import real

SAMPLE_US = 50.0  # 20 kHz
DURATION_US = 10_000_000.0
RECORDINGS = (1, 2)


def grasshopper_file(name: str) -> Path:
    """Path of one data file inside the installed nitime wheel, or an error saying how to install it."""
    try:
        path = Path(metadata.distribution("nitime").locate_file(f"nitime/data/{name}"))
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("the grasshopper recordings ship with nitime: "
                                "pip install --no-deps nitime==0.12.1 (see requirements.lock)") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed nitime; reinstall nitime==0.12.1")
    return path


def load_grasshopper(recording: int, bin_ms: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(envelope [T] float32 in Pa, spikes [T] uint8) of recording 1 or 2 in bins of `bin_ms` ms."""
    if recording not in RECORDINGS:
        raise ValueError(f"recording must be 1 or 2 (the two stimulus sets nitime ships), got {recording!r}")
    bin_ms = real("bin_ms", bin_ms, 0.05, 3.0)
    per_bin = round(bin_ms * 1000 / SAMPLE_US)
    if abs(per_bin * SAMPLE_US - bin_ms * 1000) > 1e-6:
        raise ValueError(f"bin_ms must be a multiple of the 0.05 ms sample period, got {bin_ms}")
    stim = np.loadtxt(grasshopper_file(f"grasshopper_stimulus{recording}.txt"))[:, 1]
    n = len(stim) // per_bin
    envelope = stim[: n * per_bin].reshape(n, per_bin).mean(1).astype(np.float32)
    times = np.loadtxt(grasshopper_file(f"grasshopper_spike_times{recording}.txt"), comments="#")
    spikes = np.zeros(n, np.uint8)
    idx = (times // (per_bin * SAMPLE_US)).astype(int)
    spikes[idx[idx < n]] = 1
    return envelope, spikes


def split_time(envelope: np.ndarray, spikes: np.ndarray, train_fraction: float = 0.7):
    """((envelope, spikes) of the first `train_fraction` of the time, (envelope, spikes) of the rest)."""
    cut = int(len(envelope) * real("train_fraction", train_fraction, 0.0, 1.0, open_low=True, open_high=True))
    return (envelope[:cut], spikes[:cut]), (envelope[cut:], spikes[cut:])


def clips(array: np.ndarray, length: int) -> np.ndarray:
    """Non-overlapping clips [length, M, ...] of a time-first array [T, ...] (the remainder dropped)."""
    m = len(array) // length
    if m == 0:
        raise ValueError(f"clip length {length} exceeds the {len(array)} bins available")
    return np.moveaxis(array[: m * length].reshape(m, length, *array.shape[1:]), 0, 1)
