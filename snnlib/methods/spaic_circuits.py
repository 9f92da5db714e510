"""Hong et al. 2024 (SPAIC), circuit case studies, scaled to run in seconds on a CPU, built with the real spaic
frontend: the Potjans-Diesmann cortical microcircuit, a C. elegans-style AdEx thermotaxis chain, and a
mean-field travelling wave on a sheet.

Paper: arXiv 2207.12750 (circuit simulation case studies); spaic==0.6.3.0.0; facts: shared/research/papers.md §3.
Imports `spaic`, so only the hong2024 notebook and its tests import this module. Every function returns
numpy arrays time-first; none is fitted to the paper's figures, the rates are reported as measured.

Microcircuit (Potjans & Diesmann 2014, Cereb. Cortex 24:785): 8 populations (L2/3, L4, L5, L6; E and I),
sizes N_p * scale, connection probabilities C[target, source] of their Table 5, Bernoulli masks, weights
w (E) and -g w (I), g = 4, SPAIC `lif` neurons (tau_m, threshold 1, reset 0, one-step synaptic delay).
Background: K_bg[p] independent Poisson inputs of `bg_rate` Hz per neuron, summed into a Poisson count per
neuron and step, fed through a `null` encoder and an identity connection of weight w_bg. Departures from the
paper's version (about 1/10 of Potjans-Diesmann in CLIF groups, 1000 ms): `lif` groups, 1/50 by default, 200 ms;
in-degrees
shrink with `scale` (the weights are multiplied by 1 / sqrt(scale) to keep some recurrent drive, not the
paper's DC compensation), no delays beyond SPAIC's one step, no current-based synaptic filtering.

C. elegans thermotaxis (after Kuhara et al. 2011; the paper's AdEx example): a feed-forward chain
AFD -> AIY -> AIZ -> RIA of SPAIC `adex` neurons (Brette & Gerstner 2005 defaults of SPAIC: C 281 pF, gL 30 nS,
EL -70.6 mV, V_T -50.4 mV, Delta_T 2 mV, a 4 nS, b 0.0805 nA, tau_w 144 ms), AFD driven by a current that
follows a temperature ramp through the cultivation temperature; AIY inhibits AIZ (AIY -| AIZ) as in the
thermotaxis model. The paper's circuit has 10 AdEx neurons driven by sinusoidal thermal currents; this is a
reduced, illustrative chain of 4 groups under a ramp, not the paper's circuit nor the connectome.

Mean-field travelling wave: SPAIC's `meanfield` rate model (U += dt/tau (rho (Iext + Isyn) - U), O = relu(U))
on an n x n sheet with a Gaussian kernel shifted by `shift` sites along x (asymmetric excitation) and global
inhibition; a bump started at one side travels along x. The paper's (SPAIC's `test_wavefronts.py`) is a
200 x 200 sheet where a point stimulus launches wavefronts; here a 24 x 24 sheet, and the asymmetric kernel is
the simplest way to a travelling solution with SPAIC's linear-relu unit (its `cann_field` model, the one with
divisive normalisation, fails in 0.6.3.0.0 with a TypeError from torch.sum in its reduce_sum). The gain is
near marginal: the bump neither dies nor blows up within 200 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spaic
import torch

from snnlib.checks import positive_int, real

__all__ = ["POPULATIONS", "PD_SIZES", "PD_RATES_HZ", "THERMO_NODES", "Microcircuit", "microcircuit_description",
           "microcircuit", "thermotaxis", "sheet_kernel", "travelling_wave"]

POPULATIONS = ("L23e", "L23i", "L4e", "L4i", "L5e", "L5i", "L6e", "L6i")
PD_SIZES = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)
PD_K_BG = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)
# Potjans & Diesmann 2014, Table 5: connection probability, rows target, columns source (POPULATIONS order)
PD_PROB = np.array([
    [0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0],
    [0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0],
    [0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0],
    [0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0],
    [0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0],
    [0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0],
    [0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252],
    [0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443],
])
# their Fig. 6 spontaneous rates (Hz), for reporting beside the measured ones
PD_RATES_HZ = (0.86, 2.8, 4.45, 5.7, 7.59, 8.66, 1.09, 7.66)


def _run(net: spaic.Network, encoder: spaic.Encoder, x: np.ndarray, dt: float) -> None:
    """Build `net` on a CPU torch backend with step dt, feed `x` [1, T, n] to `encoder`, run T steps."""
    backend = spaic.Torch_Backend("cpu")
    backend.dt = dt
    net.set_backend(backend)
    net.build()
    encoder(x)
    net.run(x.shape[1] * dt)


def _monitored(monitor) -> np.ndarray:
    """A SPAIC StateMonitor's values (batch, neurons, steps) as [steps, neurons] for batch 0."""
    return np.asarray(monitor.values)[0].T


@dataclass(frozen=True)
class Microcircuit:
    """One description of the scaled microcircuit, built by `microcircuit` in SPAIC and by
    `snnlib.methods.spaic_twins.MicrocircuitTwin` in snnlib.

    sizes: neurons per population (POPULATIONS order); weights: {(source, target): [n_target, n_source]}
    float32, in the order the SPAIC network connects them (targets outer, sources inner); w_bg the jump per
    background spike; background [T, sum(sizes)] Poisson counts per neuron and step (populations
    concatenated); tau_m, v_th (reset to 0) and dt as SPAIC's `lif`.
    """

    sizes: tuple[int, ...]
    weights: dict
    w_bg: float
    background: np.ndarray
    tau_m: float
    dt: float
    v_th: float = 1.0


def microcircuit_description(*, scale: float, duration: float, dt: float, w: float, w_bg: float, g: float,
                             tau_m: float, bg_rate: float, seed: int) -> Microcircuit:
    """The scaled microcircuit of the module docstring with its background drawn, seed `seed`.

    bg_rate in Hz per background input; w the recurrent jump per spike in units of the threshold before the
    1 / sqrt(scale) factor; w_bg the jump per background spike.
    """
    real("scale", scale, 0.0, 1.0, open_low=True)
    rng = np.random.default_rng(seed)
    sizes = tuple(max(1, round(n * scale)) for n in PD_SIZES)
    steps = positive_int("steps", round(duration / dt))
    w_eff = w / np.sqrt(scale)
    lam = np.repeat(np.array(PD_K_BG) * bg_rate * dt * 1e-3, sizes)
    background = rng.poisson(lam, size=(steps, len(lam))).astype(np.float32)
    weights = {}
    for t, n_post in enumerate(sizes):
        for s, n_pre in enumerate(sizes):
            if PD_PROB[t, s] == 0:
                continue
            sign = 1.0 if POPULATIONS[s].endswith("e") else -g
            mask = rng.random((n_post, n_pre)) < PD_PROB[t, s]
            weights[POPULATIONS[s], POPULATIONS[t]] = (mask * sign * w_eff).astype(np.float32)
    return Microcircuit(sizes, weights, float(w_bg), background, float(tau_m), float(dt))


class _Microcircuit(spaic.Network):
    def __init__(self, spec: Microcircuit):
        super().__init__()
        total = int(sum(spec.sizes))
        self.background = spaic.Encoder(num=total, coding_method="null")
        starts = np.concatenate([[0], np.cumsum(spec.sizes)])
        for name, n, start in zip(POPULATIONS, spec.sizes, starts):
            group = spaic.NeuronGroup(n, model="lif", tau_m=spec.tau_m, v_th=spec.v_th, v_reset=0.0)
            setattr(self, name, group)
            eye = np.zeros((n, total), dtype=np.float32)
            eye[np.arange(n), start + np.arange(n)] = spec.w_bg
            setattr(self, f"bg_{name}", spaic.Connection(self.background, group, link_type="full", weight=eye))
            setattr(self, f"spikes_{name}", spaic.StateMonitor(group, "O"))
        for (pre, post), weight in spec.weights.items():
            setattr(self, f"c_{pre}_{post}",
                    spaic.Connection(getattr(self, pre), getattr(self, post), link_type="full", weight=weight))


def microcircuit(spec: Microcircuit, seed: int = 0) -> dict:
    """Run the description in SPAIC; {"sizes", "spikes" {pop: [T, n]}, "rates_hz" {pop: mean rate}}."""
    torch.manual_seed(seed)
    net = _Microcircuit(spec)
    _run(net, net.background, spec.background[None], spec.dt)
    spikes = {p: _monitored(getattr(net, f"spikes_{p}")) for p in POPULATIONS}
    return {"sizes": dict(zip(POPULATIONS, spec.sizes)), "spikes": spikes,
            "rates_hz": {p: float(s.mean() / (spec.dt * 1e-3)) for p, s in spikes.items()}}


THERMO_NODES = ("AFD", "AIY", "AIZ", "RIA")


class _Thermotaxis(spaic.Network):
    def __init__(self, n, w_exc, w_inh, adex):
        super().__init__()
        self.background = spaic.Encoder(num=n * len(THERMO_NODES), coding_method="null")
        groups = {}
        for k, name in enumerate(THERMO_NODES):
            group = spaic.NeuronGroup(n, model="adex", **adex)
            eye = np.zeros((n, n * len(THERMO_NODES)), dtype=np.float32)
            eye[np.arange(n), k * n + np.arange(n)] = 1.0
            setattr(self, name, group)
            setattr(self, f"in_{name}", spaic.Connection(self.background, group, link_type="full", weight=eye))
            setattr(self, f"spikes_{name}", spaic.StateMonitor(group, "O"))
            groups[name] = group
        for pre, post, w in (("AFD", "AIY", w_exc), ("AIY", "AIZ", -w_inh), ("AIZ", "RIA", w_exc)):
            setattr(self, f"c_{pre}_{post}", spaic.Connection(groups[pre], groups[post], link_type="full",
                                                              weight=np.full((n, n), w / n, dtype=np.float32)))


def thermotaxis(*, n: int, duration: float, dt: float, t_start: float, t_end: float, t_cultivation: float,
                gain_pa: float, bias_pa: float, w_exc: float, w_inh: float, noise_pa: float, seed: int) -> dict:
    """Run the AdEx chain under a linear temperature ramp t_start -> t_end (deg C) over `duration` ms.

    AFD's input: bias + gain * max(T - T_c, 0) pA; AIZ and RIA get the tonic bias; every neuron gets
    Gaussian current noise (sd noise_pa); w_exc, w_inh: summed synaptic current (pA) per step from a fully
    active presynaptic group. Returns {"temperature" [T], "spikes" {node: [T, n]}}.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    steps = positive_int("steps", round(duration / dt))
    temp = np.linspace(t_start, t_end, steps)
    drive = np.zeros((steps, len(THERMO_NODES), positive_int("n", n)), dtype=np.float32)
    drive[:, 0] = (bias_pa + gain_pa * np.maximum(temp - t_cultivation, 0.0))[:, None]
    drive[:, 2:] = bias_pa
    drive += rng.normal(0.0, noise_pa, drive.shape).astype(np.float32)
    net = _Thermotaxis(n, w_exc, w_inh, {})
    _run(net, net.background, drive.reshape(1, steps, -1), dt)
    return {"temperature": temp, "spikes": {k: _monitored(getattr(net, f"spikes_{k}")) for k in THERMO_NODES}}


class _Sheet(spaic.Network):
    def __init__(self, kernel, tau, rho):
        super().__init__()
        n = kernel.shape[0]
        self.background = spaic.Encoder(num=n, coding_method="null")
        self.sheet = spaic.NeuronGroup(n, model="meanfield", tau=tau, rho=rho)
        self.inp = spaic.Connection(self.background, self.sheet, link_type="full", weight=np.eye(n, dtype=np.float32))
        self.rec = spaic.Connection(self.sheet, self.sheet, link_type="full", weight=kernel.astype(np.float32))
        self.rate = spaic.StateMonitor(self.sheet, "O")


def sheet_kernel(side: int, sigma: float, shift: float, amplitude: float, inhibition: float) -> np.ndarray:
    """[side^2, side^2] weights: amplitude * Gaussian of the distance to the source shifted by `shift` sites
    along x (periodic in x and y), minus a uniform `inhibition`; row = target, column = source."""
    ij = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
    d = ij[:, None, :] - ij[None, :, :] - np.array([0.0, shift])  # target - source - shift; x is the second axis
    d = (d + side / 2) % side - side / 2
    return amplitude * np.exp(-(d ** 2).sum(-1) / (2 * sigma ** 2)) - inhibition


def travelling_wave(*, side: int, duration: float, dt: float, tau: float, rho: float, sigma: float, shift: float,
                    amplitude: float, inhibition: float, kick: float, kick_ms: float) -> dict:
    """A bump kicked at x = 0 on the sheet; {"rates" [T, side, side], "x_peak" [T] (circular mean along x)}."""
    steps = positive_int("steps", round(duration / dt))
    x = np.zeros((1, steps, side, side), dtype=np.float32)
    yy, xx = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    blob = np.exp(-(((yy - side / 2) ** 2) + np.minimum(xx, side - xx) ** 2) / (2 * sigma ** 2))
    x[0, : max(1, round(kick_ms / dt))] = kick * blob
    net = _Sheet(sheet_kernel(side, sigma, shift, amplitude, inhibition), tau, rho)
    _run(net, net.background, x.reshape(1, steps, -1), dt)
    rates = _monitored(net.rate).reshape(steps, side, side)
    profile = rates.sum(1)  # [T, x]
    angle = np.angle((profile * np.exp(2j * np.pi * np.arange(side) / side)).sum(1))
    return {"rates": rates, "x_peak": np.mod(angle, 2 * np.pi) * side / (2 * np.pi)}
