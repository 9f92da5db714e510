"""Hong et al. 2024 (SPAIC): one feed-forward LIF description, built in SPAIC and as its snnlib twin.

Paper: C. Hong, M. Yuan, M. Zhang, X. Wang, C. Zhang, J. Wang, G. Pan, H. Tang, "SPAIC: A
Spike-Based Artificial Intelligence Computing Framework", IEEE Comput. Intell. Mag. 2024
(arXiv 2207.12750). Package: PyPI `spaic==0.6.3.0.0` (github.com/zju-bmi-lab/SPAIC). Facts:
shared/research/papers.md §3.

This module imports `spaic` (several seconds and many warnings), so nothing else in snnlib imports
it: `snnlib.methods.spaic_bridge` is imported only by the hong2024 notebook, its benchmark worker
and its tests.

A description (`FeedForward`): layer sizes n_0 (inputs) .. n_L, weights W_l [n_l, n_{l-1}], the
membrane time constant tau_m (ms), threshold v_th, time step dt (ms). Inputs are time-first
[T, B, n_0] floats (currents, or 0/1 spikes), fed to SPAIC through a `null` encoder (SPAIC wants
[B, T, n_0]: `run_spaic` transposes). `Classifier` describes SPAIC's STCA classifiers (the single-layer MNIST
example and the small conv net) the same way; their twins, and those of the circuit and STDP examples, are in
`snnlib.methods.spaic_twins`.

SPAIC's `lif` model (spaic/Neuron/Neuron.py LIFModel, Torch_Backend threshold/reset), read from the
0.6.3.0.0 wheel and checked by running it:

    I_l[t]  = W_l s_{l-1}[t-1]                 every `Connection` delivers the previous step's spikes
    H_l[t]  = exp(-dt / tau_m) V_l[t-1] + I_l[t]        ('var_linear', tauM turned into a factor)
    s_l[t]  = 1 if H_l[t] > v_th else 0                 strict: torch.gt
    V_l[t]  = H_l[t] (1 - s_l[t])                       reset to 0: `o.eq(0) * v`

Mapping to snnlib (`SpaicLIF`, used by every twin): `snnlib.neurons.fused_decay_lif`, which computes
H = V beta + X, fires on H > v_th with a strict surrogate and resets to 0, with

    beta = exp(-dt / tau_m)             (`decay_factor`);  snnlib's LIFNode with decay_input=False,
                                         v_reset=0 would take tau = 1 / (1 - beta) (`snnlib_tau`)
    v_threshold = v_th,  strict firing  (LIFNode fires on >=: the two differ only where H lands
                                         exactly on v_th, hence the strict decay-factor neuron)
    one step of delay per connection    (`delayed`: each layer's input current shifted by one step)

SPAIC takes a model's parameters as keyword arguments of `NeuronGroup` (`tau_m=`, `v_th=`); a
`param={...}` dict is silently ignored (the defaults tau_m = 8, v_th = 1 are used), as is
`Connection(w_init=...)`: weights go in as `weight=<array>`. The tests use tau_m != 8 and v_th != 1 to
catch that.

Where they cannot match: SPAIC's `v_reset` parameter is stored but never used (its reset writes 0),
so only v_reset = 0 is accepted here; SPAIC's decay is computed in float32 from exp(-dt/tau_m),
the twin uses the same float32 factor, so the spike trains are identical (the tests check it;
the membranes agree to float32 rounding, ~1e-7, as the fused kernel and SPAIC's torch ops round
differently), but a twin built from 1 - 1/tau with tau = snnlib_tau(...) agrees only up to rounding.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import spaic
import torch
from torch import nn

from snnlib.checks import positive_int, real
from snnlib.neurons import fused_decay_lif
from snnlib.surrogate import Rectangle

__all__ = [
    "FeedForward",
    "decay_factor",
    "snnlib_tau",
    "poisson_spikes",
    "build_spaic",
    "run_spaic",
    "delayed",
    "SpaicLIF",
    "SnnlibTwin",
    "save_spaic",
    "load_spaic",
    "spaic_weights",
    "Classifier",
    "build_classifier",
    "train_stca",
]


@dataclass(frozen=True)
class FeedForward:
    """One description of a feed-forward LIF network for both frameworks (see the module docstring)."""

    sizes: tuple[int, ...]
    weights: tuple[torch.Tensor, ...]
    tau_m: float = 8.0
    v_th: float = 1.0
    dt: float = 1.0

    def __post_init__(self):
        sizes = tuple(positive_int("sizes[]", n) for n in self.sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs the input size and at least one layer, got {self.sizes}")
        if len(self.weights) != len(sizes) - 1:
            raise ValueError(f"need {len(sizes) - 1} weight matrices for sizes {sizes}, got {len(self.weights)}")
        for layer, (w, n_in, n_out) in enumerate(zip(self.weights, sizes[:-1], sizes[1:])):
            if not isinstance(w, torch.Tensor) or tuple(w.shape) != (n_out, n_in):
                raise ValueError(
                    f"weights[{layer}] must be a tensor [n_out, n_in] = [{n_out}, {n_in}], got "
                    f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}"
                )
        real("tau_m (ms)", self.tau_m, 0.0, open_low=True)
        real("v_th", self.v_th, 0.0, open_low=True)
        real("dt (ms)", self.dt, 0.0, open_low=True)
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "weights", tuple(w.detach().float().clone() for w in self.weights))

    @classmethod
    def random(cls, sizes, scale: float, generator: torch.Generator, **params) -> "FeedForward":
        """Uniform weights in [0, scale) (excitatory, so the layers spike), one draw per layer."""
        weights = [torch.rand(n_out, n_in, generator=generator) * scale for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        return cls(tuple(sizes), tuple(weights), **params)


def decay_factor(tau_m: float, dt: float) -> torch.Tensor:
    """SPAIC's per-step membrane factor exp(-dt / tau_m), in float32 as its backend computes it."""
    return torch.exp(torch.tensor(-float(dt), dtype=torch.float32) / torch.tensor(float(tau_m), dtype=torch.float32))


def snnlib_tau(tau_m: float, dt: float) -> float:
    """The tau of snnlib's LIFNode (decay_input=False, v_reset=0) with SPAIC's decay: 1 / (1 - exp(-dt/tau_m))."""
    return 1.0 / (1.0 - math.exp(-dt / tau_m))


def poisson_spikes(rates: torch.Tensor, steps: int, dt: float, generator: torch.Generator) -> torch.Tensor:
    """Poisson spikes [T, B, n] from rates [B, n] in spikes per ms: P(spike per step) = rate * dt (SPAIC's rule)."""
    p = rates * dt
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"rate * dt must lie in [0, 1], got [{p.min():.3g}, {p.max():.3g}]; lower the rates or dt")
    return (torch.rand((positive_int("steps", steps), *p.shape), generator=generator) < p).float()


class _SpaicFeedForward(spaic.Network):
    """The description as a SPAIC network: a null encoder, `lif` groups, full connections, monitors of O and V."""

    def __init__(self, spec: FeedForward, monitors: bool):
        super().__init__()
        self.input = spaic.Encoder(num=spec.sizes[0], coding_method="null")
        pre = self.input
        for layer, (n, w) in enumerate(zip(spec.sizes[1:], spec.weights), start=1):
            group = spaic.NeuronGroup(n, model="lif", tau_m=spec.tau_m, v_th=spec.v_th, v_reset=0.0)
            setattr(self, f"layer{layer}", group)
            setattr(self, f"conn{layer}", spaic.Connection(pre, group, link_type="full", weight=w.numpy()))
            if monitors:
                setattr(self, f"spikes{layer}", spaic.StateMonitor(group, "O"))
                setattr(self, f"voltage{layer}", spaic.StateMonitor(group, "V"))
            pre = group


def build_spaic(spec: FeedForward, monitors: bool = True) -> spaic.Network:
    """The SPAIC network of `spec` on a CPU torch backend with dt = spec.dt, built.

    monitors=False leaves out the O and V monitors (for timing; `run_spaic` then cannot read spikes).
    """
    net = _SpaicFeedForward(spec, monitors)
    backend = spaic.Torch_Backend("cpu")
    backend.dt = spec.dt
    net.set_backend(backend)
    net.build()
    net.spec = spec
    return net


def run_spaic(net: spaic.Network, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Run `x` [T, B, n_0] through `net`; the spikes and membranes of every layer, each [T, B, n_l].

    SPAIC's monitors hold (batch, neurons, steps); they are returned time-first.
    """
    spec = net.spec
    if x.dim() != 3 or x.shape[2] != spec.sizes[0]:
        raise ValueError(f"x must be [T, B, {spec.sizes[0]}] (time first), got {tuple(x.shape)}")
    net.input(x.transpose(0, 1).contiguous().numpy())
    net.run(x.shape[0] * spec.dt)
    layers = range(1, len(spec.sizes))
    spikes = [torch.as_tensor(np.asarray(getattr(net, f"spikes{i}").values)).permute(2, 0, 1) for i in layers]
    volts = [torch.as_tensor(np.asarray(getattr(net, f"voltage{i}").values)).permute(2, 0, 1) for i in layers]
    return spikes, volts


def spaic_weights(net: spaic.Network) -> list[torch.Tensor]:
    """The weights of a built SPAIC network's connections conn1, conn2, ..., as SPAIC holds them
    ([n_l, n_{l-1}] for a full connection, [out, in, k, k] for a conv one)."""
    params = net._backend._parameters_dict
    out = []
    for i in itertools.count(1):
        conn = getattr(net, f"conn{i}", None)
        if conn is None:
            return out
        keys = [k for k in params if k.startswith(conn.id + ":") and k.endswith("{weight}")]
        if len(keys) != 1:
            raise KeyError(f"expected one weight of conn{i} among SPAIC's parameters, got {keys}")
        out.append(params[keys[0]].detach().clone())


def save_spaic(net: spaic.Network, directory: str | Path) -> Path:
    """SPAIC's own `save_state` into `directory`/hong2024_net/parameters; returns that folder's parent."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net.save_state(filename="hong2024_net", direct=str(directory) + "/")
    return directory / "hong2024_net"


def load_spaic(spec: FeedForward, directory: str | Path) -> spaic.Network:
    """A fresh SPAIC network of `spec`'s shape with the parameters `save_spaic` wrote into `directory`."""
    net = build_spaic(spec)
    net.state_from_dict(filename="hong2024_net", direct=str(directory), device="cpu")
    return net


def delayed(current: torch.Tensor) -> torch.Tensor:
    """current [T, B, ...] one step late, zeros first: what a SPAIC `Connection` delivers."""
    return torch.cat([torch.zeros_like(current[:1]), current[:-1]])


class SpaicLIF(nn.Module):
    """SPAIC's `lif` as snnlib's strict decay-factor LIF: beta = exp(-dt/tau_m), fires on H > v_th, reset to 0.

    forward(current [T, B, ...], v [B, ...] or None (zeros), keep_h_seq) -> `fused_decay_lif`'s
    (spikes [T, B, ...], V[T-1], H: [T, B, ...] if keep_h_seq, else the last step's).
    """

    def __init__(self, tau_m: float, v_th: float, dt: float):
        super().__init__()
        self.beta, self.v_th = decay_factor(tau_m, dt), v_th
        self.surrogate = Rectangle(width=1.0, strict=True)

    def forward(self, current: torch.Tensor, v: torch.Tensor | None = None, keep_h_seq: bool = False):
        v = torch.zeros_like(current[0]) if v is None else v
        return fused_decay_lif(current, v, self.beta, self.v_th, self.surrogate, keep_h_seq=keep_h_seq)


class SnnlibTwin(nn.Module):
    """The snnlib side: bias-free linear layers, each followed by SPAIC's one-step delay and `SpaicLIF`.

    forward(x [T, B, n_0]) -> (spikes, membranes), lists of [T, B, n_l] per layer. The weights are
    copied from the description (so from or to SPAIC's, `spaic_weights`).
    """

    def __init__(self, spec: FeedForward):
        super().__init__()
        self.spec = spec
        self.fcs = nn.ModuleList(nn.Linear(n_in, n_out, bias=False) for n_in, n_out in zip(spec.sizes[:-1], spec.sizes[1:]))
        with torch.no_grad():
            for fc, w in zip(self.fcs, spec.weights):
                fc.weight.copy_(w)
        self.lif = SpaicLIF(spec.tau_m, spec.v_th, spec.dt)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        spikes, volts, s = [], [], x
        for fc in self.fcs:
            s, _, h = self.lif(delayed(fc(s)), keep_h_seq=True)
            spikes.append(s)
            volts.append(h * (1 - s))
        return spikes, volts


@dataclass(frozen=True)
class Classifier:
    """One description of SPAIC's STCA classifiers for SPAIC (`build_classifier`) and snnlib
    (`spaic_twins.ClassifierTwin`): n_in Poisson inputs -> n_out `lif` (SPAIC's Example.py), or with conv=True
    the [1, side, side] image -> `lif` [channels, o, o] by a kernel x kernel convolution with `stride`
    (o = (side - kernel) // stride + 1) -> flatten -> n_out `lif` (after Conv_test_main.py, one conv layer)."""

    n_in: int
    n_out: int
    tau_m: float = 8.0
    v_th: float = 1.0
    dt: float = 1.0
    conv: bool = False
    channels: int = 8
    kernel: int = 5
    stride: int = 2

    def __post_init__(self):
        if self.conv and math.isqrt(self.n_in) ** 2 != self.n_in:
            raise ValueError(f"conv=True needs square images flattened, got {self.n_in} pixels")

    @property
    def side(self) -> int:
        return math.isqrt(self.n_in)

    @property
    def hidden(self) -> int:
        """Neurons of the conv layer, channels * o * o."""
        return self.channels * ((self.side - self.kernel) // self.stride + 1) ** 2


class _SpaicClassifier(spaic.Network):
    """SPAIC's MNIST example (spaic/Example/Example.py): Poisson encoder -> `lif` layer, spike-count decoder, STCA."""

    def __init__(self, spec: Classifier, lr: float):
        super().__init__()
        self.input = spaic.Encoder(num=spec.n_in, coding_method="poisson")
        self.layer1 = spaic.NeuronGroup(spec.n_out, model="lif", tau_m=spec.tau_m, v_th=spec.v_th)
        self.output = spaic.Decoder(num=spec.n_out, dec_target=self.layer1, coding_method="spike_counts")
        self.conn1 = spaic.Connection(self.input, self.layer1, link_type="full")
        self.learner = spaic.Learner(trainable=self, algorithm="STCA")
        self.learner.set_optimizer("Adam", lr)
        self.input_shape = (spec.n_in,)


class _SpaicConvClassifier(spaic.Network):
    """The small conv variant of `Classifier`: conv `lif` layer, flatten, full `lif` readout, STCA on both."""

    def __init__(self, spec: Classifier, lr: float):
        super().__init__()
        o = (spec.side - spec.kernel) // spec.stride + 1
        self.input = spaic.Encoder(shape=[1, spec.side, spec.side], coding_method="poisson")
        self.layer1 = spaic.NeuronGroup(shape=[spec.channels, o, o], model="lif", tau_m=spec.tau_m, v_th=spec.v_th)
        self.layer2 = spaic.NeuronGroup(spec.n_out, model="lif", tau_m=spec.tau_m, v_th=spec.v_th)
        self.output = spaic.Decoder(num=spec.n_out, dec_target=self.layer2, coding_method="spike_counts")
        self.conn1 = spaic.Connection(self.input, self.layer1, link_type="conv", in_channels=1,
                                      out_channels=spec.channels, kernel_size=spec.kernel, stride=spec.stride)
        self.conn2 = spaic.Connection(self.layer1, self.layer2, link_type="full", syn_type=["flatten", "basic"])
        self.learner = spaic.Learner(trainable=self, algorithm="STCA")
        self.learner.set_optimizer("Adam", lr)
        self.input_shape = (1, spec.side, spec.side)


def build_classifier(spec: Classifier, lr: float) -> spaic.Network:
    """The SPAIC classifier of `spec` (conv or not) with its STCA learner and Adam(lr), built on a CPU backend.

    Its weights are SPAIC's default draw (numpy's global generator: seed it for the same weights);
    `spaic_weights` reads them."""
    net = (_SpaicConvClassifier if spec.conv else _SpaicClassifier)(spec, lr)
    backend = spaic.Torch_Backend("cpu")
    backend.dt = spec.dt
    net.set_backend(backend)
    net.build()
    return net


def train_stca(images, labels, test_images, test_labels, *, epochs: int, batch: int, steps: int, dt: float,
               lr: float, seed: int, noisy_test_images=None, conv: bool = False, tau_m: float = 8.0,
               v_th: float = 1.0) -> dict:
    """Train SPAIC's single-layer STCA classifier; {"test_acc", "train_acc" per epoch, "loss" per epoch}.

    With `noisy_test_images` (the test images corrupted, same labels) also "noisy_test_acc". The network is
    `Classifier(n_in, n_out, tau_m, v_th, dt, conv)`; conv=True trains the small conv variant; images stay
    flat [N, side^2].

    images [N, n_in] floats in [0, 1] (Poisson rates per step = pixel * dt, SPAIC's rule), labels [N].
    The training step is SPAIC's example: input, run, standardised spike counts, cross-entropy, Adam.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)
    spec = Classifier(images.shape[1], int(labels.max()) + 1, tau_m=tau_m, v_th=v_th, dt=dt, conv=conv)
    net = build_classifier(spec, lr)
    order = np.random.default_rng(seed)
    history = {"train_acc": [], "loss": []}
    for _ in range(positive_int("epochs", epochs)):
        perm = order.permutation(len(labels))
        correct, losses = 0, []
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            out = _forward(net, images[idx], steps * dt)
            loss = torch.nn.functional.cross_entropy(out, torch.as_tensor(labels[idx]))
            net.learner.optim_zero_grad()
            loss.backward()
            net.learner.optim_step()
            correct += int((out.argmax(1).cpu().numpy() == labels[idx]).sum())
            losses.append(float(loss))
        history["train_acc"].append(correct / len(labels))
        history["loss"].append(float(np.mean(losses)))
    out = {"test_acc": _accuracy(net, test_images, test_labels, batch, steps * dt), **history}
    if noisy_test_images is not None:
        out["noisy_test_acc"] = _accuracy(net, noisy_test_images, test_labels, batch, steps * dt)
    return out


def _accuracy(net, images, labels, batch, run_time):
    with torch.no_grad():
        hits = sum(int((_forward(net, images[i : i + batch], run_time).argmax(1).numpy() == labels[i : i + batch]).sum())
                   for i in range(0, len(labels), batch))
    return hits / len(labels)


def _forward(net, x, run_time):
    net.input(x.reshape(len(x), *net.input_shape))
    net.run(run_time)
    out = net.output.predict
    return (out - out.mean()) / (out.std() + 1e-8)
