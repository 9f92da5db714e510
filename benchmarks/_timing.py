"""What the benchmarks share: the interleaved timing protocol, their command line and how they save results.

Not a benchmark itself (the Snakefile runs only benchmarks/*.py whose names do not start with "_").

    arguments(name, description, quick_help, ...) -> argparse.ArgumentParser with --quick, --csv,
        --figure, --seconds, --min-runs, --seed (a script adds its own options);
        budget_and_runs(args, ...) -> the time budget and minimum rounds from those options
    save(frame, csv, record, packages) -> writes the CSV and, beside it, a JSON of `record` plus
        the versions of `packages` and the machine, both atomically

    interleaved(runs, budget_s, min_runs, max_runs) -> {name: [seconds, ...]}

Each `runs[name]()` does the timed work once and returns its wall time in seconds. Warm-up rounds
(untimed, every name once) repeat until the process's heap has stopped growing: until a whole round
costs fewer minor page faults than 1 % of the first round's (or than 256, 1 MiB of pages), at most
MAX_WARM_ROUNDS. On large layers the heap keeps growing for a few rounds while the variants'
different allocation orders fragment it, and each fresh 4 KB page costs ~1-2 us to fault in: one
warm round left the first timed rounds of a [1000, 64, 4096] layer 4-10x slower than the later ones.
The number of timed rounds fills `budget_s` at the last warm round's pace, clamped to
[min_runs, max_runs]; round r runs every name once, the order rotated by r, so that no variant
always follows the same one; garbage is collected between rounds.
"""

import argparse
import gc
import math
import os
import platform
import resource
import time
from importlib import metadata

from snnlib.io import write_csv, write_json


MAX_WARM_ROUNDS = 8


def minor_faults() -> int:
    """Minor page faults of this process so far (pages faulted in without disk I/O)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def warm_up(runs: dict) -> float:
    """Untimed rounds until the heap stops growing (module docstring); the last round's seconds."""
    first = None
    for _ in range(MAX_WARM_ROUNDS):
        faults, start = minor_faults(), time.perf_counter()
        for name in runs:
            runs[name]()
        gc.collect()
        pace, faults = time.perf_counter() - start, minor_faults() - faults
        first = faults if first is None else first
        if faults < max(256, first // 100):
            break
    return pace


def interleaved(runs: dict, budget_s: float, min_runs: int, max_runs: int) -> dict[str, list[float]]:
    """{name: [seconds, ...]} for the callables `runs` (module docstring)."""
    names = list(runs)
    pace = warm_up(runs)
    rounds = max(min_runs, min(max_runs, math.ceil(budget_s / max(pace, 1e-9))))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(runs[name]())
        gc.collect()
    return times


def package_versions(names: list[str]) -> dict[str, str | None]:
    """{package: installed version, or None where it is not installed}."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def arguments(name: str, description: str, quick_help: str, seconds_help: str, runs_help: str) -> argparse.ArgumentParser:
    """The options every benchmark has, writing results/benchmarks/<name>.csv and figures/benchmarks/<name>."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--csv", default=f"results/benchmarks/{name}.csv")
    parser.add_argument("--figure", default=f"figures/benchmarks/{name}", help="path without suffix")
    parser.add_argument("--seconds", type=float, default=None, help=seconds_help)
    parser.add_argument("--min-runs", type=int, default=None, help=runs_help)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def budget_and_runs(args, seconds: tuple[float, float], runs: tuple[int, int]) -> tuple[float, int]:
    """(time budget, minimum rounds): the options if given, else the (full, quick) defaults."""
    budget = args.seconds if args.seconds is not None else seconds[args.quick]
    min_runs = args.min_runs if args.min_runs is not None else runs[args.quick]
    return budget, min_runs


def save(frame, csv: str | os.PathLike, record: dict, packages: list[str]) -> None:
    """frame to `csv`; `record` with the versions of `packages` and the machine to the .json beside it."""
    csv = write_csv(csv, frame, float_format="%.6g")
    machine = dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count())
    write_json(csv.with_suffix(".json"), dict(record, versions=package_versions(packages), machine=machine))
