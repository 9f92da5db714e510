"""Tests for snnlib.data.cache: parameter-keyed, atomic, self-repairing array cache."""

import json

import numpy as np
import pytest

from snnlib.data.cache import cache_path, cached_arrays


class Builder:
    """A build function that counts its calls."""

    def __init__(self, value=1.0):
        self.calls, self.value = 0, value

    def __call__(self):
        self.calls += 1
        return {"a": np.arange(5) * self.value, "b": np.ones((2, 3), np.uint8)}


PARAMS = {"version": "1", "n": 5, "sizes": [2, 3], "nested": {"x": 0.5}}


def test_same_params_hit_the_cache(tmp_path):
    build = Builder()
    first = cached_arrays("demo", PARAMS, build, tmp_path)
    again = cached_arrays("demo", dict(reversed(list(PARAMS.items()))), build, tmp_path)  # key order irrelevant
    assert build.calls == 1
    for key in ("a", "b"):
        np.testing.assert_array_equal(first[key], again[key])
        assert first[key].dtype == again[key].dtype
    assert set(again) == {"a", "b"}


def test_changed_params_or_version_rebuild(tmp_path):
    build = Builder()
    cached_arrays("demo", PARAMS, build, tmp_path)
    cached_arrays("demo", dict(PARAMS, n=6), build, tmp_path)
    cached_arrays("demo", dict(PARAMS, version="2"), build, tmp_path)
    assert build.calls == 3
    assert len(list((tmp_path / "cache").glob("demo-*.npz"))) == 3


def test_params_are_stored_beside_and_no_temp_files_remain(tmp_path):
    cached_arrays("demo", PARAMS, Builder(), tmp_path)
    path = cache_path("demo", PARAMS, tmp_path)
    assert path.parent == tmp_path / "cache" and path.name.startswith("demo-")
    assert json.loads(path.with_suffix(".json").read_text()) == PARAMS
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"not a zip file"])
def test_corrupt_cache_file_is_rebuilt_with_a_warning(tmp_path, damage):
    build = Builder()
    cached_arrays("demo", PARAMS, build, tmp_path)
    path = cache_path("demo", PARAMS, tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(UserWarning, match="unreadable"):
        arrays = cached_arrays("demo", PARAMS, build, tmp_path)
    assert build.calls == 2
    np.testing.assert_array_equal(arrays["a"], np.arange(5))
    cached_arrays("demo", PARAMS, build, tmp_path)  # repaired: a hit again
    assert build.calls == 2


def test_cache_file_with_other_params_is_rebuilt(tmp_path):
    cached_arrays("demo", PARAMS, Builder(), tmp_path)
    other = dict(PARAMS, n=7)
    cache_path("demo", PARAMS, tmp_path).replace(cache_path("demo", other, tmp_path))  # a file under a wrong key
    build = Builder(value=2.0)
    with pytest.warns(UserWarning, match="other parameters"):
        arrays = cached_arrays("demo", other, build, tmp_path)
    assert build.calls == 1
    np.testing.assert_array_equal(arrays["a"], np.arange(5) * 2.0)


def test_bad_usage_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'version'"):
        cached_arrays("demo", {"n": 1}, Builder(), tmp_path)
    with pytest.raises(TypeError, match="JSON"):
        cached_arrays("demo", {"version": "1", "n": np.int64(1)}, Builder(), tmp_path)
    with pytest.raises(ValueError, match="cache name"):
        cached_arrays("../escape", PARAMS, Builder(), tmp_path)
    with pytest.raises(TypeError, match="dict of numpy arrays"):
        cached_arrays("demo", PARAMS, lambda: [np.zeros(3)], tmp_path)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.npz"))
