"""Event arrays in tonic's layout, and their conversion to frames.

An event camera reports, for each pixel ``(x, y)`` whose log intensity changed by a
threshold, an event ``(x, y, t, p)``: column ``x`` and row ``y`` of the pixel, time
``t`` in microseconds and polarity ``p`` (1 = ON, brightness went up; 0 = OFF).
Events are kept as numpy structured arrays with the fields of ``EVENT_DTYPE``,
exactly the dtype of ``tonic.datasets.NMNIST``, so every ``tonic.transforms`` transform
(``ToFrame``, ``Denoise``, ``Downsample``, ``TimeJitter``, ...) accepts them.

Sensor sizes follow tonic: ``sensor_size = (W, H, P)`` (width, height, polarities).

Frames (``to_frames``) are event counts per time bin, polarity and pixel, time-first:
``frames[k, p, y, x] = #{events e : e.p = p, e.y = y, e.x = x,
start + k*w <= e.t < start + (k+1)*w}`` with bin width ``w``, shape ``[T, P, H, W]``.
"""

import math

import numpy as np
import tonic.transforms
import torch

EVENT_DTYPE = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def _check_sensor_size(sensor_size):
    """Return ``sensor_size`` as a tuple of three positive ints ``(W, H, P)``, or raise."""
    if len(sensor_size) != 3 or any(int(s) != s or s < 1 for s in sensor_size):
        raise ValueError(
            f"sensor_size must be three positive integers (W, H, P) as in tonic, got {sensor_size!r}; "
            "e.g. (34, 34, 2) for N-MNIST"
        )
    if sensor_size[2] not in (1, 2):
        raise ValueError(f"sensor_size[2] is the number of polarities and must be 1 or 2, got {sensor_size[2]}")
    return tuple(int(s) for s in sensor_size)


def _as_int_column(name, values):
    """Return ``values`` as a 1-D int64 array, refusing floats (which would be silently truncated)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integers, got dtype {arr.dtype}; round explicitly first, "
            f"e.g. np.rint({name}).astype(np.int64)"
        )
    return arr.astype(np.int64)


def validate_events(events, sensor_size=None):
    """Check an event array and return it unchanged; raise a clear error if it is unusable.

    Checks: fields of ``EVENT_DTYPE`` present, times non-negative and sorted, polarities in
    {0, 1}, and, when ``sensor_size = (W, H, P)`` is given, ``0 <= x < W`` and ``0 <= y < H``.
    """
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None or not set(EVENT_DTYPE.names) <= set(names):
        raise TypeError(
            "events must be a numpy structured array with fields x, y, t, p "
            f"(build one with make_events), got {type(events).__name__} with fields {names}"
        )
    if events.ndim != 1:
        raise ValueError(f"events must be one-dimensional, got shape {events.shape}")
    if events.size == 0:
        return events
    t, p = events["t"], events["p"]
    if t.min() < 0:
        raise ValueError(f"event times must be >= 0 microseconds, found t = {t.min()}")
    if np.any(np.diff(t) < 0):
        first = int(np.flatnonzero(np.diff(t) < 0)[0])
        raise ValueError(
            f"events must be sorted by time: t[{first}] = {t[first]} > t[{first + 1}] = {t[first + 1]}; "
            "sort with events[np.argsort(events['t'], kind='stable')]"
        )
    if not np.isin(p, (0, 1)).all():
        raise ValueError(f"polarities must be 0 (OFF) or 1 (ON), found {np.unique(p)}")
    if sensor_size is not None:
        width, height, _ = _check_sensor_size(sensor_size)
        for name, size in (("x", width), ("y", height)):
            col = events[name]
            if col.min() < 0 or col.max() >= size:
                raise ValueError(
                    f"event {name} must lie in [0, {size}) for sensor_size {tuple(sensor_size)}, "
                    f"found {name} in [{col.min()}, {col.max()}]; check the sensor size (W, H, P) "
                    "or crop the events"
                )
    return events


def make_events(x, y, t, p, sensor_size=None):
    """Build a time-sorted event array with dtype ``EVENT_DTYPE`` from four columns.

    ``t`` is in integer microseconds, ``p`` is 1 (ON) or 0 (OFF) (booleans accepted).
    Events are sorted by time with a stable sort, so simultaneous events keep their order.
    With ``sensor_size = (W, H, P)`` the coordinates are checked against the sensor.
    """
    columns = {name: _as_int_column(name, col) for name, col in zip("xytp", (x, y, t, p))}
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"x, y, t and p must have the same length, got {lengths}")
    events = np.empty(lengths["x"], dtype=EVENT_DTYPE)
    for name, col in columns.items():
        events[name] = col
    events = events[np.argsort(events["t"], kind="stable")]
    return validate_events(events, sensor_size)


def _bins(events, n_time_bins, time_window, start_us, duration_us):
    """Return ``(start, bin width, number of bins)`` for ``to_frames`` (see its docstring)."""
    if (n_time_bins is None) == (time_window is None):
        raise ValueError("give exactly one of n_time_bins or time_window")
    if start_us is None:
        start_us = int(events["t"][0]) if events.size else 0
    if duration_us is None:
        duration_us = max(int(events["t"][-1]) - start_us + 1, 1) if events.size else 1
    if duration_us <= 0:
        raise ValueError(f"duration_us must be > 0, got {duration_us}")
    if n_time_bins is not None:
        if int(n_time_bins) != n_time_bins or n_time_bins < 1:
            raise ValueError(f"n_time_bins must be a positive integer, got {n_time_bins!r}")
        return start_us, duration_us / n_time_bins, int(n_time_bins)
    if time_window <= 0:
        raise ValueError(f"time_window must be > 0 microseconds, got {time_window}")
    return start_us, float(time_window), math.ceil(duration_us / time_window)


def to_frames(events, sensor_size, *, n_time_bins=None, time_window=None, start_us=None, duration_us=None):
    """Count events into time-first frames ``[T, P, H, W]`` (float32) with ``tonic.transforms.ToFrame``.

    The recording window is ``[start_us, start_us + duration_us)``; events outside it are
    ignored. ``start_us`` defaults to the first event's time and ``duration_us`` to just
    past the last event, so by default every event is counted. Give exactly one of:

    - ``n_time_bins``: ``T = n_time_bins`` bins of width ``duration_us / n_time_bins``;
    - ``time_window``: bins of width ``time_window`` microseconds,
      ``T = ceil(duration_us / time_window)`` (the last bin may extend past the window).

    Bin ``k`` holds events with ``start + k*w <= t < start + (k+1)*w``. Fix ``start_us`` and
    ``duration_us`` to give every sample of a data set the same bins. Unlike tonic's own
    ``n_time_bins`` slicing (which spans first to last event and drops the last one), every
    event of the window is counted. With ``P = 1`` both polarities go into one channel.
    An empty event array gives all-zero frames.
    """
    width, height, n_pol = _check_sensor_size(sensor_size)
    validate_events(events, (width, height, n_pol))
    start, window, n_bins = _bins(events, n_time_bins, time_window, start_us, duration_us)
    if events.size == 0:
        return np.zeros((n_bins, n_pol, height, width), dtype=np.float32)
    events = events.copy()  # ToFrame may rewrite the polarity column in place
    if n_pol == 1:
        events["p"] = 0
    # tonic makes floor((end - start - w) / w) + 1 windows; half a window of slack makes that n_bins.
    to_frame = tonic.transforms.ToFrame(
        sensor_size=(width, height, n_pol),
        time_window=window,
        start_time=start,
        end_time=start + (n_bins + 0.5) * window,
    )
    frames = to_frame(events)
    if frames.shape != (n_bins, n_pol, height, width):
        raise RuntimeError(f"tonic ToFrame returned shape {frames.shape}, expected {(n_bins, n_pol, height, width)}")
    return frames.astype(np.float32)


def pack_events(events, sensor_size):
    """Encode each event as one unsigned integer ``code = ((t * H + y) * W + x) * 2 + p``.

    A compact storage format (4 bytes per event for N-MNIST-sized sensors and recordings
    under ~1 s, where the structured array takes 32); ``unpack_events`` inverts it. The
    dtype is the smallest unsigned integer holding the largest code.
    """
    width, height, _ = _check_sensor_size(sensor_size)
    validate_events(events, sensor_size)
    t_max = int(events["t"].max()) if events.size else 0
    if (t_max + 1) * height * width * 2 > np.iinfo(np.uint64).max:
        raise ValueError(f"times up to {t_max} µs on a {width}x{height} sensor do not fit in 64 bits")
    dtype = np.min_scalar_type((t_max + 1) * height * width * 2 - 1)
    t, y, x, p = (events[name].astype(np.uint64) for name in "tyxp")
    return (((t * height + y) * width + x) * 2 + p).astype(dtype)


def unpack_events(codes, sensor_size):
    """Events (``EVENT_DTYPE``) from the integer codes of ``pack_events``, in the same order."""
    width, height, _ = _check_sensor_size(sensor_size)
    rest = np.asarray(codes).astype(np.uint64)
    events = np.empty(rest.shape, dtype=EVENT_DTYPE)
    rest, events["p"] = np.divmod(rest, 2)
    rest, events["x"] = np.divmod(rest, width)
    events["t"], events["y"] = np.divmod(rest, height)
    return events


class PackedEventSet(torch.utils.data.Dataset):
    """Base of the embedded event data sets: samples stored packed (``pack_events``), framed on access.

    A subclass sets ``self._arrays`` (``codes``, ``offsets`` [N + 1] and ``labels`` [N], as
    ``cached_arrays`` returns them), ``self.sensor_size``, ``self.n_time_bins`` and
    ``self.duration_us``. Sample ``i`` is ``(frames, label)``: float32 ``[T, P, H, W]`` counts in
    ``T = n_time_bins`` equal bins over ``[0, duration_us]`` (an event exactly at ``duration_us``
    is counted too); ``events(i)`` gives the raw events.
    """

    @property
    def labels(self):
        """The label of every sample, [N]."""
        return self._arrays["labels"]

    def __len__(self):
        return len(self.labels)

    def events(self, i):
        """Raw events of sample ``i`` (``EVENT_DTYPE``, time-sorted, t in [0, duration_us])."""
        i = range(len(self))[i]  # IndexError for out-of-range i, supports negative i
        lo, hi = self._arrays["offsets"][i], self._arrays["offsets"][i + 1]
        return unpack_events(self._arrays["codes"][lo:hi], self.sensor_size)

    def __getitem__(self, i):
        frames = to_frames(self.events(i), self.sensor_size, n_time_bins=self.n_time_bins, start_us=0,
                           duration_us=self.duration_us + 1)
        return torch.from_numpy(frames), int(self.labels[i])

    def tensor_dataset(self) -> torch.utils.data.TensorDataset:
        """Every sample framed once and held in memory: frames [N, T, P, H, W] float32, labels [N] int64."""
        frames = torch.stack([self[i][0] for i in range(len(self))])
        return torch.utils.data.TensorDataset(frames, torch.as_tensor(np.asarray(self.labels), dtype=torch.long))
