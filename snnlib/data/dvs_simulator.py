"""A DVS (dynamic vision sensor) simulator: from an intensity movie to events.

The model is the ESIM / v2e family (Rebecq, Gehrig and Scaramuzza, "ESIM: an open
event camera simulator", CoRL 2018; Hu, Liu and Delbruck, "v2e: from video frames to
realistic DVS events", CVPR Workshops 2021). Each pixel works independently:

- log intensity ``L(t) = log(I(t) + log_eps)``; ``log_eps`` sets the contrast floor, like a
  monitor's black level or v2e's linear region near zero intensity;
- between two frames ``L`` is interpolated linearly in time (as ESIM does):
  ``L(t) = L_k + (L_{k+1} - L_k) (t - t_k) / (t_{k+1} - t_k)``;
- the pixel keeps a reference ``L_ref``, set to ``L`` at the first frame. When
  ``L(t) - L_ref >= theta_on`` it emits an ON event (p = 1) and ``L_ref += theta_on``;
  when ``L(t) - L_ref <= -theta_off`` an OFF event (p = 0) and ``L_ref -= theta_off``.
  Events are timed at the interpolated crossing, so a change of several thresholds
  between two frames gives several events at successive crossing times;
- per-pixel threshold mismatch: ``theta_on[y, x] = max(contrast_threshold_pos + threshold_sigma
  * z, THRESHOLD_FLOOR)`` with ``z ~ N(0, 1)``, likewise ``theta_off``; drawn once from
  ``seed`` for each sensor shape (the seed names one physical chip);
- refractory period ``R``: a pixel does not fire within ``R`` of its previous event.
  As in v2e, a crossing blocked by the refractory period does not move ``L_ref``, so
  the unreported change is kept: the pixel fires at the first moment ``t >= t_last + R``
  at which ``|L(t) - L_ref|`` still exceeds its threshold. A pixel's events are thus
  never closer than ``R``, and a change is reported late, not lost, unless the
  intensity returns before the refractory period ends;
- background-activity noise: each pixel also emits independent Poisson events at
  ``noise_rate_hz``, uniform in time over the movie, polarity ON or OFF with probability
  1/2. Noise events do not touch ``L_ref`` or the refractory clock (v2e's shot noise,
  by contrast, resets the pixel).

Times are microseconds; event times are rounded to the nearest microsecond. Output
is an event array (``snnlib.data.events.EVENT_DTYPE``) sorted by time. Movies are
time-first: ``[F, H, W]``, or ``[F, N, H, W]`` for N movies on one sensor
(``simulate_batch``, vectorised over all pixels of all movies; the loop is over frames
and over events per pixel within a frame interval). A level reached to within 1e-9 (log
units) counts as crossed, so a ramp of exactly k thresholds gives k events despite
rounding.
"""

import numpy as np
from tqdm.auto import tqdm

from snnlib.data.events import make_events, pack_events

BATCH_SIZE = 32  # movies simulated together (vectorised over the pixels of the whole batch)

THRESHOLD_FLOOR = 0.01  # smallest per-pixel threshold after mismatch (v2e uses the same floor)
_LOG_TOLERANCE = 1e-9  # a level reached within this (log units) counts as crossed, despite rounding


class DVSSimulator:
    """Turn an intensity movie ``frames [F, H, W]`` at ``times_us [F]`` into DVS events.

    See the module docstring for the equations. ``seed`` fixes the per-pixel threshold
    mismatch (and the default noise stream of ``simulate``).
    """

    def __init__(
        self,
        contrast_threshold_pos=0.2,
        contrast_threshold_neg=0.2,
        threshold_sigma=0.03,
        refractory_us=0.0,
        noise_rate_hz=0.0,
        log_eps=0.1,
        seed=0,
    ):
        for name, value in (("contrast_threshold_pos", contrast_threshold_pos),
                            ("contrast_threshold_neg", contrast_threshold_neg), ("log_eps", log_eps)):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (("threshold_sigma", threshold_sigma), ("refractory_us", refractory_us),
                            ("noise_rate_hz", noise_rate_hz)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.contrast_threshold_pos = float(contrast_threshold_pos)
        self.contrast_threshold_neg = float(contrast_threshold_neg)
        self.threshold_sigma = float(threshold_sigma)
        self.refractory_us = float(refractory_us)
        self.noise_rate_hz = float(noise_rate_hz)
        self.log_eps = float(log_eps)
        self.seed = int(seed)

    def params(self):
        """Return the constructor arguments as a dict (for cache keys and reports)."""
        return {
            "contrast_threshold_pos": self.contrast_threshold_pos,
            "contrast_threshold_neg": self.contrast_threshold_neg,
            "threshold_sigma": self.threshold_sigma,
            "refractory_us": self.refractory_us,
            "noise_rate_hz": self.noise_rate_hz,
            "log_eps": self.log_eps,
            "seed": self.seed,
        }

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"DVSSimulator({args})"

    def thresholds(self, height, width):
        """Per-pixel ``(theta_on, theta_off)``, each ``[height, width]``, drawn from ``seed``."""
        z = np.random.default_rng(self.seed).standard_normal((2, height, width))
        theta_on = self.contrast_threshold_pos + self.threshold_sigma * z[0]
        theta_off = self.contrast_threshold_neg + self.threshold_sigma * z[1]
        return np.maximum(theta_on, THRESHOLD_FLOOR), np.maximum(theta_off, THRESHOLD_FLOOR)

    def simulate(self, frames, times_us, *, rng=None):
        """Events (``EVENT_DTYPE``, time-sorted) for the movie ``frames [F, H, W]`` at ``times_us [F]``.

        ``frames`` are non-negative linear intensities (e.g. in [0, 1]); ``times_us`` is
        strictly increasing, in microseconds. ``rng`` (a ``numpy.random.Generator`` or an
        int seed) drives the noise; by default a stream derived from the simulator's seed,
        so the same call gives the same events.
        """
        frames = np.asarray(frames)
        if frames.ndim != 3:
            raise ValueError(f"frames must be [F, H, W], got shape {frames.shape}; use simulate_batch for "
                             "[F, N, H, W]")
        return self.simulate_batch(frames[:, None], times_us, rngs=[rng])[0]

    def simulate_batch(self, frames, times_us, *, rngs=None):
        """``simulate`` for N movies at once, ``frames [F, N, H, W]`` (time-first): a list of N event arrays.

        All movies share the sensor (the same threshold mismatch) and the frame times;
        ``rngs`` gives one noise generator or seed per movie (default: streams derived from
        the simulator's seed and the movie's position). Faster than N ``simulate`` calls.
        """
        frames, times = _check_movie(frames, times_us)
        n_frames, n_movies, height, width = frames.shape
        rngs = [None] * n_movies if rngs is None else list(rngs)
        if len(rngs) != n_movies:
            raise ValueError(f"rngs must have one entry per movie ({n_movies}), got {len(rngs)}")
        theta_on, theta_off = (np.broadcast_to(th, (n_movies, height, width)).ravel()
                               for th in self.thresholds(height, width))
        log_frames = np.log(frames.reshape(n_frames, -1) + self.log_eps)
        pixel, t, p = _threshold_crossings(log_frames, times, theta_on, theta_off, self.refractory_us)
        movie, pixel = np.divmod(pixel, height * width)
        order = np.argsort(movie, kind="stable")
        bounds = np.searchsorted(movie[order], np.arange(n_movies + 1))
        events = []
        for i, rng in enumerate(rngs):
            mine = order[bounds[i]:bounds[i + 1]]
            parts = [(pixel[mine], t[mine], p[mine])]
            if self.noise_rate_hz > 0:
                rng = np.random.default_rng([self.seed, 1, i] if rng is None else rng)
                parts.append(_poisson_noise(height * width, self.noise_rate_hz, times[0], times[-1], rng))
            pix, tau, pol = (np.concatenate(cols) for cols in zip(*parts))
            y, x = np.divmod(pix, width)
            events.append(make_events(x, y, np.rint(tau).astype(np.int64), pol, (width, height, 2)))
        return events


    def simulate_packed(self, n_samples, seeds, movies, sensor_size, *, desc="simulating", progress=True):
        """Events of ``n_samples`` movies, ``BATCH_SIZE`` at a time, packed: ``{"codes", "offsets" int64 [N + 1]}``.

        ``seeds[i]`` (e.g. a ``SeedSequence``) seeds sample ``i``'s generator;
        ``movies(batch, rngs)`` returns ``(frames [F, len(batch), H, W], times_us)`` for the
        samples of ``batch`` (a ``range``), and may draw from their generators first: the
        simulator's noise continues each stream. ``codes`` holds every event as one integer
        (``snnlib.data.events.pack_events``), sample after sample; sample ``i`` is
        ``codes[offsets[i]:offsets[i + 1]]``. A tqdm bar named ``desc`` shows when it takes > 2 s.
        """
        chunks = []
        starts = range(0, n_samples, BATCH_SIZE)
        for start in tqdm(starts, desc=desc, unit="batch", delay=2.0, disable=not progress):
            batch = range(start, min(start + BATCH_SIZE, n_samples))
            rngs = [np.random.default_rng(seeds[i]) for i in batch]
            frames, times = movies(batch, rngs)
            chunks += self.simulate_batch(frames, times, rngs=rngs)
        codes = np.concatenate([pack_events(events, sensor_size) for events in chunks])
        offsets = np.concatenate([[0], np.cumsum([len(events) for events in chunks])]).astype(np.int64)
        return {"codes": codes, "offsets": offsets}


def _check_movie(frames, times_us):
    """Validate movies; return them as float64 ``[F, N, H, W]`` frames and float64 times."""
    frames = np.asarray(frames, dtype=np.float64)
    times = np.asarray(times_us, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[0] < 2:
        raise ValueError(f"frames must have shape [F, N, H, W] with F >= 2 frames, got {frames.shape}")
    if times.shape != (frames.shape[0],):
        raise ValueError(f"times_us must have one entry per frame ({frames.shape[0]}), got shape {times.shape}")
    if not np.all(np.diff(times) > 0) or times[0] < 0:
        raise ValueError("times_us must be non-negative and strictly increasing (microseconds)")
    if not np.isfinite(frames).all() or frames.min() < 0:
        raise ValueError("frames must be finite, non-negative linear intensities (e.g. in [0, 1])")
    return frames, times


def _threshold_crossings(log_frames, times, theta_on, theta_off, refractory):
    """Signal events of all pixels: ``(pixel index, time, polarity)`` arrays (unsorted).

    ``log_frames`` is ``[F, N]``; the state (reference level, time of the last event) is
    carried across the ``F - 1`` linear segments. Only pixels whose excursion in a segment
    can reach a threshold are visited, one event per pixel per round.
    """
    l_ref = log_frames[0].copy()
    t_last = np.full(l_ref.shape, -np.inf)
    found = []
    for k in range(len(times) - 1):
        l0, l1 = log_frames[k], log_frames[k + 1]
        reach_on = np.maximum(l0, l1) - l_ref >= theta_on - _LOG_TOLERANCE
        reach_off = l_ref - np.minimum(l0, l1) >= theta_off - _LOG_TOLERANCE
        idx = np.flatnonzero(reach_on | reach_off)
        while idx.size:
            tau, on = _next_event(l0[idx], l1[idx], times[k], times[k + 1], l_ref[idx],
                                  t_last[idx] + refractory, theta_on[idx], theta_off[idx])
            fires = tau <= times[k + 1]
            idx, tau, on = idx[fires], tau[fires], on[fires]
            found.append((idx, tau, on))
            l_ref[idx] += np.where(on, theta_on[idx], -theta_off[idx])
            t_last[idx] = tau
    if not found:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)
    pixel, tau, on = (np.concatenate(parts) for parts in zip(*found))
    return pixel, tau, on.astype(np.int64)


def _next_event(l0, l1, t0, t1, l_ref, t_free, theta_on, theta_off):
    """Time and polarity of each pixel's next event in the segment ``[t0, t1]``.

    The pixel may fire from ``s = max(t0, t_free)`` (end of its refractory period). If at
    ``s`` it is already past a threshold it fires at ``s``; otherwise at the time the
    linear ramp reaches ``l_ref +- theta``; ``inf`` if it does neither.
    """
    slope = (l1 - l0) / (t1 - t0)
    s = np.maximum(t0, t_free)
    diff = l0 + slope * (s - t0) - l_ref
    with np.errstate(divide="ignore", invalid="ignore"):
        tau_on = np.where(diff >= theta_on - _LOG_TOLERANCE, s,
                          np.where(slope > 0, t0 + (l_ref + theta_on - _LOG_TOLERANCE - l0) / slope, np.inf))
        tau_off = np.where(diff <= -theta_off + _LOG_TOLERANCE, s,
                           np.where(slope < 0, t0 + (l_ref - theta_off + _LOG_TOLERANCE - l0) / slope, np.inf))
    on = tau_on <= tau_off
    tau = np.where(on, tau_on, tau_off)
    return np.where(s <= t1, tau, np.inf), on


def _poisson_noise(n_pixels, rate_hz, t_start, t_end, rng):
    """Poisson background events, ``rate_hz`` per pixel over ``[t_start, t_end)`` µs, random polarity."""
    counts = rng.poisson(rate_hz * (t_end - t_start) * 1e-6, size=n_pixels)
    pixel = np.repeat(np.arange(n_pixels), counts)
    t = rng.uniform(t_start, t_end, size=pixel.size)
    p = rng.integers(0, 2, size=pixel.size)
    return pixel, t, p
