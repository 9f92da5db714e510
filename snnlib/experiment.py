"""Run an (arm x seed) grid of experiments with an on-disk cache; tidy results for the claims.

A work's notebook says what one run is -- ``fn(arm, params, seed) -> dict`` builds, seeds, trains
and evaluates one model -- and which arms (name -> params) over which seeds; :func:`run_grid` runs
every (arm, seed) pair once and returns a :class:`GridResult`:

* ``table``: a tidy DataFrame, one row per run: ``arm``, ``seed`` and every scalar (int, float,
  bool, str) the function returned;
* ``outputs[(arm, seed)]``: the whole returned dict (histories, tensors, state dicts);
* :meth:`GridResult.paired` gives two arms' values of one metric as Series indexed by seed,
  ready for :mod:`snnlib.stats` and :meth:`snnlib.claims.ClaimLedger.judge`.

Cache. Each run is stored with ``torch.save`` as ``.cache/experiments/<key>/<tag>/<h>.pt`` under
the project root, where ``h`` hashes the tag, the arm's name and params (canonical JSON), the
seed, ``context`` (anything else the function reads, e.g. the work's config section: a value it
takes from a global and not from its params would otherwise not be in the key), the function's
source text and a hash of every ``snnlib/**/*.py`` file. A rerun with the
same code and config loads the stored dict; any change of code or config recomputes. Files are
written atomically; an unreadable one is recomputed with a warning.

Parallel seeds. Small SNNs on a CPU use a second core poorly within one process (the per-step
Python loop is serial), so independent runs go to ``workers`` forked processes. Measured on the
project's 2-core machine (four runs of a 64-128-10 LIF MLP, T = 20, 120 Adam steps each): 1.53 s
in one process with two torch threads, 1.52 s with one, 0.80-0.85 s in two workers (1.8x). Every run -- in a
worker or in this process -- executes with ``torch.set_num_threads(1)``, so the numbers do not
depend on how many workers ran them. ``workers=None`` takes ``$SNNLIB_WORKERS`` (the Snakefile
sets it to the rule's ``threads``) or else min(2, CPUs). Forking means the function and the
arguments are inherited, not pickled: a function defined in a notebook cell works, but nothing
it reads may change while :func:`run_grid` runs. What a run loads lazily on first use and is the
same in every run -- torch._dynamo, which torch.optim imports on an optimizer's first call (~2.5 s),
and the numba kernels of snnlib's fused neurons -- is loaded here once before the fork, so that the
workers inherit it instead of each loading it again (`benchmarks/work_profile.py` found that 5-12 %
of some works' CPU time, every run_grid call forking fresh workers).
"""

from __future__ import annotations

import hashlib
import inspect
import multiprocessing
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from snnlib.config import project_root
from snnlib.data.cache import canonical_json
from snnlib.io import atomic_path

_SOURCE_HASH: str | None = None
_JOBS: list = []  # (fn, arm, params, seed, path) of the grid being run; inherited by forked workers


def snnlib_source_hash() -> str:
    """sha256 over the path and text of every snnlib/**/*.py file (computed once per process)."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        package = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
        _SOURCE_HASH = digest.hexdigest()
    return _SOURCE_HASH


def _function_text(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # no source file (e.g. built in a string): fall back on the bytecode
        return f"{fn.__module__}.{fn.__qualname__}:{fn.__code__.co_code.hex()}:{fn.__code__.co_consts!r}"


def default_workers() -> int:
    """``$SNNLIB_WORKERS`` if set (a positive integer), else min(2, number of CPUs)."""
    value = os.environ.get("SNNLIB_WORKERS")
    if value is None:
        return min(2, os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"SNNLIB_WORKERS must be a positive integer, got {value!r}")
    return int(value)


@dataclass
class GridResult:
    """What :func:`run_grid` returns: the tidy table and every run's full output."""

    table: pd.DataFrame
    outputs: dict[tuple[str, int], dict] = field(default_factory=dict)

    def paired(self, metric: str, arm_a: str, arm_b: str) -> tuple[pd.Series, pd.Series]:
        """``metric`` of two arms as Series indexed by seed (the same seeds in both)."""
        return self.values(metric, arm_a), self.values(metric, arm_b)

    def values(self, metric: str, arm: str) -> pd.Series:
        """``metric`` of one arm, indexed by seed."""
        if metric not in self.table.columns:
            raise KeyError(f"no metric '{metric}' in the grid; the runs returned {sorted(self.table.columns)}")
        part = self.table[self.table["arm"] == arm]
        if part.empty:
            raise KeyError(f"no arm '{arm}' in the grid; arms: {sorted(self.table['arm'].unique())}")
        return part.set_index("seed")[metric].rename(arm)


def _check_arms(arms: Mapping[str, Mapping], seeds: Sequence[int]) -> None:
    if not arms:
        raise ValueError("run_grid needs at least one arm (name -> params)")
    for name, params in arms.items():
        if not isinstance(name, str) or not isinstance(params, Mapping):
            raise TypeError(f"arms must map a name (str) to a dict of params, got {name!r}: {params!r}")
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")


def _cache_file(folder: Path, fn_text: str, tag: str, arm: str, params: Mapping, seed: int, context) -> Path:
    text = canonical_json({"tag": tag, "arm": arm, "params": dict(params), "seed": seed, "fn": fn_text,
                           "context": context, "snnlib": snnlib_source_hash()})
    return folder / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.pt"


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=False)
    except Exception as err:  # a truncated or foreign file: recompute
        warnings.warn(f"experiment cache {path} is unreadable ({err}); recomputing it", stacklevel=3)
        return None


def _load_before_fork() -> None:
    """Load in this process what every forked worker would otherwise load for itself (module docstring)."""
    import torch._dynamo  # noqa: F401  (torch.optim imports it on first use)

    from snnlib.neurons import _numba_kernels
    _numba_kernels()


def _run_one(index: int) -> int:
    """Run job ``index`` of ``_JOBS`` with one torch thread and store its dict; returns the index."""
    fn, arm, params, seed, path = _JOBS[index]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = fn(arm, dict(params), seed)
    finally:
        torch.set_num_threads(threads)
    if not isinstance(out, dict):
        raise TypeError(f"{fn.__qualname__}({arm!r}, ..., seed={seed}) returned {type(out).__name__}, not a dict")
    with atomic_path(path) as tmp:
        torch.save(out, tmp)
    return index


def _scalars(out: dict) -> dict:
    return {k: v for k, v in out.items() if isinstance(v, (int, float, bool, str)) and k not in ("arm", "seed")}


def run_grid(fn: Callable[[str, dict, int], dict], arms: Mapping[str, Mapping], seeds: Sequence[int], *,
             key: str, tag: str = "grid", context: Mapping | None = None, workers: int | None = None,
             cache: bool = True, root: str | os.PathLike | None = None, progress: bool = True) -> GridResult:
    """Run ``fn(arm, params, seed)`` for every arm and seed (see the module docstring)."""
    global _JOBS
    seeds = [int(s) for s in seeds]
    _check_arms(arms, seeds)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    folder = Path(root or project_root()) / ".cache" / "experiments" / key / tag
    fn_text = _function_text(fn)
    context = dict(context or {})
    jobs = [(fn, arm, dict(params), seed, _cache_file(folder, fn_text, tag, arm, params, seed, context))
            for arm, params in arms.items() for seed in seeds]
    results = {i: _load(job[4]) if cache else None for i, job in enumerate(jobs)}
    todo = [i for i, out in results.items() if out is None]
    _JOBS = jobs
    try:
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=f"{key}/{tag}", disable=not progress)
        if workers == 1 or len(todo) <= 1:
            done = map(_run_one, todo)
        else:
            _load_before_fork()
            pool = multiprocessing.get_context("fork").Pool(min(workers, len(todo)))
            done = pool.imap_unordered(_run_one, todo)
        for index in done:
            results[index] = torch.load(jobs[index][4], weights_only=False)
            bar.update()
        bar.close()
    finally:
        if workers > 1 and len(todo) > 1:
            pool.terminate()
        _JOBS = []
    rows, outputs = [], {}
    for (_, arm, _, seed, _), out in zip(jobs, (results[i] for i in range(len(jobs)))):
        rows.append({"arm": arm, "seed": seed, **_scalars(out)})
        outputs[(arm, seed)] = out
    return GridResult(pd.DataFrame(rows), outputs)

