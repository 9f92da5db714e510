"""Profile: where each work's default run spends its time, sampled with py-spy.

Each work's notebook runs exactly as `snakemake` runs it (`python -m snnlib.pipeline notebook`,
SNNLIB_WORKERS=2, the default profile on embedded data), under `py-spy record --subprocesses`, which
samples the Python stack of every thread of the notebook kernel and of run_grid's worker processes
`--rate` times a second while they run (idle threads are not sampled, so a sample is CPU time). The
run happens in a scratch project (a temporary folder whose config/, snnlib/, benchmarks/ and
Snakefile link to this repository's, with a copy of the notebook (papermill runs it in the folder it
resolves to), and whose data/ links to the data sets under data/, fetched first as `make data` does,
but not to data/cache/),
so that neither the experiment cache (.cache/) nor the cache of generated data sets hides work: the
profile is that of a first run. Nothing of the repository's results/ or figures/ is touched.

Each sample gets one category: py-spy counts as active some threads that mostly wait (the kernel's
I/O threads, pool handlers, selectors), whose samples, recognised by the file of the innermost
frame, make "kernel, pools and waiting threads", which is not work of the method; then "imports and
start-up" when any frame is inside an import; otherwise the category of the innermost frame
(searching from the leaf towards the root) whose file matches one of CATEGORIES' path fragments.
What no rule claims is "other PyTorch" (a frame in torch/) or "other". `share`
is each category's fraction of the other samples (the waiting row has none), `cpu_s` = samples /
rate. Native code is not sampled (no --native), so a backward pass, which runs in PyTorch's C++
autograd engine below `torch.autograd` frames, is one category, "backward pass (autograd)", for
every layer except snnlib's own Functions (their Python backward is caught by its file).

Output: results/benchmarks/work_profile.csv (work, category, samples, cpu_s, share, wall_s, seeds),
the JSON beside it (settings, wall times, the top frames of "other" per work, for the next
profile's rules), py-spy's raw samples as results/benchmarks/work_profile_samples/<work>.txt.gz with
that run's settings and wall time in <work>.json beside them (`--reuse-samples` sorts them again
after a change of the rules, without running anything, and joins works profiled in separate runs), and
figures/benchmarks/work_profile.png/.pdf (one stacked bar per work).
Run: python benchmarks/work_profile.py [--works he2020 xu2025] [--seeds 0 1 2 3 4] [--rate 20]
[--profile smoke] (the default profile unless told).
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _timing import arguments, save  # benchmarks/_timing.py, beside this script
from snnlib.io import atomic_path
from snnlib.plotting import savefig, style

ROOT = Path(__file__).resolve().parents[1]
WORKS = sorted(p.stem for p in (ROOT / "notebooks" / "papers").glob("*.ipynb"))
LINKED = ["Snakefile", "snnlib", "config", "pyproject.toml", "benchmarks"]  # hong2024 imports a benchmark

# A sample whose innermost frame is in one of these files is a thread waiting (module docstring).
WAITING = "kernel, pools and waiting threads"
WAITING_FILES = ["selectors.py", "threading.py", "multiprocessing/connection.py", "multiprocessing/pool.py",
                 "multiprocessing/queues.py", "ipykernel/", "zmq/", "tornado/", "asyncio/", "jupyter_client/"]
# (category, path fragments of a frame's file), searched from the innermost frame outwards: the first
# frame that matches any category decides, and within one frame the earlier category wins.
CATEGORIES = [
    ("recurrent spiking layers", ["snnlib/methods/skip_recurrent.py", "snnlib/methods/gated_recurrent_neuron.py"]),
    ("spiking neurons", ["snnlib/neurons.py", "snnlib/triton_neurons.py", "snnlib/surrogate.py",
                         "spikingjelly/activation_based/neuron", "spikingjelly/activation_based/surrogate",
                         "spikingjelly/_ops", "snntorch/_neurons", "snnlib/methods/adaptive_surrogate.py"]),
    ("SPAIC simulation", ["SPAIC/", "spaic/"]),
    ("environment steps", ["gymnasium/", "mpe2/", "pettingzoo/", "pygame/", "popgym/"]),
    ("RNN baselines", ["torch/nn/modules/rnn.py"]),
    ("convolutions and pooling", ["torch/nn/modules/conv.py", "torch/nn/modules/pooling.py",
                                  "torch/nn/modules/batchnorm.py"]),
    ("linear layers", ["torch/nn/modules/linear.py"]),
    ("optimiser step", ["torch/optim/"]),
    ("backward pass (autograd)", ["torch/autograd/", "torch/_tensor.py"]),
    ("data", ["snnlib/data/", "tonic/", "torch/utils/data/"]),
    ("evaluation and statistics", ["snnlib/metrics.py", "snnlib/spike_statistics.py", "snnlib/stats.py",
                                   "snnlib/claims.py", "pycocotools/", "elephant/", "neo/", "scipy/"]),
    ("plotting", ["matplotlib/", "seaborn/", "snnlib/plotting.py", "PIL/"]),
    ("scaling benchmark loops (hong2024)", ["spaic_scaling.py"]),
    ("other snnlib code (models, training loops, RL)", ["snnlib/"]),
    ("notebook cells", ["ipykernel_"]),
]
IMPORT_FRAMES = ("_find_and_load", "_load_unlocked", "exec_module")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    """[(function, file)] of one py-spy raw stack, root first (the first field names the process)."""
    out = []
    for part in stack.split(";")[1:]:
        match = FRAME.match(part.strip())
        if match:
            out.append((match["function"], match["file"]))
    return out


def categorise(stack: list[tuple[str, str]]) -> str:
    """The category of one sampled stack (module docstring)."""
    if stack and any(fragment in stack[-1][1] for fragment in WAITING_FILES):
        return WAITING
    if any(function in IMPORT_FRAMES for function, _ in stack):
        return "imports and start-up"
    for _, file in reversed(stack):
        for category, fragments in CATEGORIES:
            if any(fragment in file for fragment in fragments):
                return category
    if any("torch/" in file for _, file in stack):
        return "other PyTorch"
    return "other"


def parse(raw: str) -> tuple[collections.Counter, collections.Counter]:
    """(samples per category, samples per innermost frame of the uncategorised) of py-spy's raw output."""
    per_category, unclaimed = collections.Counter(), collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        parsed = frames(stack)
        category = categorise(parsed)
        per_category[category] += int(count)
        if category in ("other", "other PyTorch") and parsed:
            unclaimed[f"{parsed[-1][0]} ({parsed[-1][1]})"] += int(count)
    return per_category, unclaimed


def scratch_project(folder: Path, key: str) -> None:
    """A project in `folder` that shares this repository's code, config and data sets, not its caches."""
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    (folder / "notebooks" / "papers").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "papers" / f"{key}.ipynb", folder / "notebooks" / "papers")
    (folder / "data").mkdir()
    for entry in (ROOT / "data").iterdir():
        if entry.name != "cache":
            (folder / "data" / entry.name).symlink_to(entry)


def profile_work(key: str, profile: str, seeds: list[int], rate: int) -> tuple[str, float]:
    """Run work `key`'s notebook (`profile`) under py-spy in a scratch project: (raw samples, wall s)."""
    params = json.dumps(dict(profile=profile, data="embedded", device="cpu", seeds=seeds))
    with tempfile.TemporaryDirectory(prefix=f"profile-{key}-") as tmp:
        folder = Path(tmp)
        scratch_project(folder, key)
        raw = folder / "samples.txt"
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--format", "raw",
                   "--rate", str(rate), "--output", str(raw), "--", sys.executable, "-m", "snnlib.pipeline",
                   "notebook", f"notebooks/papers/{key}.ipynb", f"results/{key}/{key}.ipynb", "--params", params]
        env = dict(os.environ, SNNLIB_WORKERS="2", SNNLIB_RUN_DIR=".", MPLBACKEND="Agg")
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        # py-spy exits 0 whatever its child did: a run counts only if the notebook wrote its claims
        if done.returncode != 0 or not (folder / "results" / key / "claims.json").is_file():
            raise SystemExit(f"{key}: the profiled run failed (py-spy exit {done.returncode}, no claims.json "
                             f"written):\n{done.stderr[-3000:]}")
        text = raw.read_text()
    return text, wall


def plot(frame: pd.DataFrame, path: str) -> None:
    import matplotlib.pyplot as plt

    table = frame[frame["category"] != WAITING].pivot(index="work", columns="category", values="cpu_s").fillna(0.0)
    order = [c for c, _ in CATEGORIES] + ["imports and start-up", "other PyTorch", "other"]
    table = table[[c for c in order if c in table.columns]]
    with style():
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.5))
        table.plot.barh(stacked=True, ax=ax, colormap="tab20", width=0.7)
        ax.set(xlabel="CPU seconds (py-spy samples / rate)", ylabel="")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title("Where each work's default run spends its CPU time", fontsize=9)
        savefig(fig, path)
        plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = arguments("work_profile", __doc__.split("\n\n")[0], "only seed 0 of every work",
                       "(unused: the profile runs each notebook once)", "(unused)")
    parser.add_argument("--works", nargs="+", default=WORKS, choices=WORKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: the default profile's five")
    parser.add_argument("--rate", type=int, default=20, help="samples per second and thread")
    parser.add_argument("--profile", default="default", help="the config profile to run (default: default)")
    parser.add_argument("--reuse-samples", action="store_true",
                        help="sort the samples stored by an earlier run again instead of running the works")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    samples_dir = Path(args.csv).with_name(Path(args.csv).stem + "_samples")
    if not args.reuse_samples:  # the embedded data sets the notebooks read, as `make data` places them
        subprocess.run([sys.executable, "-m", "snnlib.data", "fetch", "all"], cwd=ROOT, check=True)
    rows, unclaimed_top, runs = [], {}, {}
    for key in args.works:
        stored = samples_dir / f"{key}.txt.gz"
        if args.reuse_samples:  # each work's samples with the settings of the run that took them
            text, run = gzip.decompress(stored.read_bytes()).decode(), json.loads(stored.with_suffix("").with_suffix(".json").read_text())
        else:
            text, wall = profile_work(key, args.profile, seeds, args.rate)
            run = dict(wall_s=wall, seeds=seeds, profile=args.profile, rate=args.rate)
            with atomic_path(stored) as tmp:
                tmp.write_bytes(gzip.compress(text.encode()))
            with atomic_path(stored.with_suffix("").with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps(run))
        runs[key] = run
        wall, rate = run["wall_s"], run["rate"]
        per_category, unclaimed = parse(text)
        working = {c: n for c, n in per_category.most_common() if c != WAITING}
        total = sum(working.values())
        for category, samples in per_category.most_common():
            share = samples / total if category != WAITING else float("nan")
            rows.append(dict(work=key, category=category, samples=samples, cpu_s=samples / rate,
                             share=share, wall_s=wall, seeds=len(run["seeds"]), profile=run["profile"]))
        unclaimed_top[key] = dict(unclaimed.most_common(15))
        print(f"{key}: wall {wall:.0f} s, sampled work {total / rate:.0f} CPU-s;",
              ", ".join(f"{c} {n / total:.0%}" for c, n in list(working.items())[:4]), flush=True)
    frame = pd.DataFrame(rows)
    save(frame, args.csv, dict(runs=runs, categories=CATEGORIES, unclaimed_top=unclaimed_top),
         ["torch", "py-spy", "numba"])
    plot(frame, args.figure)
    return frame


if __name__ == "__main__":
    main()
