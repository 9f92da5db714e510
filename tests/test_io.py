"""Atomic writes leave either the old file or the complete new one, never a fragment."""

import pandas as pd
import pytest

from snnlib.io import FILE_MODE, atomic_path, atomic_write, write_csv, write_json


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target) as handle:
        handle.write("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half of the sec")
            raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert list(target.parent.iterdir()) == [target]  # no temporary file left behind
    assert target.stat().st_mode & 0o777 == FILE_MODE  # not mkstemp's owner-only 0600


def test_atomic_path_for_libraries_that_write_by_name(tmp_path):
    target = tmp_path / "array.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin"
        tmp.write_bytes(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert target.stat().st_mode & 0o777 == FILE_MODE
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "never.bin") as tmp:
            tmp.write_bytes(b"x")
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["array.bin"]


def test_write_json_refuses_unserialisable_values_and_keeps_old_file(tmp_path):
    target = write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(TypeError, match="cannot store object"):
        write_json(target, {"x": object()})
    assert target.read_text().strip() == '{\n  "x": 1\n}'
    with pytest.raises(ValueError, match="write mode"):
        with atomic_write(target, "r"):
            pass


def test_write_csv_writes_the_frame_without_its_index(tmp_path):
    frame = pd.DataFrame({"model": ["snn", "rnn"], "accuracy": [0.5, 0.75]}, index=[7, 9])
    path = write_csv(tmp_path / "sub" / "table.csv", frame)
    assert path.read_text() == "model,accuracy\nsnn,0.5\nrnn,0.75\n"
    pd.testing.assert_frame_equal(pd.read_csv(path), frame.reset_index(drop=True))
