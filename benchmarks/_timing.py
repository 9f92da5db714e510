"""What the benchmarks share: the interleaved timing protocol and the versions they record.

Not a benchmark itself (the Snakefile runs only benchmarks/*.py whose names do not start with "_").

    interleaved(runs, budget_s, min_runs, max_runs) -> {name: [seconds, ...]}

Each `runs[name]()` does the timed work once and returns its wall time in seconds. Every run is
warmed once (untimed); the number of rounds fills `budget_s` at the warm-up pace, clamped to
[min_runs, max_runs]; round r runs every name once, the order rotated by r, so that no variant
always follows the same one; garbage is collected between rounds.
"""

import gc
import math
import time
from importlib import metadata


def interleaved(runs: dict, budget_s: float, min_runs: int, max_runs: int) -> dict[str, list[float]]:
    """{name: [seconds, ...]} for the callables `runs` (module docstring)."""
    names = list(runs)
    start = time.perf_counter()
    for name in names:
        runs[name]()
    warm = time.perf_counter() - start
    rounds = max(min_runs, min(max_runs, math.ceil(budget_s / max(warm, 1e-9))))
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
