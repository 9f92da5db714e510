"""A disk cache for generated arrays, keyed by the parameters that generated them.

``cached_arrays(name, params, build)`` returns ``build()``'s dict of numpy arrays, stored
uncompressed (fast to write and read) as ``<data_dir>/cache/<name>-<key>.npz`` with
``key`` = the first 16 hex digits of ``sha256(canonical JSON of params)``; canonical
JSON = sorted keys, no whitespace, tuples as lists. ``params`` must hold a ``"version"``
entry naming the generator's version, so that changing the generating code (and bumping
its version) changes the key, as does any changed parameter. The parameters are stored
inside the ``.npz`` (``__params__``) and beside it as ``<name>-<key>.json`` for people to
read. Files are written atomically; a cache file that cannot be read, or whose stored
parameters differ, is rebuilt with a warning.
"""

import hashlib
import json
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from snnlib.io import atomic_path, write_text

_PARAMS_KEY = "__params__"
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def canonical_json(params):
    """``params`` as canonical JSON text (sorted keys, compact); ``TypeError`` if not JSON-serialisable."""
    try:
        return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"cache params must be JSON-serialisable (str, int, float, bool, None, lists, dicts): "
                        f"{err}; convert numpy scalars with int()/float()") from err


def cache_path(name, params, data_dir="data"):
    """Path of the cache file for ``name`` and ``params`` (see the module docstring)."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"cache name must be letters, digits, '_', '.', '-' (a file name stem), got {name!r}")
    if not isinstance(params, dict) or "version" not in params:
        raise ValueError("cache params must be a dict with a 'version' entry naming the generator's version, "
                         "so that a change of the generating code changes the cache key")
    key = hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]
    return Path(data_dir) / "cache" / f"{name}-{key}.npz"


def _load(path, params_text):
    """The arrays stored at ``path``, or ``None`` (with a warning) if unreadable or for other params."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(f"cache file {path} is unreadable ({err}); rebuilding it", stacklevel=3)
        return None
    if str(arrays.pop(_PARAMS_KEY, "")) != params_text:
        warnings.warn(f"cache file {path} was made with other parameters; rebuilding it", stacklevel=3)
        return None
    return arrays


def _check_built(arrays):
    """Raise ``TypeError`` unless ``arrays`` is a dict of str -> non-object numpy arrays."""
    if not isinstance(arrays, dict):
        raise TypeError(f"build() must return a dict of numpy arrays, got {type(arrays).__name__}")
    for key, value in arrays.items():
        if not isinstance(key, str) or key == _PARAMS_KEY:
            raise TypeError(f"build() returned an invalid array name {key!r}")
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"build() must return plain numpy arrays; {key!r} is {type(value).__name__}")


def cached_arrays(name, params, build, data_dir="data"):
    """Return ``build()`` (a dict of numpy arrays), computed once and cached on disk by ``params``."""
    path = cache_path(name, params, data_dir)
    params_text = canonical_json(params)
    if path.exists():
        arrays = _load(path, params_text)
        if arrays is not None:
            return arrays
    arrays = build()
    _check_built(arrays)
    with atomic_path(path) as part:
        with open(part, "wb") as f:
            np.savez(f, **arrays, **{_PARAMS_KEY: np.array(params_text)})
    write_text(path.with_suffix(".json"), json.dumps(params, sort_keys=True, indent=2) + "\n")
    return arrays
