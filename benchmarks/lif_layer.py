"""Benchmark: one LIF layer, forward + backward, snnlib's fused neuron against its peers on CPU.

What is timed. x [T, B, N] (float32, uniform in [0, 0.8), requires grad) goes through one layer of
LIF neurons, and the gradient of loss = sum of all spikes w.r.t. x is computed; the wall time of
forward + backward is recorded. Every peer computes the same neuron:

    H[t] = 0.5 V[t-1] + X[t]  (beta 0.5, i.e. tau 2 with decay_input=False),  S[t] = (H[t] >= 1),
    V[t] = H[t] - S[t]        (soft / subtract reset, in the graph),  V[-1] = 0,
    dS/dH replaced by the arctan surrogate, alpha 2: 1 / (1 + (pi H')^2), H' = H - 1

    snnlib        snnlib.neurons.LIFNode(tau=2, decay_input=False, v_reset=None), fused multi-step
    spikingjelly  neuron.LIFNode, same arguments, step_mode='m', its own surrogate.ATan (its fastest
                  CPU path, the registered sj_lif op)
    snntorch      snntorch.Leaky(beta=0.5, reset_mechanism='subtract', reset_delay=False,
                  spike_grad=surrogate.atan()) called in a Python loop over time
    norse         norse.torch.LIFBoxCell in a Python loop (dt tau_mem_inv = 0.5, input x 2 so that
                  H = 0.5 V + X; reset_subtract); norse has no arctan surrogate, it uses SuperSpike
                  (alpha 100). Only if norse is importable: `pip install --no-deps norse==1.1.0
                  nir==1.0.8 nirtorch==2.6` (a plain install pulls torchvision, which has no CPU
                  build beside this torch)
    plain         a PyTorch loop over x.unbind(0) with snnlib.surrogate.ArcTan

Protocol. Each workload runs in a fresh process, in which all peers run with
torch.set_num_threads(2) (snnlib's numba kernels split large layers over as many threads), warm
(untimed rounds until the heap stops growing: benchmarks/_timing.py), interleaved (each round runs every peer once, the order rotating
between rounds); the median over rounds is reported with the 25th and 75th percentiles. The
number of rounds fills a time budget per workload (at least `--min-runs`). Unless
--no-malloc-tuning, each workload process starts with glibc's malloc told (GLIBC_TUNABLES) never
to serve a block by a fresh mmap and never to return memory to the system, so a freed [T, B, N]
buffer is reused rather than faulted in page by page again: fresh pages cost ~1-2 us per 4 KB on
this kind of virtual machine, more than the work itself on large layers (T=1000, B=64, N=4096:
~0.8 M page faults per step of training, 2-4x the time of the work). The limits must be set at
process start: mallopt takes an int, and the heap top of the largest workload passes 2 GB, so a
threshold set by mallopt still returns it. It applies to every peer alike; the process of the
largest workload then holds ~10 GB, and a workload that would need more than the memory
available (48 B per neuron-step) is skipped and listed in the JSON. Timings are wall-clock: on
a machine shared with other jobs they scatter (compare ratios within one run, and its p25/p75).

Memory. `saved_mb` is the size of the tensors autograd saves for backward during the forward
pass (distinct storages, the input x excluded), measured with torch.autograd.graph.saved_tensors_hooks.

Bound. A layer that keeps one [T, B, N] state for backward must move at least 20 bytes per
neuron-step in float32: forward reads X and writes S and the saved H (12 B), backward reads H and
writes dL/dX (8 B). dL/dS is not counted: for loss = sum of spikes autograd hands the layer one
broadcast value, not a [T, B, N] tensor. bound_ms = 20 T B N / peak bandwidth, where the peak
bandwidth is measured in the workload's own process (same allocator settings, same 2 threads) on
float32 buffers of T B N elements, as the best over repeats and over four kernels of known traffic
(fill: W; copy and scale: R + W; add: 2R + W) -- the fastest streaming this machine showed, so
that no layer can beat the bound. The bound is defined only where a [T, B, N] float32 buffer is at
least 4x the last-level cache (its size read from sysfs): smaller layers run from cache, and the
time of a few microseconds per kernel call, not memory traffic, limits both the layer and the
bandwidth probe (bound_ms and ratio_to_bound are empty there). ratio_to_bound = median / bound; a
ratio below 1 means the bound is wrong, and the benchmark then fails (after saving what it measured).
ratio_to_fastest = median / fastest peer's median.
t_exponent is the slope of log(time) against log(T) per peer and (B, N), fitted over the T grid;
t_exponent_tail the same over the two largest T only, where a fixed cost per call (~0.6 ms for
snnlib: autograd, kernel dispatch) no longer hides how the work itself grows.

Output: results/benchmarks/lif_layer.csv (one row per peer and workload), lif_layer.json beside it
(settings, versions, bandwidth, what was skipped and why) and figures/benchmarks/lif_layer.png/.pdf.
Run: python benchmarks/lif_layer.py [--quick]. Not part of the test suite.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import multiprocessing
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import snntorch
import torch
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based import surrogate as sj_surrogate

from _timing import arguments, budget_and_runs, interleaved, save  # benchmarks/_timing.py, beside this script
from snnlib import neurons
from snnlib.plotting import savefig, style
from snnlib.surrogate import ArcTan

GRID = dict(T=(10, 100, 1000), B=(16, 64), N=(512, 4096))
QUICK_GRID = dict(T=(10, 100), B=(16,), N=(512,))
BYTES_PER_NEURON_STEP = 20  # read X, write S, write H; read H, write dL/dX (see the docstring)
PEAK_BYTES_PER_NEURON_STEP = 48  # a workload's memory need, for the check before it runs (norse's peak, rounded up)
THREADS = 2
BETA, THRESHOLD = 0.5, 1.0


# glibc's malloc: no block served by mmap, no memory returned to the system (see the docstring).
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=" + str(2**62)


def malloc_environment(tune: bool) -> bool:
    """Set GLIBC_TUNABLES for the workload processes spawned after this call; True if glibc will read it."""
    if not tune or platform.libc_ver()[0] != "glibc":
        return False
    os.environ["GLIBC_TUNABLES"] = ":".join(filter(None, [os.environ.get("GLIBC_TUNABLES"), MALLOC_TUNABLES]))
    return True


def from_reset(node):
    """run(x): the spikingjelly-style multi-step `node` over x [T, B, N] from a reset state."""

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run


def snnlib_peer():
    return from_reset(neurons.LIFNode(tau=2.0, decay_input=False, v_threshold=THRESHOLD, v_reset=None))


def spikingjelly_peer():
    node = neuron.LIFNode(
        tau=2.0,
        decay_input=False,
        v_threshold=THRESHOLD,
        v_reset=None,
        surrogate_function=sj_surrogate.ATan(alpha=2.0),
        step_mode="m",
    )
    return from_reset(node)


def snntorch_peer():
    leaky = snntorch.Leaky(
        beta=BETA,
        threshold=THRESHOLD,
        reset_mechanism="subtract",
        reset_delay=False,
        spike_grad=snntorch.surrogate.atan(alpha=2.0),
    )

    def run(x):
        mem = torch.zeros_like(x[0])
        spikes = []
        for x_t in x.unbind(0):
            spike, mem = leaky(x_t, mem)
            spikes.append(spike)
        return torch.stack(spikes)

    return run


def norse_peer():
    import norse.torch as norse
    from norse.torch.functional.reset import reset_subtract

    dt = 1e-3
    params = norse.LIFBoxParameters(
        tau_mem_inv=torch.tensor((1 - BETA) / dt), v_th=torch.tensor(THRESHOLD), reset_method=reset_subtract
    )
    cell = norse.LIFBoxCell(params, dt=dt)
    scale = 1 / (1 - BETA)  # norse charges V + dt tau_mem_inv (I - V): scale I so that H = 0.5 V + X

    def run(x):
        state = None
        spikes = []
        for x_t in x.unbind(0):
            spike, state = cell(scale * x_t, state)
            spikes.append(spike)
        return torch.stack(spikes)

    return run


def plain_peer():
    spike_fn = ArcTan(alpha=2.0)

    def run(x):
        v = torch.zeros_like(x[0])
        spikes = []
        for x_t in x.unbind(0):
            h = BETA * v + x_t
            s = spike_fn(h - THRESHOLD)
            v = h - THRESHOLD * s
            spikes.append(s)
        return torch.stack(spikes)

    return run


def make_peers() -> tuple[dict, dict]:
    """{name: run(x) -> spikes} for every peer that can run here, and {name: why not} for the others."""
    peers = {
        "snnlib": snnlib_peer(),
        "spikingjelly": spikingjelly_peer(),
        "snntorch": snntorch_peer(),
        "plain": plain_peer(),
    }
    skipped = {}
    try:
        peers["norse"] = norse_peer()
    except ImportError as error:
        skipped["norse"] = (
            f"not importable ({error}); install with pip install --no-deps norse==1.1.0 nir==1.0.8 nirtorch==2.6 "
            "(its declared torchvision dependency has no CPU build beside torch 2.13.0)"
        )
    return peers, skipped


def fwd_bwd(run, x) -> float:
    """Seconds for spikes = run(x) and d(sum spikes)/dx."""
    x = x.detach().requires_grad_()
    start = time.perf_counter()
    spikes = run(x)
    torch.autograd.grad(spikes.sum(), x)
    return time.perf_counter() - start


def saved_for_backward(run, x) -> tuple[int, float]:
    """(bytes autograd saves during run(x), distinct storages without x; the spike rate)."""
    x = x.detach().requires_grad_()
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() != x.untyped_storage().data_ptr():
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        spikes = run(x)
    return sum(storages.values()), spikes.float().mean().item()


def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (sysfs), or 32 MiB where it cannot be read."""
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip()
        sizes.append(int(text[:-1]) * {"K": 2**10, "M": 2**20}.get(text[-1], 1) if text[-1] in "KM" else int(text))
    return max(sizes, default=32 * 2**20)


def peak_bandwidth(numel: int, repeats: int = 7) -> dict[str, float]:
    """Bytes per second of four streaming kernels over float32 buffers of `numel` elements (best of `repeats`)."""
    a, b, c = torch.rand(numel), torch.rand(numel), torch.empty(numel)
    kernels = {  # kernel: (work, bytes moved per element)
        "fill": (lambda: c.fill_(1.0), 4),
        "copy": (lambda: c.copy_(a), 8),
        "scale": (lambda: torch.mul(a, 2.0, out=c), 8),
        "add": (lambda: torch.add(a, b, out=c), 12),
    }
    best = {}
    for name, (work, bytes_per_element) in kernels.items():
        work()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        best[name] = bytes_per_element * numel / min(times)
    del a, b, c
    gc.collect()
    return best


def fitted_exponent(frame: pd.DataFrame, least_steps: int = 0) -> pd.Series:
    """Slope of log(median time) against log(T) for each peer and (B, N), over the rows with T >= least_steps."""

    def slope(group):
        group = group[group["T"] >= least_steps]
        if group["T"].nunique() < 2:
            return float("nan")
        return float(np.polyfit(np.log(group["T"]), np.log(group["median_ms"]), 1)[0])

    exponents = frame.groupby(["peer", "B", "N"]).apply(slope, include_groups=False).rename("exponent")
    return frame.join(exponents, on=["peer", "B", "N"])["exponent"]


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    shapes = sorted(set(zip(frame["B"], frame["N"], strict=True)))
    with style():
        fig, axes = plt.subplots(1, len(shapes), figsize=(3.4 * len(shapes), 3.0), squeeze=False, sharey=True)
        for ax, (b, n) in zip(axes[0], shapes, strict=True):
            part = frame[(frame["B"] == b) & (frame["N"] == n)]
            for peer, rows in part.groupby("peer", sort=False):
                ax.errorbar(
                    rows["T"],
                    rows["median_ms"],
                    yerr=[rows["median_ms"] - rows["p25_ms"], rows["p75_ms"] - rows["median_ms"]],
                    marker="o",
                    label=peer,
                    capsize=2,
                )
            bound = part.drop_duplicates("T")
            ax.plot(bound["T"], bound["bound_ms"], "k--", label="memory bound")
            ax.set(xscale="log", yscale="log", xlabel="T (time steps)", title=f"B={b}, N={n}")
        axes[0][0].set_ylabel("forward + backward (ms)")
        axes[0][-1].legend(fontsize=7)
        fig.suptitle("One LIF layer on CPU, 2 threads (median, 25-75 %)", fontsize=9)
        savefig(fig, path)
        plt.close(fig)


def measure(workload: tuple[int, int, int], seed: int, budget_s: float, min_runs: int) -> dict:
    """Time and size one workload (T, B, N) for every peer; run in a fresh process (see `main`)."""
    torch.set_num_threads(THREADS)
    peers, skipped = make_peers()
    steps, batch, size = workload
    generator = torch.Generator().manual_seed(seed * 1_000_003 + steps * 10_007 + batch * 101 + size)
    in_memory = 4 * steps * batch * size >= 4 * last_level_cache_bytes()
    bandwidth = peak_bandwidth(steps * batch * size) if in_memory else {}  # before x exists
    x = torch.rand(steps, batch, size, generator=generator) * 0.8
    times = interleaved({name: functools.partial(fwd_bwd, run, x) for name, run in peers.items()}, budget_s,
                        min_runs, max_runs=51)
    rows = []
    for name, run in peers.items():
        saved, rate = saved_for_backward(run, x)
        ms = np.array(times[name]) * 1e3
        rows.append(
            dict(
                peer=name,
                T=steps,
                B=batch,
                N=size,
                neuron_steps=steps * batch * size,
                median_ms=float(np.median(ms)),
                p25_ms=float(np.percentile(ms, 25)),
                p75_ms=float(np.percentile(ms, 75)),
                runs=len(ms),
                saved_mb=saved / 2**20,
                saved_bytes_per_neuron_step=saved / (steps * batch * size),
                spike_rate=rate,
                peak_bandwidth_GBps=max(bandwidth.values()) / 1e9 if bandwidth else float("nan"),
                bandwidth_kernel=max(bandwidth, key=bandwidth.get) if bandwidth else "in cache",
            )
        )
        gc.collect()
    return dict(rows=rows, skipped=skipped)


def available_memory() -> int:
    """Bytes of memory available to a new process (Linux /proc/meminfo; unbounded elsewhere)."""
    try:
        with open("/proc/meminfo") as handle:
            fields = dict(line.split(":", 1) for line in handle)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 2**62


def main(argv=None) -> pd.DataFrame:
    parser = arguments("lif_layer", __doc__.split("\n\n")[0], "T in {10, 100}, B 16, N 512, fewer runs",
                       "time budget per workload (default 6, quick 1)", "rounds at least (default 3 and 5 for quick)")
    parser.add_argument("--no-malloc-tuning", action="store_true")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else GRID
    budget, min_runs = budget_and_runs(args, seconds=(6.0, 1.0), runs=(3, 5))

    torch.set_num_threads(THREADS)
    rows, skipped, skipped_workloads = [], {}, {}
    malloc_tuned = malloc_environment(not args.no_malloc_tuning)
    # One fresh process per workload: with malloc tuned, a process keeps the memory it ever used,
    # and the largest workload needs ~10 GB (norse); the peers of one workload share a process.
    spawn = multiprocessing.get_context("spawn")
    for workload in itertools.product(grid["T"], grid["B"], grid["N"]):
        need = PEAK_BYTES_PER_NEURON_STEP * math.prod(workload)
        if need > available_memory():
            skipped_workloads[str(workload)] = (
                f"needs ~{need / 2**30:.0f} GiB, {available_memory() / 2**30:.0f} available"
            )
            print(f"T, B, N = {workload}: skipped, {skipped_workloads[str(workload)]}")
            continue
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            result = pool.submit(measure, workload, args.seed, budget, min_runs).result()
        rows += result["rows"]
        skipped.update(result["skipped"])
        done = {r["peer"]: round(r["median_ms"], 2) for r in result["rows"]}
        print(f"T, B, N = {workload}: median ms {done}, peak bandwidth "
              f"{result['rows'][0]['peak_bandwidth_GBps']:.1f} GB/s")

    frame = pd.DataFrame(rows)
    keys = ["T", "B", "N"]
    frame["bound_ms"] = 1e3 * BYTES_PER_NEURON_STEP * frame["neuron_steps"] / (frame["peak_bandwidth_GBps"] * 1e9)
    frame["ratio_to_fastest"] = frame["median_ms"] / frame.groupby(keys)["median_ms"].transform("min")
    frame["ratio_to_bound"] = frame["median_ms"] / frame["bound_ms"]
    frame["t_exponent"] = fitted_exponent(frame)
    frame["t_exponent_tail"] = fitted_exponent(frame, least_steps=sorted(grid["T"])[-2])
    save(
        frame,
        args.csv,
        dict(
            settings=dict(
                beta=BETA,
                threshold=THRESHOLD,
                reset="subtract",
                surrogate="arctan alpha 2 (norse: SuperSpike)",
                dtype="float32",
                input="uniform [0, 0.8)",
                loss="sum of spikes",
                threads=THREADS,
                seed=args.seed,
                budget_s_per_workload=budget,
                min_runs=min_runs,
                quick=args.quick,
            ),
            bytes_per_neuron_step=dict(
                total=BYTES_PER_NEURON_STEP,
                forward="read X, write S, write H (4 B each)",
                backward="read H, write dL/dX (4 B each); dL/dS is one broadcast value for loss = sum(spikes)",
            ),
            bandwidth="per workload, in its process: best of fill/copy/scale/add over buffers of T B N floats",
            malloc_tuned=malloc_tuned,
            skipped_peers=skipped,
            skipped_workloads=skipped_workloads,
        ),
        ["torch", "spikingjelly", "snntorch", "numba", "norse"],
    )
    plot(frame, Path(args.figure))
    print(summary(frame))
    check_bound(frame)
    return frame


def check_bound(frame: pd.DataFrame) -> None:
    """Fail loudly if any peer ran faster than the memory bound: the bound would then be wrong."""
    below = frame[frame["ratio_to_bound"] < 1]
    if not below.empty:
        rows = below[["peer", "T", "B", "N", "median_ms", "bound_ms", "ratio_to_bound"]].to_string(index=False)
        raise SystemExit(f"lif_layer: measured times below the memory bound, which is therefore not a bound:\n{rows}")


def summary(frame: pd.DataFrame) -> str:
    """snnlib's speed-up over each peer per workload, and its ratio to the bound, as text."""
    lines = []
    for (steps, batch, size), part in frame.groupby(["T", "B", "N"]):
        ours = part[part["peer"] == "snnlib"].iloc[0]
        others = ", ".join(
            f"{row.peer} {row.median_ms / ours.median_ms:.1f}x" for row in part.itertuples() if row.peer != "snnlib"
        )
        lines.append(
            f"T={steps} B={batch} N={size}: snnlib {ours.median_ms:.2f} ms ({ours.ratio_to_bound:.1f}x the bound); "
            f"speed-up over {others}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
