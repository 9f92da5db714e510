"""Benchmark: the SPAIC paper's scaling test, 100 inputs fully connected to N LIF neurons, per framework.

Workload (Hong et al. 2024, benchmark scripts of SPAIC_paper_examples): 100 Poisson inputs (rate
0.05 per ms), fully connected (uniform weights in [0, 0.1)) to N LIF neurons (tau_m 8 ms, v_th 1,
reset to 0), dt 1 ms, 100 ms (100 steps), batch 1, no gradient, CPU. Every framework computes the
same neuron (snnlib.methods.spaic_bridge gives the mapping) on the same input:

    spaic         the real spaic network (null encoder, `lif` group, full Connection), no monitors
    snnlib        snnlib.neurons.fused_decay_lif on W x (the fused multi-step kernel), beta exp(-1/8)
    spikingjelly  neuron.LIFNode(tau = 1/(1-beta), decay_input=False, v_reset=0, step_mode='m')
    snntorch      snntorch.Leaky(beta, reset_mechanism='zero') in a Python loop over time

Protocol. One process per (framework, round): it imports only its framework, then for each N in
ascending order builds the network, runs once untimed (warm-up), times `--repeats` runs and reports
the median wall time per 100-ms run and the peak resident memory while that N ran (VmHWM, reset
before each N through /proc/self/clear_refs, so it includes the imports, as a fresh process's would,
but not the larger earlier networks; where the reset is refused, every N gets its own process).
Starting one process per (framework, N, round) instead cost hong2024's default run ~70 % of its CPU
time in imports (benchmarks/work_profile.py). Rounds interleave: round r visits the frameworks in an
order rotated by r, so slow phases of a shared machine fall on all frameworks alike; the spread over
rounds is reported. Threads: 1 (OMP/MKL and torch), so the numbers compare the frameworks, not the
core count.

    python benchmarks/spaic_scaling.py --sizes 1000 10000 100000 --rounds 3 --csv results/x.csv
    measure(frameworks, sizes, rounds, repeats) -> DataFrame (used by notebooks/papers/hong2024.ipynb)
"""

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FRAMEWORKS = ("spaic", "snnlib", "spikingjelly", "snntorch")
INPUTS, STEPS, DT, TAU_M, RATE, W_SCALE = 100, 100, 1.0, 8.0, 0.05, 0.1


def _workload(n: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(STEPS, 1, INPUTS, generator=g) < RATE * DT).float()
    w = torch.rand(n, INPUTS, generator=g) * W_SCALE
    return x, w


def _runner(framework: str, n: int, seed: int):
    """A callable doing one 100-step run; returns the total spike count (checked equal across frameworks)."""
    import torch

    torch.set_num_threads(1)
    x, w = _workload(n, seed)
    beta = float(torch.exp(torch.tensor(-DT) / torch.tensor(TAU_M)))
    if framework == "spaic":
        from snnlib.methods import spaic_bridge as sb

        net = sb.build_spaic(sb.FeedForward((INPUTS, n), (w,), tau_m=TAU_M, v_th=1.0, dt=DT), monitors=False)
        data = x.transpose(0, 1).contiguous().numpy()

        def run():
            net.input(data)
            net.run(STEPS * DT)
            return float("nan")  # no monitor: SPAIC's spikes are checked in tests/test_spaic_bridge.py

        return run

    def drive():  # W x inside every timed run, as SPAIC's Connection does; one step of delay like it
        return torch.cat([torch.zeros(1, 1, n), x[:-1] @ w.T])

    if framework == "snnlib":
        from snnlib.neurons import fused_decay_lif
        from snnlib.surrogate import Rectangle

        surrogate = Rectangle(strict=True)

        def run():
            with torch.no_grad():
                return float(fused_decay_lif(drive(), torch.zeros(1, n), beta, 1.0, surrogate)[0].sum())

        return run
    if framework == "spikingjelly":
        from spikingjelly.activation_based import functional, neuron

        node = neuron.LIFNode(tau=1.0 / (1.0 - beta), decay_input=False, v_reset=0.0, step_mode="m")

        def run():
            with torch.no_grad():
                functional.reset_net(node)
                return float(node(drive()).sum())

        return run
    if framework == "snntorch":
        import snntorch

        leaky = snntorch.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero")

        def run():
            with torch.no_grad():
                mem, total = leaky.init_leaky(), 0.0
                for i in drive():
                    spk, mem = leaky(i, mem)
                    total += float(spk.sum())
                return total

        return run
    raise ValueError(f"unknown framework {framework!r}; choose from {FRAMEWORKS}")


def _peak_mib() -> float:
    """This process's peak resident memory: VmHWM, which exec resets. (ru_maxrss survives exec on Linux,
    so a worker started from a large notebook kernel would report the kernel's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current resident size (Linux >= 4.0); False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def worker(framework: str, sizes: list[int], repeats: int, seed: int) -> list[dict]:
    """Time each N of `sizes` for one framework in this process: median seconds per run, peak RSS in MiB,
    spike count. More than one N only where the peak can be reset between them (`_reset_peak`)."""
    rows = []
    for n in sizes:
        gc.collect()
        if len(sizes) > 1 and not _reset_peak():
            raise RuntimeError("cannot reset the peak memory between sizes here: run one size per process")
        run = _runner(framework, n, seed)
        spikes = run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        times.sort()
        del run
        rows.append({"framework": framework, "n": n, "seconds": times[len(times) // 2], "peak_mib": _peak_mib(),
                     "spikes": spikes})
    return rows


def _in_process(framework: str, sizes: list[int], repeats: int, seed: int, env: dict) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", framework, *map(str, sizes), "--repeats", str(repeats),
           "--seed", str(seed)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} N={sizes} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(frameworks=FRAMEWORKS, sizes=(1000, 10000, 100000), rounds: int = 3, repeats: int = 3, seed: int = 0):
    """DataFrame with one row per (round, framework, n): seconds per 100-ms run, peak MiB (module docstring)."""
    import pandas as pd

    frameworks, sizes = list(frameworks), sorted(sizes)
    groups = [sizes] if _reset_peak() else [[n] for n in sizes]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    rows = []
    for r in range(rounds):
        shift = r % len(frameworks)
        for framework in frameworks[shift:] + frameworks[:shift]:
            for group in groups:
                rows += [{"round": r, **row} for row in _in_process(framework, group, repeats, seed, env)]
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", metavar="FRAMEWORK N", help="(internal) a framework and its sizes")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 100000])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default="results/benchmarks/spaic_scaling.csv")
    parser.add_argument("--figure", default="figures/benchmarks/spaic_scaling", help="path without suffix")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], [int(n) for n in args.worker[1:]], args.repeats, args.seed)))
        return
    from snnlib.io import write_csv

    frame = measure(args.frameworks, args.sizes, args.rounds, args.repeats, args.seed)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.csv, frame)
    plot(frame, Path(args.figure))
    print(frame.groupby(["framework", "n"])[["seconds", "peak_mib"]].median())


def plot(frame, path: Path) -> None:
    """Median wall time per 100-ms run and peak memory against N, one line per framework (png + pdf)."""
    import matplotlib.pyplot as plt

    from snnlib.plotting import savefig, style, work_style

    styles = work_style("hong2024")  # each framework as in hong2024's figures (config/hong2024.yaml display:)
    medians = frame.groupby(["framework", "n"])[["seconds", "peak_mib"]].median().reset_index()
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for framework, part in medians.groupby("framework", sort=False):
            axes[0].plot(part["n"], part["seconds"], **styles(framework).line())
            axes[1].plot(part["n"], part["peak_mib"], **styles(framework).line())
        axes[0].set(xscale="log", yscale="log", xlabel="N (LIF neurons)", ylabel="wall time per 100 ms (s)")
        axes[1].set(xscale="log", xlabel="N (LIF neurons)", ylabel="peak memory (MiB)")
        axes[0].legend(fontsize=7)
        savefig(fig, path)
        plt.close(fig)


if __name__ == "__main__":
    main()
