"""Benchmark: one whole training step of each work's default-profile model, before and after fusion.

What is timed. For every model below, one training step on a random batch of the default batch
size: functional.reset_net, forward, loss, backward, optimizer step (wall time of all of it).
"before" runs the model with the fused neurons switched off, "after" with them on (the default).

    work      model                  sizes (config/<work>.yaml, `default` section)                 T    batch
    he2020    snn_mlp                2x34x34 frames -> 128 -> 10 HeLIF, Adam, MSE rate loss         8    64
    he2020    scnn                   2x16x16 frames, conv 8, FC 64 -> 10, no dropout, as above      8    64
    jiang2025 resnet19 (MPD-AGL)     1x14x14 images, channels 8-16-32, blocks 3-3-2, FC 32, PLIF,    2    64
                                     adaptive width; SGD 0.1, momentum 0.9, wd 1e-4, mean CE
    xu2025    src / asrc             sequential MNIST, 1 -> 32 -> 32 -> 10, span 16 / max span 41,   784  64
                                     AdamW (lr 0.01, wd 0.01, lr_skip 0.1), summed CE
    qin2025   grsn-tap / lif-tap /   snnlib.rl.ActorCritic, CartPole-P observations (2), embed 32,   200  4
              igrsn-tap              hidden 64, head 64, over one episode-length sequence
                                     (max_episode_steps); minibatch = 8 episodes / 2 minibatches.
                                     Loss: cross-entropy of the logits to random actions + 0.5 MSE
                                     of the values to random returns (a stand-in for PPO's clipped
                                     loss: the same forward and backward work), Adam 0.003, grad-norm clip 0.5

Inputs: binary frames (p 0.2) for he2020, Gaussian images for jiang2025, uniform pixels in [0, 1)
for xu2025, Gaussian observations for qin2025; random labels. --quick shortens xu2025 to T = 196.

How "before" is made. Every fused neuron in snnlib asks `snnlib.neurons.fused_enabled(surrogate)`
before taking its fused path, and that answers False while the environment variable SNNLIB_FUSED
is "0". This script sets it to "0" around the "before" calls only; the neurons then run their
per-step code: HeLIFNode and the MPD neurons their
Python loop over time steps (their single-step/fallback code), snnlib.neurons.LIFNode/PLIFNode/IFNode
spikingjelly's own multi-step code, xu2025's SkipRecurrentLayer and qin2025's GRSN cells their
per-step loops (a graph per step). `fused_calls` counts, during one "after" step, the calls of the
fused whole-sequence routines (`FUSED_ROUTINES`: `snnlib.neurons._run`, the skip-recurrent layer's
`snnlib.methods.skip_recurrent._run_layer` and the GRSN cells' `_run_fused` / `_run_fused_released`
in `snnlib.methods.gated_recurrent_neuron`, one per layer): 0 means the model uses no fused neuron
and nothing changes but noise.

Protocol: torch.set_num_threads(2); per model two copies built from the same seed, one per
variant, each with its own optimizer; untimed warm-up steps until the heap stops growing
(benchmarks/_timing.py), then rounds in which both run once, the order alternating between rounds; median, 25th/75th percentiles and minimum over
rounds. Rounds fill a time budget per model (at least --min-runs). samples_per_s = batch / median
time; speedup = before median / after median, speedup_min = before minimum / after minimum.
Timings are wall-clock: on a machine shared with other jobs they scatter, mostly upwards (two
torch threads competing with another process for two cores can take many times longer); the
minimum is then the better estimate of the undisturbed time, and the p25-p75 spread shows how
disturbed a run was.

Output: results/benchmarks/training_step.csv (one row per model), training_step.json beside it
(settings, versions, machine) and figures/benchmarks/training_step.png/.pdf.
Run: python benchmarks/training_step.py [--quick] [--works xu2025 ...] (--works: only those works' models).
Not part of the test suite.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from _timing import arguments, budget_and_runs, interleaved, save  # benchmarks/_timing.py, beside this script
from snnlib import neurons
from snnlib.methods import adaptive_surrogate as mpd
from snnlib.methods import gated_recurrent_neuron as grn
from snnlib.methods import skip_recurrent as skip
from snnlib.methods import snn_vs_rnn as he
from snnlib.plotting import savefig, style

THREADS = 2
WORKS = ("he2020", "jiang2025", "xu2025", "qin2025")


@dataclass
class Workload:
    """One model: how to build it (from a seed), its optimizer, a random batch and its loss."""

    work: str
    model: str
    steps: int
    batch: int
    build: Callable[[int], nn.Module]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    data: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    clip: float | None = None


def labels(generator: torch.Generator, batch: int, classes: int) -> torch.Tensor:
    return torch.randint(classes, (batch,), generator=generator)


def he_workloads() -> list[Workload]:
    steps, batch, classes = 8, 64, 10
    shapes = {"snn_mlp": ((2, 34, 34), dict(hidden=(128,))),
              "scnn": ((2, 16, 16), dict(channels=(8,), hidden=(64,), dropout=0.0))}
    workloads = []
    for kind, (in_shape, sizes) in shapes.items():
        def data(generator, in_shape=in_shape):
            frames = (torch.rand(steps, batch, *in_shape, generator=generator) < 0.2).float()
            return frames, labels(generator, batch, classes)

        workloads.append(Workload(
            "he2020", kind, steps, batch,
            build=lambda seed, kind=kind, in_shape=in_shape, sizes=sizes: he.make_model(
                kind, seed, in_shape=in_shape, classes=classes, **sizes),
            optimizer=lambda model: torch.optim.Adam(model.parameters(), lr=5e-4),
            data=data,
            loss=he.mse_rate_loss,
        ))
    return workloads


def jiang_workloads() -> list[Workload]:
    steps, batch, classes = 2, 64, 10

    def build(seed):
        torch.manual_seed(seed)
        return mpd.ResNet19(in_channels=1, num_classes=classes, time_steps=steps, channels=(8, 16, 32),
                            blocks=(3, 3, 2), fc_hidden=32, neuron="plif", width=None, v_threshold=0.5, tau=0.2)

    return [Workload(
        "jiang2025", "resnet19 (MPD-AGL)", steps, batch,
        build=build,
        optimizer=lambda model: torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4),
        data=lambda generator: (torch.randn(batch, 1, 14, 14, generator=generator), labels(generator, batch, classes)),
        loss=mpd.mean_cross_entropy,
    )]


def xu_workloads(steps: int) -> list[Workload]:
    batch, classes = 64, 10
    workloads = []
    for recurrence, span in (("src", 16), ("asrc", 41)):
        def build(seed, recurrence=recurrence, span=span):
            torch.manual_seed(seed)
            return skip.SkipRecurrentSNN(1, [32, 32], classes, recurrence=recurrence, spans=span, decay=0.5,
                                         v_threshold=1.0, de_tau=0.3)

        workloads.append(Workload(
            "xu2025", recurrence, steps, batch,
            build=build,
            optimizer=lambda model: skip.make_optimizer(model, kind="adamw", lr=0.01, weight_decay=0.01, lr_skip=0.1),
            data=lambda generator: (torch.rand(steps, batch, 1, generator=generator),
                                    labels(generator, batch, classes)),
            loss=skip.summed_cross_entropy,
        ))
    return workloads


def qin_workloads() -> list[Workload]:
    from snnlib.rl import ActorCritic  # gymnasium is only needed here

    steps, batch, obs_size, actions = 200, 4, 2, 2

    def loss(outputs, target):
        logits, values = outputs
        action, returns = target
        return F.cross_entropy(logits.flatten(0, 1), action.flatten()) + 0.5 * F.mse_loss(values, returns)

    def data(generator):
        obs = torch.randn(steps, batch, obs_size, generator=generator)
        target = (torch.randint(actions, (steps, batch), generator=generator),
                  torch.randn(steps, batch, generator=generator))
        return obs, target

    workloads = []
    for core in ("grsn-tap", "lif-tap", "igrsn-tap"):
        def build(seed, core=core):
            torch.manual_seed(seed)
            return ActorCritic(obs_size, actions, core, embed=32, hidden=64, head=64)

        workloads.append(Workload("qin2025", core, steps, batch, build=build,
                                  optimizer=lambda model: torch.optim.Adam(model.parameters(), lr=3e-3),
                                  data=data, loss=loss, clip=0.5))
    return workloads


@contextlib.contextmanager
def fused(enabled: bool):
    """Inside: snnlib's neurons take their fused path (enabled) or their per-step code (not), by SNNLIB_FUSED."""
    previous = os.environ.get("SNNLIB_FUSED")
    os.environ["SNNLIB_FUSED"] = "1" if enabled else "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SNNLIB_FUSED"]
        else:
            os.environ["SNNLIB_FUSED"] = previous


def training_step(workload: Workload, model: nn.Module, optimizer, batch) -> float:
    """Seconds for reset, forward, loss, backward and optimizer step on one batch."""
    x, target = batch
    start = time.perf_counter()
    functional.reset_net(model)
    loss = workload.loss(model(x), target)
    optimizer.zero_grad()
    loss.backward()
    if workload.clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), workload.clip)
    optimizer.step()
    return time.perf_counter() - start


FUSED_ROUTINES = ((neurons, "_run"), (skip, "_run_layer"), (grn, "_run_fused"), (grn, "_run_fused_released"))
"""The fused whole-sequence routines (module, name) that `count_fused_calls` counts."""


def count_fused_calls(workload: Workload, model: nn.Module, optimizer, batch) -> int:
    """How often one (fused) training step calls snnlib's fused whole-sequence routines."""
    calls = 0
    originals = [getattr(module, name) for module, name in FUSED_ROUTINES]

    def counting(original):
        def call(*args, **kwargs):
            nonlocal calls
            calls += 1
            return original(*args, **kwargs)
        return call

    for (module, name), original in zip(FUSED_ROUTINES, originals):
        setattr(module, name, counting(original))
    try:
        training_step(workload, model, optimizer, batch)
    finally:
        for (module, name), original in zip(FUSED_ROUTINES, originals):
            setattr(module, name, original)
    return calls


def measure(workload: Workload, seed: int, budget_s: float, min_runs: int, max_runs: int) -> dict:
    """Median seconds per training step before and after, interleaved, for one workload."""
    generator = torch.Generator().manual_seed(seed)
    batch = workload.data(generator)
    model = workload.build(seed)
    variants = {"before": False, "after": True}
    models = {name: copy.deepcopy(model) for name in variants}
    optimizers = {name: workload.optimizer(models[name]) for name in variants}
    fused_calls = count_fused_calls(workload, models["after"], optimizers["after"], batch)

    def step(name):
        with fused(variants[name]):
            return training_step(workload, models[name], optimizers[name], batch)

    times = interleaved({name: functools.partial(step, name) for name in variants}, budget_s, min_runs, max_runs)
    rounds = len(times["before"])
    row = dict(work=workload.work, model=workload.model, T=workload.steps, batch=workload.batch,
               uses_fused=fused_calls > 0, fused_calls=fused_calls, rounds=rounds)
    for name in variants:
        ms = np.array(times[name]) * 1e3
        row.update({f"{name}_ms": float(np.median(ms)), f"{name}_p25_ms": float(np.percentile(ms, 25)),
                    f"{name}_p75_ms": float(np.percentile(ms, 75)), f"{name}_min_ms": float(ms.min()),
                    f"{name}_samples_per_s": workload.batch / (float(np.median(ms)) / 1e3)})
    row["speedup"] = row["before_ms"] / row["after_ms"]
    row["speedup_min"] = row["before_min_ms"] / row["after_min_ms"]
    return row


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = [f"{w}\n{m}" for w, m in zip(frame["work"], frame["model"], strict=True)]
    y = np.arange(len(frame))
    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(8.0, 0.45 * len(frame) + 1.2), sharey=True)
        for offset, name, color in ((-0.2, "before", "0.6"), (0.2, "after", "C0")):
            median = frame[f"{name}_samples_per_s"]
            low = frame["batch"] / (frame[f"{name}_p75_ms"] / 1e3)
            high = frame["batch"] / (frame[f"{name}_p25_ms"] / 1e3)
            label = f"{name} (fused {'on' if name == 'after' else 'off'})"
            left.barh(y + offset, median, height=0.38, color=color, label=label, xerr=[median - low, high - median],
                      capsize=2)
        left.set(xscale="log", xlabel="training samples / s (median, 25-75 %)", yticks=y, yticklabels=names)
        left.invert_yaxis()
        left.legend(fontsize=7)
        right.barh(y, frame["speedup"], color=["C0" if used else "0.6" for used in frame["uses_fused"]])
        right.axvline(1.0, color="k", lw=0.8)
        right.set(xlabel="speed-up (before / after); grey: no fused neuron")
        fig.suptitle("One training step of each default-profile model, CPU, 2 threads", fontsize=9)
        savefig(fig, path)
        plt.close(fig)


def main(argv=None) -> pd.DataFrame:
    parser = arguments("training_step", __doc__.split("\n\n")[0], "xu2025 at T = 196, smaller time budget",
                       "time budget per model (default 12, quick 2)", "rounds at least (default 5, quick 3)")
    parser.add_argument("--works", nargs="+", choices=WORKS, default=list(WORKS), help="only these works")
    args = parser.parse_args(argv)
    budget, min_runs = budget_and_runs(args, seconds=(12.0, 2.0), runs=(5, 3))
    xu_steps = 196 if args.quick else 784

    torch.set_num_threads(THREADS)
    builders = {"he2020": he_workloads, "jiang2025": jiang_workloads, "xu2025": lambda: xu_workloads(xu_steps),
                "qin2025": qin_workloads}
    workloads = [w for work in WORKS if work in args.works for w in builders[work]()]
    rows = []
    for workload in workloads:
        row = measure(workload, args.seed, budget, min_runs, max_runs=41)
        rows.append(row)
        print(f"{row['work']} {row['model']}: before {row['before_ms']:.1f} ms, after {row['after_ms']:.1f} ms "
              f"(minimum {row['before_min_ms']:.1f} / {row['after_min_ms']:.1f} ms), speed-up {row['speedup']:.2f}x, "
              f"fused calls {row['fused_calls']}", flush=True)
    frame = pd.DataFrame(rows)
    save(
        frame,
        args.csv,
        dict(
            settings=dict(threads=THREADS, seed=args.seed, budget_s_per_model=budget, min_runs=min_runs,
                          quick=args.quick, xu2025_T=xu_steps, works=args.works,
                          before="SNNLIB_FUSED=0 around the 'before' calls (per-step code of every snnlib neuron)",
                          after="fused path on (the default)",
                          step="functional.reset_net, forward, loss, backward, (grad clip), optimizer.step"),
        ),
        ["torch", "spikingjelly", "numba", "numpy", "gymnasium"],
    )
    plot(frame, Path(args.figure))
    print(frame[["work", "model", "T", "batch", "uses_fused", "before_samples_per_s", "after_samples_per_s",
                 "speedup", "speedup_min"]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return frame


if __name__ == "__main__":
    main()
