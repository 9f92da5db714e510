"""Tests for snnlib.data.datasets: every registry entry on a tiny data set fabricated in its exact layout.

Each fabricator writes the files from the format's description (independently of the
loaders) and returns what it wrote: per split, the samples in the loader's documented order
(sorted by file path) with their targets. The registry records the original data sets'
MD5s and counts; ``match_registry`` points them at the fabricated files, so everything else
(layout, parsing, units, labels, errors) is exercised as on the real data.
"""

import dataclasses
import hashlib
import math
import pickle
import struct
import wave
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnlib.data import __main__ as cli
from snnlib.data import datasets
from snnlib.data.datasets import (
    ChecksumError,
    CorruptDataError,
    MissingDataError,
    check_dataset,
    load_dataset,
    read_gen1_boxes,
)

# ---------------------------------------------------------------------------------------
# Writers, one per on-disk format, from the formats' descriptions


def random_events(rng, n, width, height, t_max=200_000):
    """Columns x, y, t (us, sorted), p of ``n`` random events on a ``width`` x ``height`` sensor."""
    return {"x": rng.integers(0, width, n), "y": rng.integers(0, height, n),
            "t": np.sort(rng.integers(0, t_max, n)), "p": rng.integers(0, 2, n)}


def write_atis_bin(path, ev):
    """N-MNIST / N-Caltech101 events: 5 bytes each = x, y, p<<7 | t[22:16], t[15:8], t[7:0]."""
    t = ev["t"].astype(np.int64)
    raw = np.stack([ev["x"], ev["y"], (ev["p"] << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.astype(np.uint8).tobytes())


def write_aedat4(path, ev, width, height):
    """A minimal uncompressed AEDAT4 file: header, IOHeader flatbuffer, one size-prefixed EVTS packet."""
    xml = ('<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
           '<node name="0" path="/mainloop/Recorder/outInfo/0/"><attr key="compression" type="string">NONE</attr>'
           '<attr key="typeIdentifier" type="string">EVTS</attr>'
           '<node name="info" path="/mainloop/Recorder/outInfo/0/info/">'
           f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
           '</node></node></node></dv>').encode() + b"\0"
    # IOHeader table at 24: vtable at 8 (3 fields: compression, file_data_position, description), string at 44.
    ioheader = (struct.pack("<I4s5H6x", 24, b"IOHE", 10, 20, 4, 8, 16) + struct.pack("<iiqI", 16, 0, -1, 4)
                + struct.pack("<I", len(xml) - 1) + xml)
    body = np.zeros(len(ev["t"]), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")])
    for name in ("t", "x", "y"):
        body[name] = ev[name]
    body["on"] = ev["p"]
    # EventPacket: root table at 20, vtable at 12, vector of 16-byte structs at 28 (elements 8-aligned at 32).
    content = (struct.pack("<I4s3H2x", 16, b"EVTS", 6, 8, 4) + struct.pack("<iII", 8, 4, len(body)) + body.tobytes())
    packet = struct.pack("<I", len(content)) + content
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(ioheader)) + ioheader
                     + struct.pack("<II", 0, len(packet)) + packet)


def write_dat(path, ev, width, height):
    """A Prophesee DAT file (version 2): text header, type and size bytes, then (uint32 t, uint32 packed) events."""
    header = f"% Data file containing CD events.\n% Version 2\n% Width {width}\n% Height {height}\n".encode()
    packed = ev["x"].astype(np.uint32) | (ev["y"].astype(np.uint32) << 14) | (ev["p"].astype(np.uint32) << 28)
    body = np.empty(len(packed), dtype=[("t", "<u4"), ("w", "<u4")])
    body["t"], body["w"] = ev["t"], packed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + bytes([0, 8]) + body.tobytes())


def write_wav(path, pcm):
    """A 16 kHz mono 16-bit wav file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(pcm.astype("<i2").tobytes())


def write_bytes(path, content):
    """``content`` into ``path``, creating folders (archives: any content, their MD5 is what is checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


# ---------------------------------------------------------------------------------------
# Fabricators: write a tiny data set, return {split: [(location, sample, target)]} in sorted order


def bad_first(ev, bad_x, width):
    """With ``bad_x``, move the first event just outside the sensor (x = width)."""
    if bad_x:
        ev["x"][0] = width
    return ev


def by_location(samples):
    """Samples sorted by location, the order the loaders promise."""
    return sorted(samples, key=lambda s: str(s[0]))


def fabricate_nmnist(data_dir, rng, bad_x=False):
    """NMNIST/{train,test}.zip + {Train,Test}/<digit>/<k>.bin (10 train digits, 2 test)."""
    root = data_dir / "NMNIST"
    expected = {}
    for split, folder, digits in (("train", "Train", range(10)), ("test", "Test", (3, 7))):
        write_bytes(root / f"{split}.zip", f"{split} archive".encode())
        samples = []
        for k, digit in enumerate(digits):
            ev = bad_first(random_events(rng, 20, 34, 34), bad_x and k == 0 and split == "train", 34)
            path = root / folder / str(digit) / f"{k:05d}.bin"
            write_atis_bin(path, ev)
            samples.append((path, ev, digit))
        expected[split] = by_location(samples)
    return expected


def fabricate_dvs_gesture(data_dir, rng, bad_x=False):
    """DVSGesture/<archive>.tar.gz + <split folder>/user<NN>_<lighting>/<label>.npy (x, y, p, t in ms)."""
    root = data_dir / "DVSGesture"
    expected = {}
    for split, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        write_bytes(root / f"{folder}.tar.gz", folder.encode())
        samples = []
        for user, lighting in ((1, "fluorescent"), (2, "led")) if split == "train" else ((24, "natural"),):
            for label in (0, 4, 10):
                ev = bad_first(random_events(rng, 15, 128, 128), bad_x and not samples and split == "train", 128)
                ev["t"] = ev["t"] // 1000  # tonic's files store milliseconds
                path = root / folder / f"user{user:02d}_{lighting}" / f"{label}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int64))
                samples.append((path, dict(ev, t=ev["t"] * 1000), label))
        expected[split] = by_location(samples)
    return expected


def fabricate_cifar10_dvs(data_dir, rng, bad_x=False):
    """CIFAR10DVS/CIFAR10DVS.zip + <class>/cifar10_<class>_<k>.aedat4, 10 files in each of two classes."""
    root = data_dir / "CIFAR10DVS"
    write_bytes(root / "CIFAR10DVS.zip", b"archive")
    per_class = {}
    for label, name in ((0, "airplane"), (3, "cat")):
        per_class[label] = []
        for k in range(10):
            ev = bad_first(random_events(rng, 12, 128, 128), bad_x and label == 0 and k == 0, 128)
            path = root / name / f"cifar10_{name}_{k}.aedat4"
            write_aedat4(path, ev, 128, 128)
            per_class[label].append((path, ev, label))
    expected = {"all": by_location(s for c in per_class.values() for s in c)}
    for split in ("train", "test"):  # spikingjelly's non-random split: first ceil(0.9 n) files of each class train
        chosen = [s for c in per_class.values()
                  for s in (by_location(c)[:math.ceil(0.9 * len(c))] if split == "train"
                            else by_location(c)[math.ceil(0.9 * len(c)):])]
        expected[split] = by_location(chosen)
    return expected


def write_ncaltech_annotation(path, box):
    """An N-Caltech101 annotation: int16 rows, cols, box contour (column-major), then an object contour."""
    x0, y0, x1, y1 = box
    contour = np.array([[x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]], dtype="<i2")
    obj = np.array([[x0 + 1, x1 - 1, x0 + 2], [y0 + 1, y1 - 1, y1 - 2]], dtype="<i2")
    write_bytes(path, struct.pack("<hh", 2, 5) + contour.tobytes(order="F") + struct.pack("<hh", 2, 3)
                + obj.tobytes(order="F"))


def fabricate_ncaltech101(data_dir, rng, bad_x=False):
    """NCALTECH101/<archive> + Caltech101/<class>/image_<n>.bin and their annotation_<n>.bin boxes."""
    root = data_dir / "NCALTECH101"
    write_bytes(root / "N-Caltech101-archive.zip", b"archive")
    samples = []
    for label, name in enumerate(("BACKGROUND_Google", "accordion", "airplanes")):  # sorted folder names
        for k in (1, 2):
            ev = bad_first(random_events(rng, 25, 240, 180), bad_x and not samples, 240)
            path = root / "Caltech101" / name / f"image_{k:04d}.bin"
            write_atis_bin(path, ev)
            box = (int(rng.integers(0, 100)), int(rng.integers(0, 80)), int(rng.integers(120, 239)),
                   int(rng.integers(100, 179)))
            write_ncaltech_annotation(root / "Caltech101_annotations" / name / f"annotation_{k:04d}.bin", box)
            samples.append((path, ev, (label, np.array(box, dtype=np.float32))))
    return {"all": by_location(samples)}


def write_hsd(path, samples, n_classes):
    """An SHD/SSC HDF5 file: spikes/times (s), spikes/units (vlen), labels, extra/keys, extra/speaker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        times = handle.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = handle.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ev, _) in enumerate(samples):
            times[i], units[i] = ev["t"] / 1e6, ev["x"]
        handle["labels"] = np.array([label for _, label in samples], dtype=np.uint16)
        handle["extra/keys"] = np.array([f"word{k}".encode() for k in range(n_classes)])
        handle["extra/speaker"] = np.zeros(len(samples), dtype=np.uint16)


def fabricate_hsd(data_dir, rng, bad_x, folder, splits, n_classes):
    """<folder>/<name>_<split>.h5.zip + <name>_<split>.h5 with 4 samples each (times: multiples of 1/64 s)."""
    root = data_dir / folder
    expected = {}
    for split in splits:
        stem = f"{folder.lower()}_{split}.h5"
        write_bytes(root / f"{stem}.zip", stem.encode())
        samples = []
        for k in range(4):
            ev = random_events(rng, 30, 700, 1)
            ev["t"] = ev["t"] // 15625 * 15625  # multiples of 1/64 s: exact in float32 seconds
            ev["p"] = np.ones(30, dtype=np.int64)  # tonic gives every spike p = 1
            samples.append((bad_first(ev, bad_x and k == 0 and split == splits[0], 700), int(rng.integers(n_classes))))
        write_hsd(root / stem, samples, n_classes)
        expected[split] = [(f"{root / stem} (sample {i})", ev, label) for i, (ev, label) in enumerate(samples)]
    return expected


def fabricate_shd(data_dir, rng, bad_x=False):
    """SHD: train and test files."""
    return fabricate_hsd(data_dir, rng, bad_x, "SHD", ("train", "test"), 20)


def fabricate_ssc(data_dir, rng, bad_x=False):
    """SSC: train, valid and test files."""
    return fabricate_hsd(data_dir, rng, bad_x, "SSC", ("train", "valid", "test"), 35)


def fabricate_gen1(data_dir, rng, bad_x=False):
    """gen1/detection_dataset_duration_60s_ratio_1.0/<split>/<name>_td.dat + <name>_bbox.npy (field ts)."""
    folder = data_dir / "gen1" / "detection_dataset_duration_60s_ratio_1.0"
    box_dtype = [("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"), ("class_id", "u1"),
                 ("confidence", "<f4"), ("track_id", "<u4")]
    expected = {}
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        samples = []
        for k in range(n):
            stem = f"17-04-0{k + 1}_10-00-00_{k * 60}000000_{(k + 1) * 60}000000"
            ev = bad_first(random_events(rng, 40, 304, 240, t_max=60_000_000), bad_x and k == 0 and split == "train",
                           304)
            write_dat(folder / split / f"{stem}_td.dat", ev, 304, 240)
            boxes = np.zeros(3, dtype=box_dtype)
            boxes["ts"] = np.sort(rng.integers(0, 60_000_000, 3))
            boxes["x"], boxes["y"], boxes["w"], boxes["h"] = rng.uniform(0, 200, (4, 3)).astype(np.float32)
            boxes["class_id"] = rng.integers(0, 2, 3)
            np.save(folder / split / f"{stem}_bbox.npy", boxes)
            samples.append((folder / split / f"{stem}_td.dat", ev, boxes))
        expected[split] = by_location(samples)
    return expected


DVS_SLR_SUBSET = {"users": ("user0", "user7"), "labels": ("at", "washhands"), "lights": ("dimLED",),
                  "positions": ("front", "back")}


def fabricate_dvs_slr(data_dir, rng, bad_x=False):
    """The authors' grid for DVS_SLR_SUBSET: event npz (t in ns) and frame npz (object t, RGB imgs)."""
    root = data_dir / "dvs_slr"
    samples = []
    for user in DVS_SLR_SUBSET["users"]:
        for label in DVS_SLR_SUBSET["labels"]:
            for light in DVS_SLR_SUBSET["lights"]:
                for position in DVS_SLR_SUBSET["positions"]:
                    stem = f"{user}_{label}_{light}_{position}"
                    ev = bad_first(random_events(rng, 50, 346, 260, t_max=6_000_000), bad_x and not samples, 346)
                    ev["t"][0], ev["t"][-1] = 0, 6_000_000  # a 6 s sample, stored in nanoseconds below
                    events_path = root / user / label / f"{stem}_event" / f"{stem}_event.npz"
                    events_path.parent.mkdir(parents=True)
                    np.savez(events_path, x=ev["x"], y=ev["y"], p=ev["p"], t=ev["t"] * 1000 + 1_600_000_000_000_000_000)
                    frame_t = np.arange(0, 6_000_000, 2_000_000)
                    imgs = rng.integers(0, 256, (len(frame_t), 260, 346, 3), dtype=np.uint8)
                    frames_path = root / user / label / f"{stem}_frame" / f"{stem}_frame.npz"
                    frames_path.parent.mkdir(parents=True)
                    np.savez(frames_path, t=np.array([int(v) * 1000 + 1_600_000_000_000_000_000 for v in frame_t],
                                                     dtype=object), imgs=imgs)
                    label_index = datasets.DVS_SLR_LABELS.index(label)
                    samples.append((events_path, dict(ev, t=ev["t"] + 1_600_000_000_000_000), label_index,
                                    (imgs, frame_t + 1_600_000_000_000_000)))
    return {"all": samples}  # the loader keeps the grid order users x labels x lights x positions


def idx_bytes(array):
    """An idx file: magic 0x0800 + ndim, the sizes as big-endian uint32, the uint8 data."""
    return struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def fabricate_mnist(data_dir, rng, bad_x=False):
    """mnist/<prefix>-{images,labels}.idx?-ubyte with 5 train and 3 test digits."""
    root = data_dir / "mnist"
    expected = {}
    for split, prefix, n in (("train", "train", 5), ("test", "t10k", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_bytes(root / f"{prefix}-images.idx3-ubyte", idx_bytes(images))
        write_bytes(root / f"{prefix}-labels.idx1-ubyte", idx_bytes(labels))
        expected[split] = [(f"{root / f'{prefix}-images.idx3-ubyte'} (image {i})", images[i], int(labels[i]))
                           for i in range(n)]
    return expected


def fabricate_cifar(data_dir, rng, root, folder, batches, label_key, meta, names_key, n_classes):
    """Python pickles of 3 images per batch file, and the class-name file."""
    names = [f"class{k}".encode() for k in range(n_classes)]
    write_bytes(data_dir / root / folder / meta, pickle.dumps({names_key: names}))
    expected = {}
    for split, files in batches.items():
        samples = []
        for name in files:
            images = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
            labels = rng.integers(0, n_classes, 3).tolist()
            path = data_dir / root / folder / name
            write_bytes(path, pickle.dumps({b"data": images, label_key: labels, b"batch_label": name.encode()}))
            samples += [(f"{path} (image {i})", images[i].reshape(3, 32, 32), labels[i]) for i in range(3)]
        expected[split] = samples
    return expected


def fabricate_cifar10(data_dir, rng, bad_x=False):
    """cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    batches = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}
    return fabricate_cifar(data_dir, rng, "cifar10", "cifar-10-batches-py", batches, b"labels", "batches.meta",
                           b"label_names", 10)


def fabricate_cifar100(data_dir, rng, bad_x=False):
    """cifar100/cifar-100-python/{train, test, meta}."""
    return fabricate_cifar(data_dir, rng, "cifar100", "cifar-100-python", {"train": ["train"], "test": ["test"]},
                           b"fine_labels", "meta", b"fine_label_names", 100)


def fabricate_gsc(data_dir, rng, bad_x=False):
    """speech_commands/: archive, <word>/<speaker>.wav, one 2.5 s noise recording, the two split lists."""
    root = data_dir / "speech_commands"
    write_bytes(root / "speech_commands_v0.02.tar.gz", b"archive")
    clips = {}
    for word in ("yes", "go", "cat", "marvin"):
        for speaker in ("0a7c2a8d_nohash_0", "b5cf6ea8_nohash_1", "c1d39ce8_nohash_0"):
            pcm = rng.integers(-30000, 30000, int(rng.integers(8000, 16001)))
            write_wav(root / word / f"{speaker}.wav", pcm)
            clips[f"{word}/{speaker}.wav"] = pcm
    noise = rng.integers(-3000, 3000, 40000)  # 2.5 s: two whole 1 s silence clips
    write_wav(root / "_background_noise_" / "white_noise.wav", noise)
    names = sorted(clips)
    lists = {"validation": names[0::4], "testing": names[1::4]}
    for name, members in lists.items():
        write_bytes(root / f"{name}_list.txt", ("\n".join(members) + "\n").encode())

    def label(name):
        word = name.split("/")[0]
        return {"yes": 2, "go": 11}.get(word, 0)  # ASRC-SNN's order: unknown 0, silence 1, yes 2 ... go 11

    def waveform(pcm):
        padded = np.zeros(16000, dtype=np.float32)
        padded[:len(pcm)] = pcm / 32768
        return padded

    train = [n for n in names if n not in lists["validation"] and n not in lists["testing"]]
    expected = {split: [(str(root / n), waveform(clips[n]), label(n)) for n in members]
                for split, members in (("train", train), ("valid", lists["validation"]), ("test", lists["testing"]))}
    silence = root / "_background_noise_" / "white_noise.wav"
    expected["train"] += [(f"{silence} (from sample {s})" if s else str(silence), waveform(noise[s:s + 16000]), 1)
                          for s in (0, 16000)]
    return expected


FABRICATE = {name[len("fabricate_"):]: fn for name, fn in globals().items()
             if name.startswith("fabricate_") and name[len("fabricate_"):] in datasets.REGISTRY}
OPTIONS = {"dvs_slr": DVS_SLR_SUBSET}
EVENT_SETS = ("nmnist", "dvs_gesture", "cifar10_dvs", "ncaltech101", "shd", "ssc", "gen1", "dvs_slr")


def file_md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def match_registry(monkeypatch, name, data_dir):
    """Point REGISTRY[name]'s MD5s and counts (those of the original data set) at the fabricated files."""
    spec = datasets.REGISTRY[name]
    root = data_dir / spec.root

    def items(path):
        if path.suffix == ".h5":
            with h5py.File(path, "r") as handle:
                return len(handle["labels"])
        return len([line for line in path.read_text().splitlines() if line])

    files = tuple(dataclasses.replace(f, md5=file_md5(root / f.path) if f.md5 else None,
                                      items=items(root / f.path) if f.items is not None else None) for f in spec.files)
    folders = tuple(dataclasses.replace(f, count=sum(1 for p in root.glob(f.pattern) if p.is_file()))
                    for f in spec.folders)
    monkeypatch.setitem(datasets.REGISTRY, name, dataclasses.replace(spec, files=files, folders=folders))
    return datasets.REGISTRY[name]


@pytest.fixture
def fabricated(tmp_path, monkeypatch):
    """``make(name, bad_x=False)`` fabricates data set ``name`` under tmp_path/data and matches the registry."""
    def make(name, bad_x=False):
        data_dir = tmp_path / "data"
        expected = FABRICATE[name](data_dir, np.random.default_rng(7), bad_x=bad_x)
        return data_dir, match_registry(monkeypatch, name, data_dir), expected
    return make


def tree_state(folder):
    """Every file under ``folder`` with its size, modification time and MD5 (to prove nothing changed)."""
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns, file_md5(p))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def load(name, split, data_dir):
    return load_dataset(name, split, data_dir, **OPTIONS.get(name, {}))


# ---------------------------------------------------------------------------------------
# The registry itself


def test_every_registry_entry_has_a_fabricator_and_complete_metadata():
    assert sorted(FABRICATE) == sorted(datasets.REGISTRY)
    for name, spec in datasets.REGISTRY.items():
        assert spec.name == name and spec.splits and spec.n_classes > 0
        assert spec.source and spec.licence and spec.size and (spec.files or spec.folders)
        assert all(len(f.md5) == 32 for f in spec.files if f.md5)
        assert all(set(e.splits) <= set(spec.splits) for e in spec.files + spec.folders)
    assert datasets.datasets_for("he2020") == ["nmnist", "dvs_gesture"]
    assert sorted(datasets.datasets_for("xu2025")) == ["gsc", "mnist", "ssc"]
    for work in ("zhou2024", "jiang2025", "wang2024", "hong2024"):
        assert datasets.datasets_for(work)
    assert datasets.datasets_for("ma2023") == []  # retina recordings: not installable (data/README.md)


def test_original_counts_are_consistent():
    spec = datasets.REGISTRY["dvs_slr"]
    grid = (len(datasets.DVS_SLR_USERS) * len(datasets.DVS_SLR_LABELS) * len(datasets.DVS_SLR_LIGHTS)
            * len(datasets.DVS_SLR_POSITIONS))
    assert [f.count for f in spec.folders] == [grid, grid] == [5418, 5418]  # the authors' README: 5,418 samples
    gsc = datasets.REGISTRY["gsc"]
    listed = sum(f.items for f in gsc.files if f.items)
    assert gsc.folders[0].count == 105_829 + 6 and listed < 105_829  # 105,829 clips + 6 noise recordings


def test_data_readme_lists_every_data_set_checksum_and_count():
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    for name, spec in datasets.REGISTRY.items():
        assert f"`{name}`" in readme and spec.root in readme
        for entry in spec.files:
            assert entry.md5 is None or entry.md5 in readme, (name, entry.path)
            assert entry.items is None or f"{entry.items:,}" in readme, (name, entry.path)
        for entry in spec.folders:
            assert f"{entry.count:,}" in readme, (name, entry.pattern)


def test_unknown_names_and_splits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="registered: nmnist"):
        load_dataset("nmist", "train", tmp_path)
    with pytest.raises(ValueError, match="splits train, test"):
        load_dataset("nmnist", "validation", tmp_path)


# ---------------------------------------------------------------------------------------
# Loading what was written


def assert_same_events(loaded, written):
    assert loaded.dtype.names == ("x", "y", "t", "p")
    for field in "xytp":
        np.testing.assert_array_equal(loaded[field], written[field], err_msg=field)


def assert_same_sample(name, sample, target, written, written_target):
    if name == "dvs_slr":
        assert_same_events(sample.events, written)
        np.testing.assert_array_equal(sample.frames, written_target[1][0])
        np.testing.assert_array_equal(sample.frame_t, written_target[1][1])
        assert target == written_target[0]
    elif name == "gen1":
        assert_same_events(sample, written)
        for field in ("x", "y", "w", "h", "class_id"):
            np.testing.assert_array_equal(target[field], written_target[field])
        np.testing.assert_array_equal(target["t"], written_target["ts"])
    elif name == "ncaltech101":  # the written target is (label, box); without with_boxes only the label
        assert_same_events(sample, written)
        assert target == written_target[0]
    elif name in EVENT_SETS:
        assert_same_events(sample, written)
        assert target == written_target
    else:
        np.testing.assert_array_equal(sample.numpy(), written)
        assert target == written_target


@pytest.mark.parametrize("name", sorted(datasets.REGISTRY))
def test_fabricated_data_set_loads_with_what_was_written(name, fabricated):
    data_dir, spec, expected = fabricated(name)
    for split, samples in expected.items():
        dataset = load(name, split, data_dir)
        assert [str(p) for p in dataset.locations] == [str(s[0]) for s in samples]
        assert len(dataset) == len(samples)
        for i, written in enumerate(samples):
            target = (written[2], written[3]) if name == "dvs_slr" else written[2]
            assert_same_sample(name, *dataset[i], written[1], target)


def test_ncaltech101_boxes_and_classes(fabricated):
    data_dir, _, expected = fabricated("ncaltech101")
    dataset = load_dataset("ncaltech101", "all", data_dir, with_boxes=True)
    assert dataset.classes == ["BACKGROUND_Google", "accordion", "airplanes"]
    for i, (_, _, (label, box)) in enumerate(expected["all"]):
        _, (loaded_label, loaded_box) = dataset[i]
        assert loaded_label == label
        np.testing.assert_array_equal(loaded_box, box)


def test_dvs_slr_conditions_and_bad_choices(fabricated):
    data_dir, _, _ = fabricated("dvs_slr")
    dataset = load_dataset("dvs_slr", "all", data_dir, users=("user7",), labels=("washhands",),
                           lights=("dimLED",), positions=("back",))
    assert dataset.conditions == [("user7", "washhands", "dimLED", "back")]
    assert dataset.targets == [datasets.DVS_SLR_LABELS.index("washhands")]
    with pytest.raises(ValueError, match="unknown DVS-SLR lights"):
        load_dataset("dvs_slr", "all", data_dir, users=("user0",), lights=("sunlight",))
    with pytest.raises(MissingDataError, match="user1_at_brightLED_front_event.npz"):
        load_dataset("dvs_slr", "all", data_dir, users=("user1",))


def test_dvs_slr_frames_sit_inside_the_event_span(fabricated):
    data_dir, _, _ = fabricated("dvs_slr")
    recording, _ = load("dvs_slr", "all", data_dir)[0]
    assert recording.sensor_size == (346, 260, 2) and recording.frames.shape[1:] == (260, 346, 3)
    assert recording.events["t"][0] <= recording.frame_t[0] and recording.frame_t[-1] <= recording.events["t"][-1]


def test_gen1_boxes_keep_t_when_the_file_says_ts(tmp_path):
    boxes = np.zeros(2, dtype=[("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                               ("class_id", "u1")])
    boxes["ts"] = [5, 9]
    np.save(tmp_path / "a_bbox.npy", boxes)
    np.testing.assert_array_equal(read_gen1_boxes(tmp_path / "a_bbox.npy")["t"], [5, 9])
    np.save(tmp_path / "b_bbox.npy", boxes[::-1])
    with pytest.raises(CorruptDataError, match="not sorted"):
        read_gen1_boxes(tmp_path / "b_bbox.npy")


def test_transform_is_applied_after_the_checks(fabricated):
    data_dir, _, expected = fabricated("nmnist")
    dataset = load_dataset("nmnist", "test", data_dir, transform=lambda events: len(events))
    assert dataset[0] == (len(expected["test"][0][1]["t"]), expected["test"][0][2])


# ---------------------------------------------------------------------------------------
# Bad input: clear errors, nothing modified


def remove_first_entry(spec, root):
    """Delete the first registered file of ``spec`` (or every file of its first folder pattern); return its name."""
    if spec.files:
        (root / spec.files[0].path).unlink()
        return str(root / spec.files[0].path)
    for path in root.glob(spec.folders[0].pattern):
        path.unlink()
    return str(root / spec.folders[0].pattern)


@pytest.mark.parametrize("name", sorted(datasets.REGISTRY))
def test_missing_file_is_named_with_where_to_get_it(name, fabricated):
    data_dir, spec, _ = fabricated(name)
    removed = remove_first_entry(spec, data_dir / spec.root)
    before = tree_state(data_dir)
    with pytest.raises(MissingDataError) as info:
        load(name, spec.splits[0], data_dir)
    assert removed in str(info.value) and spec.source.split()[0] in str(info.value)
    assert tree_state(data_dir) == before


@pytest.mark.parametrize("name", sorted(n for n, s in datasets.REGISTRY.items() if any(f.md5 for f in s.files)))
def test_wrong_checksum_names_the_file_and_both_md5s(name, fabricated):
    data_dir, spec, _ = fabricated(name)
    entry = next(f for f in spec.files if f.md5)
    split = entry.splits[0] if entry.splits else spec.splits[0]
    load(name, split, data_dir)  # fine first; the MD5 cache must notice the change below
    victim = data_dir / spec.root / entry.path
    victim.write_bytes(victim.read_bytes() + b"\0")
    before = tree_state(data_dir)
    with pytest.raises(ChecksumError) as info:
        load(name, split, data_dir)
    assert str(victim) in str(info.value) and entry.md5 in str(info.value) and file_md5(victim) in str(info.value)
    assert str(info.value).count("download it") == 1  # one hint, not "download it again: download it from"
    assert tree_state(data_dir) == before


@pytest.mark.parametrize("name", sorted(n for n, s in datasets.REGISTRY.items() if s.folders))
def test_a_missing_sample_file_breaks_the_count(name, fabricated):
    data_dir, spec, _ = fabricated(name)
    folder = spec.folders[0]
    sorted(p for p in (data_dir / spec.root).glob(folder.pattern) if p.is_file())[-1].unlink()
    before = tree_state(data_dir)
    with pytest.raises(CorruptDataError, match=f"{folder.count - 1} files, the original data set has {folder.count}"):
        load(name, folder.splits[0] if folder.splits else spec.splits[0], data_dir)
    assert tree_state(data_dir) == before


@pytest.mark.parametrize("name", sorted(datasets.REGISTRY))
def test_empty_folder_is_reported_not_crashed_on(name, tmp_path):
    spec = datasets.REGISTRY[name]
    (tmp_path / spec.root).mkdir()
    with pytest.raises(MissingDataError, match="missing|0 files"):
        load(name, spec.splits[0], tmp_path)
    assert [p for p in tmp_path.rglob("*")] == [tmp_path / spec.root]


def truncate(path, n_bytes):
    path.write_bytes(path.read_bytes()[:-n_bytes])


TRUNCATED_SAMPLE = {"nmnist": ("Train/*/*.bin", 2), "dvs_gesture": ("ibmGestureTrain/*/*.npy", 9),
                    "cifar10_dvs": ("*/*.aedat4", 7), "ncaltech101": ("Caltech101/*/*.bin", 3),
                    "gen1": ("detection_dataset_duration_60s_ratio_1.0/train/*_td.dat", 3),
                    "dvs_slr": ("user0/*/*_event/*.npz", 20), "gsc": ("yes/b5cf6ea8_nohash_1.wav", 2)}


@pytest.mark.parametrize("name", sorted(TRUNCATED_SAMPLE))
def test_truncated_sample_raises_naming_its_file(name, fabricated):
    data_dir, spec, _ = fabricated(name)
    pattern, n_bytes = TRUNCATED_SAMPLE[name]
    victim = sorted((data_dir / spec.root).glob(pattern))[0]
    truncate(victim, n_bytes)
    split = next((s for s in spec.splits if s in pattern.lower() or s == "all"), spec.splits[0])
    dataset = load(name, split, data_dir)
    index = [str(loc).split(" (")[0] for loc in dataset.locations].index(str(victim))
    before = tree_state(data_dir)
    with pytest.raises(CorruptDataError) as info:
        dataset[index]
    assert str(victim) in str(info.value)
    assert tree_state(data_dir) == before
    other = (index + 1) % len(dataset)
    assert dataset[other] is not None  # the other samples still load


@pytest.mark.parametrize("name", EVENT_SETS)
def test_events_outside_the_sensor_are_reported_with_their_file(name, fabricated):
    data_dir, spec, _ = fabricated(name, bad_x=True)
    failures = []
    for split in spec.splits:
        dataset = load(name, split, data_dir)
        for i in range(len(dataset)):
            try:
                dataset[i]
            except CorruptDataError as err:
                failures.append((str(dataset.locations[i]), str(err)))
    assert len({location for location, _ in failures}) == 1  # CIFAR10-DVS: the file is in "train" and "all"
    location, message = failures[0]
    assert location in message and f"x must lie in [0, {spec.sensor_size[0]})" in message


def test_lenient_load_warns_about_a_partial_copy_but_still_needs_the_samples(fabricated):
    data_dir, _, expected = fabricated("nmnist")
    (data_dir / "NMNIST" / "train.zip").unlink()
    removed = expected["train"][0][0]
    removed.unlink()
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset("nmnist", "train", data_dir, strict=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "train.zip: missing" in messages and "9 files, the original data set has 10" in messages
    assert dataset.locations == [str(s[0]) for s in expected["train"][1:]]
    assert_same_events(dataset[0][0], expected["train"][1][1])
    for path in (data_dir / "NMNIST" / "Train").rglob("*.bin"):
        path.unlink()
    with pytest.raises(MissingDataError, match="0 files"):
        load_dataset("nmnist", "train", data_dir, strict=False)


# ---------------------------------------------------------------------------------------
# check_dataset and the verify command


def test_check_dataset_lists_every_problem_without_raising(fabricated):
    data_dir, spec, _ = fabricated("ssc")
    (data_dir / "SSC" / "ssc_test.h5").unlink()
    (data_dir / "SSC" / "ssc_valid.h5.zip").write_bytes(b"changed")
    problems = check_dataset("ssc", None, data_dir)
    assert sorted(p.kind for p in problems) == ["checksum", "missing"]
    assert check_dataset("ssc", "train", data_dir) == []
    assert {p.kind for p in check_dataset("ssc", "valid", data_dir, md5=False)} == set()


def test_h5_sample_count_is_checked(fabricated, monkeypatch):
    data_dir, spec, _ = fabricated("ssc")
    files = tuple(dataclasses.replace(f, items=f.items + 1) if f.items else f for f in spec.files)
    monkeypatch.setitem(datasets.REGISTRY, "ssc", dataclasses.replace(spec, files=files))
    with pytest.raises(CorruptDataError, match="holds 4 entries, the original has 5"):
        load_dataset("ssc", "test", data_dir)


def test_verify_on_an_empty_data_folder_reports_every_data_set_and_fails(tmp_path, capsys):
    assert cli.main(["verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for name, spec in datasets.REGISTRY.items():
        assert f"{name} " in out and str(tmp_path / spec.root) in out and spec.source.split()[0] in out
    assert f"0 of {len(datasets.REGISTRY)} data sets OK" in out
    assert list(tmp_path.iterdir()) == []


def test_verify_passes_on_good_data_and_names_what_is_wrong(fabricated, capsys):
    data_dir, spec, _ = fabricated("nmnist")
    assert cli.main(["verify", "nmnist", "--data-dir", str(data_dir)]) == 0
    assert "nmnist  OK" in capsys.readouterr().out
    (data_dir / "NMNIST" / "test.zip").write_bytes(b"truncated")
    assert cli.main(["verify", "nmnist", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "1 problem(s)" in out and str(data_dir / "NMNIST" / "test.zip") in out and spec.files[1].md5 in out
    assert cli.main(["verify", "nmnist", "--no-md5", "--data-dir", str(data_dir)]) == 0
    assert cli.main(["verify", "nosuchset", "--data-dir", str(data_dir)]) == 1
    assert "unknown data set 'nosuchset'" in capsys.readouterr().err
