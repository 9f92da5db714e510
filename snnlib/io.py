"""Safe file output: nothing half-written is ever left under a final name.

Every file the project generates goes through :func:`atomic_write`: the content is written
to a temporary file in the destination folder and renamed over the destination only once it
is complete (``os.replace`` is atomic on one file system). A crash or a killed job leaves
either the old file or none, never a truncated one, so an interrupted ``snakemake all``
restarts cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; published files get the usual mode.
FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[Any]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success.

    Parent folders are created. On any exception the temporary file is removed and the
    exception propagates; ``path`` is untouched.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write needs a write mode such as 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) for libraries that write to a
    file name themselves (``fig.savefig``, ``np.savez``, ``torch.save``); rename on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=_jsonable)
        handle.write("\n")
    return Path(path)


def write_csv(path: str | os.PathLike, frame, **to_csv_kwargs) -> Path:
    """Write a pandas DataFrame as CSV without its index, atomically (``to_csv_kwargs`` go to ``to_csv``)."""
    with atomic_write(path, newline="") as handle:
        frame.to_csv(handle, index=False, **to_csv_kwargs)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def _jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON: convert it to a number, string or list")
