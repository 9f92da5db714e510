"""Spike-train statistics of binned trains, through elephant (van Rossum distance, ISIs, Fano factor).

Trains here are binned: arrays [..., T] of 0/1 (one bin per stimulus frame, bin width `dt` in ms).
Each train becomes a neo.SpikeTrain with one spike at the centre of each occupied bin, and elephant
(NeuralEnsemble, elephant==1.2.1) computes:

  * van Rossum distance (elephant.spike_train_dissimilarity.van_rossum_distance): with
    f(t) = sum_i exp(-(t - t_i) / tau) H(t - t_i), D^2 = (1 / tau) * integral (f - g)^2 dt * 2, i.e.
    elephant's normalisation, in which one spike against an empty train is at distance 1;
  * inter-spike intervals (elephant.statistics.isi);
  * Fano factor (elephant.statistics.fanofactor): variance / mean of the spike count across trials,
    here per counting window of `window` bins, averaged over the windows with a non-zero mean.

PSTHs, their correlation and a constant-rate reference log-likelihood are plain numpy.
"""

from __future__ import annotations

import numpy as np
import quantities as pq
import scipy.stats
from elephant.spike_train_dissimilarity import van_rossum_distance
from elephant.statistics import fanofactor, isi
from neo import SpikeTrain

from snnlib.checks import positive_int, real


def _binary(trains, name: str) -> np.ndarray:
    arr = np.asarray(trains)
    if arr.ndim == 0 or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be binned 0/1 spike trains [..., T]; threshold or bin them first")
    return arr.astype(np.int8)


def to_spiketrain(train, dt: float = 1.0) -> SpikeTrain:
    """One binned train [T] (0/1) as a neo.SpikeTrain in ms, spikes at bin centres (t = (i + 0.5) dt)."""
    train = _binary(train, "train")
    if train.ndim != 1:
        raise ValueError(f"one train at a time: expected [T], got shape {train.shape}")
    times = (np.flatnonzero(train) + 0.5) * dt
    return SpikeTrain(times * pq.ms, t_start=0 * pq.ms, t_stop=len(train) * dt * pq.ms)


def van_rossum(a, b, tau: float, dt: float = 1.0) -> np.ndarray:
    """Van Rossum distances [K, L] between trains a [K, T] and b [L, T] (elephant), tau in ms."""
    a, b = np.atleast_2d(_binary(a, "a")), np.atleast_2d(_binary(b, "b"))
    trains = [to_spiketrain(t, dt) for t in (*a, *b)]
    full = van_rossum_distance(trains, time_constant=real("tau", tau, 0.0, open_low=True) * pq.ms)
    return np.asarray(full)[: len(a), len(a):]


def mean_van_rossum(generated, recorded, tau: float, dt: float = 1.0) -> float:
    """Mean distance over all (generated trial, recorded trial) pairs."""
    return float(van_rossum(generated, recorded, tau, dt).mean())


def intervals(trains, dt: float = 1.0) -> np.ndarray:
    """All inter-spike intervals (ms) of the trains [..., T], pooled (elephant.statistics.isi)."""
    trains = _binary(trains, "trains").reshape(-1, np.shape(trains)[-1])
    parts = [np.asarray(isi(to_spiketrain(t, dt)).rescale(pq.ms).magnitude) for t in trains if t.sum() > 1]
    return np.concatenate(parts) if parts else np.zeros(0)


def fano_factor(trials, window: int) -> float:
    """Fano factor of the spike counts across trials [R, T] in consecutive windows of `window` bins,
    averaged over windows with a non-zero mean count (elephant.statistics.fanofactor per window)."""
    trials = _binary(trials, "trials")
    if trials.ndim != 2 or trials.shape[0] < 2:
        raise ValueError(f"trials must be [R >= 2, T], got shape {trials.shape}")
    window = positive_int("window", window)
    n = trials.shape[1] // window
    if n == 0:
        raise ValueError(f"window ({window} bins) is longer than the trials ({trials.shape[1]} bins)")
    counts = trials[:, : n * window].reshape(len(trials), n, window).sum(-1)
    values = [fanofactor([np.ones(c) for c in col]) for col in counts.T if col.mean() > 0]
    return float(np.mean(values)) if values else float("nan")


def isi_distance(a, b) -> float:
    """1-Wasserstein distance between two pooled ISI samples (nan when either is empty)."""
    return float(scipy.stats.wasserstein_distance(a, b)) if len(a) and len(b) else float("nan")


def psth(trials, sigma: float = 0.0) -> np.ndarray:
    """Trial-averaged rate per bin [T] of trials [R, T], optionally Gaussian-smoothed (sigma in bins)."""
    mean = np.asarray(trials, dtype=float).mean(0)
    if sigma > 0:
        from scipy.ndimage import gaussian_filter1d

        mean = gaussian_filter1d(mean, sigma, mode="nearest")
    return mean


def psth_correlation(model_trials, recorded_trials, sigma: float = 0.0) -> float:
    """Pearson r between the model's and the recorded PSTH (nan if either is constant)."""
    a, b = psth(model_trials, sigma), psth(recorded_trials, sigma)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def constant_rate_log_likelihood(train_spikes, test_spikes) -> np.ndarray:
    """log P per bin of test spikes [T, ..., N] under a Bernoulli with each neuron's training rate."""
    n = np.shape(train_spikes)[-1]
    p = np.clip(np.asarray(train_spikes, float).reshape(-1, n).mean(0), 1e-6, 1 - 1e-6)
    y = np.asarray(test_spikes, float)
    return y * np.log(p) + (1 - y) * np.log1p(-p)
