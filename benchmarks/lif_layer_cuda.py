"""Benchmark: one LIF layer on a CUDA GPU, forward + backward: snnlib's Triton kernels against its peers.

The same neuron, input and loss as benchmarks/lif_layer.py (H = 0.5 V + X, S = H >= 1, subtract
reset, arctan surrogate alpha 2, x uniform in [0, 0.8), loss = sum of spikes, float32), on the GPU:

    snnlib             snnlib.neurons.LIFNode, fused: snnlib.triton_neurons' two Triton kernels
    spikingjelly       neuron.LIFNode, step_mode='m': spikingjelly 2.0's registered LIF op, whose
                       CUDA implementation is its own Triton kernel (the peer this path was built against)
    snntorch           snntorch.Leaky in a Python loop over time
    plain              a PyTorch loop over x.unbind(0) with snnlib.surrogate.ArcTan
    plain-compiled     the same loop under torch.compile (the other way to fuse the loop on a GPU;
                       compile time is excluded: it runs in the untimed warm-up)

Timing: CUDA events around forward + backward, after torch.cuda.synchronize(); warm (untimed rounds
until the heap stops growing), interleaved rounds as in benchmarks/_timing.py; median and 25/75th percentiles.
Bound: the 20 bytes per neuron-step every layer must move (benchmarks/lif_layer.py's docstring)
over the device bandwidth measured in the same process, best of copy/add on buffers of T B N
floats. ratio_to_bound < 1 would mean the bound is wrong: the script then fails.

Without a CUDA device the script measures nothing: it writes an empty table, a JSON that says
why and a figure that says so, and exits 0 (the Snakefile's `benchmarks` rule runs every script).
Run: python benchmarks/lif_layer_cuda.py [--quick]. Not part of the test suite.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from _timing import arguments, budget_and_runs, interleaved, save  # benchmarks/_timing.py, beside this script
from lif_layer import BYTES_PER_NEURON_STEP, plain_peer, snnlib_peer, snntorch_peer, spikingjelly_peer
from snnlib.plotting import savefig, style

GRID = dict(T=(10, 100, 1000), B=(16, 64), N=(4096, 65536))
QUICK_GRID = dict(T=(10, 100), B=(16,), N=(4096,))
COLUMNS = ["peer", "T", "B", "N", "median_ms", "p25_ms", "p75_ms", "runs", "bound_ms", "ratio_to_bound",
           "ratio_to_fastest", "device_bandwidth_GBps"]
PACKAGES = ["torch", "triton", "spikingjelly", "snntorch"]


def make_peers() -> dict:
    """{name: run(x) -> spikes} for x on the GPU."""
    peers = {"snnlib": snnlib_peer(), "spikingjelly": spikingjelly_peer(), "snntorch": snntorch_peer(),
             "plain": plain_peer()}
    peers["plain-compiled"] = torch.compile(plain_peer(), dynamic=False)
    return peers  # no peer holds a tensor but 0-dim constants, which PyTorch uses on any device


def timed(run, x) -> float:
    """Seconds of spikes = run(x) and d(sum spikes)/dx on the GPU (CUDA events)."""
    x = x.detach().requires_grad_()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    torch.autograd.grad(run(x).sum(), x)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3


def device_bandwidth(numel: int, repeats: int = 10) -> float:
    """Bytes per second, best of copy (R + W) and add (2R + W) over float32 buffers of `numel` on the GPU."""
    a, b, c = (torch.rand(numel, device="cuda") for _ in range(3))
    best = 0.0
    for work, moved in ((lambda: c.copy_(a), 8), (lambda: torch.add(a, b, out=c), 12)):
        work()
        for _ in range(repeats):
            best = max(best, moved * numel / timed_plain(work))
    return best


def timed_plain(work) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    work()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3


def measure(grid: dict, seed: int, budget_s: float, min_runs: int) -> pd.DataFrame:
    peers = make_peers()
    rows = []
    for steps, batch, size in itertools.product(grid["T"], grid["B"], grid["N"]):
        generator = torch.Generator(device="cuda").manual_seed(seed + steps * 10_007 + batch * 101 + size)
        x = torch.rand(steps, batch, size, generator=generator, device="cuda") * 0.8
        bandwidth = device_bandwidth(steps * batch * size)
        times = interleaved({name: (lambda run=run: timed(run, x)) for name, run in peers.items()}, budget_s,
                            min_runs, max_runs=101)
        for name, seconds in times.items():
            ms = np.array(seconds) * 1e3
            rows.append(dict(peer=name, T=steps, B=batch, N=size, median_ms=float(np.median(ms)),
                             p25_ms=float(np.percentile(ms, 25)), p75_ms=float(np.percentile(ms, 75)),
                             runs=len(ms), device_bandwidth_GBps=bandwidth / 1e9,
                             bound_ms=1e3 * BYTES_PER_NEURON_STEP * steps * batch * size / bandwidth))
        print(f"T, B, N = {steps, batch, size}: median ms",
              {r["peer"]: round(r["median_ms"], 3) for r in rows[-len(peers):]})
    frame = pd.DataFrame(rows)
    frame["ratio_to_bound"] = frame["median_ms"] / frame["bound_ms"]
    frame["ratio_to_fastest"] = frame["median_ms"] / frame.groupby(["T", "B", "N"])["median_ms"].transform("min")
    return frame[COLUMNS]


def plot(frame: pd.DataFrame, path: str, why_empty: str | None) -> None:
    import matplotlib.pyplot as plt

    with style():
        if why_empty:
            fig, ax = plt.subplots(figsize=(5, 1.5))
            ax.axis("off")
            ax.text(0.5, 0.5, f"LIF layer on CUDA: not measured\n({why_empty})", ha="center", va="center")
        else:
            shapes = sorted(set(zip(frame["B"], frame["N"], strict=True)))
            fig, axes = plt.subplots(1, len(shapes), figsize=(3.4 * len(shapes), 3.0), squeeze=False, sharey=True)
            for ax, (b, n) in zip(axes[0], shapes, strict=True):
                part = frame[(frame["B"] == b) & (frame["N"] == n)]
                for peer, rows in part.groupby("peer", sort=False):
                    ax.plot(rows["T"], rows["median_ms"], marker="o", label=peer)
                bound = part.drop_duplicates("T")
                ax.plot(bound["T"], bound["bound_ms"], "k--", label="memory bound")
                ax.set(xscale="log", yscale="log", xlabel="T (time steps)", title=f"B={b}, N={n}")
            axes[0][0].set_ylabel("forward + backward (ms)")
            axes[0][-1].legend(fontsize=7)
            fig.suptitle(f"One LIF layer on {torch.cuda.get_device_name()} (median)", fontsize=9)
        savefig(fig, path)
        plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = arguments("lif_layer_cuda", __doc__.split("\n\n")[0], "T in {10, 100}, B 16, N 4096, fewer runs",
                       "time budget per workload (default 3, quick 0.5)", "rounds at least (default 5)")
    args = parser.parse_args(argv)
    grid = QUICK_GRID if args.quick else GRID
    budget, min_runs = budget_and_runs(args, seconds=(3.0, 0.5), runs=(5, 5))
    why_empty = None if torch.cuda.is_available() else "no CUDA device on this machine"
    frame = pd.DataFrame(columns=COLUMNS) if why_empty else measure(grid, args.seed, budget, min_runs)
    record = dict(measured=why_empty is None, why_not=why_empty, grid=grid, budget_s=budget, min_runs=min_runs,
                  device=None if why_empty else torch.cuda.get_device_name())
    save(frame, args.csv, record, PACKAGES)
    plot(frame, args.figure, why_empty)
    if why_empty:
        print(f"lif_layer_cuda: {why_empty}; nothing measured (wrote an empty table)")
    elif (frame["ratio_to_bound"] < 1).any():
        raise SystemExit(f"a peer beat the memory bound, so the bound is wrong:\n{frame[frame['ratio_to_bound'] < 1]}")
    return frame


if __name__ == "__main__":
    main()
