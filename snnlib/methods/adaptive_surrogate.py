"""MPD-AGL: surrogate gradients whose width follows the membrane-potential distribution.

Paper: J. Jiang, L. Wang, R. Jiang, J. Fan, R. Yan, "Adaptive gradient learning for spiking neural
networks by exploiting membrane potential dynamics", IJCAI 2025 (doi 10.24963/ijcai.2025/464,
arXiv 2505.11863). Authors' code: github.com/Stay-Sane/MPD-AGL (neuron.py, surrogate.py,
models/layers.py, models/ResNet19.py, models/VGGSNN.py, base_config.py, main.py).

Shapes. Every tensor that carries time is time-first, `[T, B, ...]` (spikingjelly's multi-step
mode); the authors' code is batch-first `[B, T, ...]`. Models return `[T, B, classes]`.

Neuron (LIF with a decay FACTOR tau in (0, 1), hard reset, threshold V_th = 0.5), per step t:

    u[t] = tau * u[t-1] * (1 - s[t-1]) + I[t]          u[-1] = 0
    s[t] = H(u[t] - V_th),   H(x) = 1 if x >= 0 else 0
    LIF:  tau = 0.2 (a constant);   PLIF: tau = sigmoid(w), w learnable, one scalar per layer,
          w0 = -ln(init_a - 1) = logit(init_tau) with init_a = 5, i.e. init_tau = 0.2.

The reset stays in the autograd graph (the gradient also flows through (1 - s[t-1])), and for PLIF
through tau = sigmoid(w) into w. tau is the paper's decay factor, NOT the time constant of
`snnlib.neurons.LIFNode` (there the decay factor is 1 - 1/tau). The neurons run fused
(`snnlib.neurons.fused_decay_lif`: one autograd Function for all T steps, numba kernels on CPU,
the surrogate width of step t applied in step t's backward; spikes and u bit-identical to the
per-step loop, gradients, dL/dw included, equal to rounding).

Input current. I[t] comes from a synaptic layer (conv / linear, the same at every step) followed by
tdBN (`snnlib.layers.TDBatchNorm`, alpha = 1): I = gamma * V_th * x_hat + beta, so per channel
I ~ N(beta, (gamma V_th)^2). With I i.i.d. over time and no reset (the paper's Theorems 1-2):

    u[0] = I[0]                      std(u[0]) = gamma V_th
    u[1] = tau u[0] + I[1]           std(u[1]) = sqrt(1 + tau^2) gamma V_th
    (u[t] for t >= 2 has variance (1 + tau^2 + ... + tau^(2t)) (gamma V_th)^2; the paper keeps the
    t = 1 value for every t >= 1; `membrane_std_table` measures both.)

Surrogate gradient: a rectangle of width w and height 1/w around the threshold,

    ds/du ~ (1/w) * 1{|u - V_th| < w/2}                 (0 outside the window, and on its edges)
    MPD-AGL:   w[0] = 2 gamma_bar V_th,   w[t] = 2 sqrt(1 + tau^2) gamma_bar V_th  for t >= 1
    fixed:     w[t] = w for all t (the baseline; the authors' fallback is w = 1)

i.e. the window is +-1 predicted standard deviation of u around V_th. gamma_bar is the mean over
channels of the preceding tdBN's gamma and tau the neuron's decay factor, both detached: the width
is a constant of the backward pass, recomputed at every forward pass (it follows gamma and tau as
they learn). Where no tdBN precedes a neuron (`gamma_mean=None`) the adaptive width is 1.
The gradient-available interval is |u - V_th| < w/2; `GradientWindowMonitor` measures the fraction
of neurons inside it, per layer and time step.

Controls and diagnostics (ours, for testing the claims; not in the paper or the authors' code):
    frozen_width(gamma, tau, V_th) = (w[0], w[t >= 1]) of the rule at fixed gamma and tau; a neuron
        built with that pair keeps it. At the authors' start (gamma = 1, tau = 0.2, V_th = 0.5) it is
        (1.0, 1.0198): the width-matched control, from which MPD-AGL differs only by what it learns.
    gamma_init: every tdBN gamma starts there (1 in the authors' code); far from 1 it puts the
        membrane spread far from a fixed window, where adapting the width should matter.
    surrogate_state: mean tdBN gamma, tau and the realised width per layer and step.
    depth_ratio: log10(first-layer / classifier gradient norm) on a fixed batch, per probe.

Architectures (the authors' models/*.py; channel counts are arguments so that the same structure
runs scaled down on a CPU):

    ResNet19   direct encoding: the static image is repeated T times.
               encode: conv3x3(in -> c1) + tdBN + spiking neuron
               8 SEW basic blocks, c1 x 3 (stride 1), c2 x 3 (first stride 2), c3 x 2 (first stride 2):
                   out = SN(tdBN(conv3x3(SN(tdBN(conv3x3(x)))))) + shortcut(x)
                   shortcut = x, or SN(tdBN(conv1x1, stride)) when the shape changes ("ADD": the sum of
                   spikes, not binary, goes on to the next block)
               global average pool; FC(c3 -> 256, no bias) + tdBN + SN; FC(256 -> classes, no bias).
               Paper: c = (128, 256, 512). Convs: Kaiming normal (fan_out, relu), no bias.
    VGGSNN     (from TET, for CIFAR10-DVS at 48 x 48, T = 10) encode conv(in -> 64);
               128 | AP | 256, 256 | AP | 512, 512 | AP | 512, 512 | AP; FC(512 * 3 * 3 -> classes).
               Every conv is 3x3, padding 1, no bias, + tdBN + SN; AP = 2 x 2 average pooling.
    Output: logits per step [T, B, classes]; loss = cross-entropy of their mean over time
    (`mean_cross_entropy`); prediction = argmax of the mean.
    Optimiser (main.py): SGD lr 0.1, momentum 0.9, weight decay 1e-4 (5e-4 for CIFAR10-DVS per its
    comment), cosine annealing to 0 over 150 epochs, batch 100, T = 2, PLIF on.

Where this module follows the authors' code rather than the paper, or departs from both:
  * The rules above are the authors' HEAD version (surrogate.py; fire on u >= V_th; PLIF with
    init_a = 5; FC layers without bias). An older neuron.py fired on u > V_th and used init_a = 2;
    its LIF could not be constructed (`super(LIFNode).__init__()`).
  * gamma_bar and beta_bar are computed by the authors' tdBN and passed along in a dict; beta_bar is
    never used. Here each `SpikingUnit` reads `bn.gamma_mean()` and passes it to its neuron.
  * The width is taken from gamma and tau when the forward pass runs (the authors store clones in
    the autograd context at forward time); the same here.
  * The authors' LIF keeps tau as a plain tensor; here it is a float attribute and the width uses it
    as a float32 tensor, as theirs does.
  * Neurons keep their last membrane `v` between calls (spikingjelly's convention): call
    `spikingjelly.activation_based.functional.reset_net(model)` before each batch (`snnlib.training`
    does); the authors' neurons start every call from 0, which is what a reset model does here.
  * Layout and names: time-first tensors; module names of our own (`convert_authors_state_dict`
    maps an authors' state dict onto a model built with the same sizes, by order and shape).
"""

import copy
import math
import re
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import base, functional, layer
from torch import nn

from snnlib.checks import flag, positive_int, real
from snnlib import neurons
from snnlib.layers import TDBatchNorm
from snnlib.metrics import HookedMonitor
from snnlib.surrogate import Rectangle, surrogate_spike
from snnlib.training import fit, make_loader, resolve_device, seed_everything

__all__ = [
    "MPDLIFNode",
    "MPDPLIFNode",
    "GradientWindowMonitor",
    "ResNet19",
    "SpikingUnit",
    "SEWBasicBlock",
    "VGGSNN",
    "convert_authors_state_dict",
    "layer_gradient_norms",
    "depth_ratio",
    "frozen_width",
    "make_neuron",
    "mean_cross_entropy",
    "membrane_std_table",
    "mpd_width",
    "surrogate_state",
    "train_and_record",
    "width_schedule",
]


# --------------------------------------------------------------------------- checks


def _as_tensor(name: str, value, low: float, high: float = math.inf) -> torch.Tensor:
    """A number in (low, high) or a one-element floating tensor (taken as it is) as a detached 0-dim tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point scalar (0-dim tensor), got shape {tuple(value.shape)}")
        return value.detach().reshape(())
    return torch.tensor(real(name, value, low, high, open_low=True, open_high=True), dtype=torch.float32)


# --------------------------------------------------------------------------- the width rule


def mpd_width(gamma_mean, tau, v_threshold: float, t: int) -> torch.Tensor:
    """MPD-AGL's surrogate width at time step t (0-based), a detached 0-dim tensor.

    w = 2 gamma_mean V_th at t = 0, w = 2 sqrt(1 + tau^2) gamma_mean V_th for t >= 1.
    `gamma_mean` (mean tdBN gamma, a number > 0) and `tau` (decay factor, a number in (0, 1)) may
    also be one-element tensors, used as they are (as the authors' code does, a learned gamma_mean
    <= 0 then gives a window with no gradient). The products are formed in the authors' order, in float32.
    """
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"t must be a time step index >= 0, got {t!r}")
    gamma = _as_tensor("gamma_mean", gamma_mean, 0.0)
    v_threshold = real("v_threshold", v_threshold, 0.0, open_low=True)
    if t == 0:
        return 2.0 * gamma * v_threshold
    tau = _as_tensor("tau (the decay factor)", tau, 0.0, 1.0).to(gamma.device)
    return 2.0 * torch.sqrt(1.0 + tau**2) * gamma * v_threshold


def frozen_width(gamma_mean: float, tau: float, v_threshold: float) -> tuple[float, float]:
    """MPD-AGL's widths (w[0], w[t >= 1]) at fixed gamma_mean and tau, as floats: a fixed-width control.

    At the start of training (tdBN gamma = 1, tau = 0.2, V_th = 0.5) this is (1.0, 1.0198): the
    adaptive rule begins exactly where this fixed schedule stays.
    """
    return float(mpd_width(gamma_mean, tau, v_threshold, 0)), float(mpd_width(gamma_mean, tau, v_threshold, 1))


def _fixed_width(width) -> tuple[float, float] | None:
    """None (adaptive), or a fixed width given as a number or a (first step, later steps) pair, as a pair."""
    if width is None:
        return None
    name = "width (None for the adaptive MPD-AGL width, a number, or a (first, later) pair)"
    if isinstance(width, (list, tuple)):
        if len(width) != 2:
            raise ValueError(f"{name} must have 2 entries (w[0], w[t >= 1]), got {width!r}")
        return real(name, width[0], 0.0, open_low=True), real(name, width[1], 0.0, open_low=True)
    width = real(name, width, 0.0, open_low=True)
    return width, width


def width_schedule(gamma_mean, tau, v_threshold: float, time_steps: int) -> torch.Tensor:
    """The widths of all `time_steps` steps, `[T]`: `mpd_width(gamma_mean, tau, v_threshold, t)` for each t."""
    if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")
    return torch.stack([mpd_width(gamma_mean, tau, v_threshold, t) for t in range(time_steps)])


# --------------------------------------------------------------------------- neurons


class _MPDNode(base.MemoryModule):
    """Shared dynamics of `MPDLIFNode` and `MPDPLIFNode`; subclasses define `decay()`.

    forward(x_seq [T, B, ...], gamma_mean=None) -> spikes [T, B, ...]. `width` None means MPD-AGL's
    adaptive width (1 where gamma_mean is None); a number fixes the width at every step; a pair
    (first, later) fixes w[0] = first and w[t] = later for t >= 1 (e.g. `frozen_width`).
    With store_u_seq=True the last call's membranes before reset (detached) are kept in `u_seq`
    `[T, B, ...]` and its widths in `width_seq` `[T]`. Runs fused (`snnlib.neurons.fused_decay_lif`:
    all T steps in one autograd Function, step t's backward with widths[t]; same spikes and u bit
    for bit as the per-step loop, gradients, dL/dw of PLIF included, equal to rounding); where
    `snnlib.neurons.fused_enabled` says no, the per-step loop `_per_step_forward` runs instead.
    """

    def __init__(self, v_threshold: float, width, store_u_seq: bool):
        super().__init__()
        self.v_threshold = real("v_threshold", v_threshold, 0.0, open_low=True)
        self.width = _fixed_width(width)
        self.store_u_seq = flag("store_u_seq", store_u_seq)
        self.step_mode = "m"
        self.register_memory("v", 0.0)
        self.register_memory("u_seq", None)
        self.register_memory("width_seq", None)

    def supported_step_mode(self):
        return ("m",)

    @property
    def adaptive(self) -> bool:
        """True when the width follows MPD-AGL's rule, False for a fixed width."""
        return self.width is None

    def decay(self) -> torch.Tensor:
        """The decay factor tau (in the graph for PLIF)."""
        raise NotImplementedError

    def widths(self, time_steps: int, gamma_mean) -> torch.Tensor:
        """The surrogate widths of a call with `time_steps` steps, `[T]`, detached."""
        if not self.adaptive:
            first, later = self.width
            return torch.tensor([first] + [later] * (time_steps - 1), dtype=torch.float32)
        if gamma_mean is None:
            return torch.ones(time_steps)
        return width_schedule(gamma_mean, self.decay().detach(), self.v_threshold, time_steps)

    def forward(self, x_seq: torch.Tensor, gamma_mean=None) -> torch.Tensor:
        if not isinstance(x_seq, torch.Tensor) or not x_seq.is_floating_point() or x_seq.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects a floating-point time-first input [T, B, ...], "
                f"got {getattr(x_seq, 'shape', type(x_seq).__name__)}"
            )
        if isinstance(self.v, torch.Tensor) and self.v.shape != x_seq.shape[1:]:
            raise ValueError(
                f"input steps of shape {tuple(x_seq.shape[1:])} differ from the stored membrane "
                f"{tuple(self.v.shape)}; call spikingjelly.activation_based.functional.reset_net(model) between batches"
            )
        widths = self.widths(x_seq.shape[0], gamma_mean).to(x_seq.device)
        tau = self.decay()
        surrogate = Rectangle()  # its derivative, with widths[t] at step t
        if not neurons.fused_enabled(surrogate):
            return self._per_step_forward(x_seq, tau, widths)
        v = self.v if isinstance(self.v, torch.Tensor) else x_seq.new_full(x_seq.shape[1:], self.v)
        spikes, self.v, h = neurons.fused_decay_lif(
            x_seq, v, tau, self.v_threshold, surrogate, widths=widths, keep_h_seq=self.store_u_seq
        )
        if self.store_u_seq:
            self.u_seq, self.width_seq = h.detach(), widths
        return spikes

    def _per_step_forward(self, x_seq: torch.Tensor, tau: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """The same dynamics as a loop over time steps, autograd building the graph step by step."""
        v, spikes, membranes = self.v, [], []
        for t, x in enumerate(x_seq):  # iterating unbinds: indexing x_seq[t] would make the backward O(T^2)
            u = tau * v + x
            s = surrogate_spike(u - self.v_threshold, Rectangle.derivative, widths[t])
            v = u * (1.0 - s)
            spikes.append(s)
            membranes.append(u.detach())
        self.v = v
        if self.store_u_seq:
            self.u_seq, self.width_seq = torch.stack(membranes), widths
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        width = "adaptive (MPD-AGL)" if self.adaptive else self.width if self.width[0] != self.width[1] else self.width[0]
        return f"v_threshold={self.v_threshold}, width={width}"


class MPDLIFNode(_MPDNode):
    """LIF with decay factor `tau` in (0, 1), hard reset, firing on u >= v_threshold, MPD-AGL surrogate.

    u[t] = tau u[t-1] (1 - s[t-1]) + I[t];  s[t] = (u[t] >= v_threshold). Input/output `[T, B, ...]`.
    `width=None`: surrogate width 2 gamma_bar V_th at t = 0 and 2 sqrt(1 + tau^2) gamma_bar V_th after
    (gamma_bar passed to forward, see `SpikingUnit`); a number: that fixed width; a pair (first, later):
    w[0] = first, w[t >= 1] = later, fixed.
    """

    def __init__(self, tau: float = 0.2, v_threshold: float = 0.5, width=None,
                 store_u_seq: bool = False):
        super().__init__(v_threshold, width, store_u_seq)
        self.tau = real("tau (the decay factor)", tau, 0.0, 1.0, open_low=True, open_high=True)

    def decay(self) -> torch.Tensor:
        return torch.tensor(self.tau, dtype=torch.float32)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, {super().extra_repr()}"


class MPDPLIFNode(_MPDNode):
    """PLIF: `MPDLIFNode` with a learnable decay factor tau = sigmoid(w), one scalar per layer.

    w starts at logit(init_tau) (the authors' -ln(init_a - 1) with init_a = 1 / init_tau = 5).
    The gradient reaches w through the leak; the width uses tau detached.
    """

    def __init__(self, init_tau: float = 0.2, v_threshold: float = 0.5, width=None,
                 store_u_seq: bool = False):
        super().__init__(v_threshold, width, store_u_seq)
        init_tau = real("init_tau (the initial decay factor)", init_tau, 0.0, 1.0, open_low=True, open_high=True)
        self.w = nn.Parameter(torch.tensor(-math.log(1.0 / init_tau - 1.0), dtype=torch.float32))

    def decay(self) -> torch.Tensor:
        return self.w.sigmoid()

    def extra_repr(self) -> str:
        return f"tau={self.w.sigmoid().item():.4g}, {super().extra_repr()}"


NEURONS = {"lif": MPDLIFNode, "plif": MPDPLIFNode}


def make_neuron(kind: str = "plif", width=None, v_threshold: float = 0.5,
                tau: float = 0.2) -> Callable[[], _MPDNode]:
    """A factory of fresh neurons: kind "plif" (learnable tau, starts at `tau`) or "lif" (fixed `tau`).

    `width=None` gives MPD-AGL's adaptive width, a number a fixed-width rectangle, a pair
    (first, later) a fixed width per step (w[0], then w[t >= 1]).
    """
    if kind not in NEURONS:
        raise ValueError(f"neuron kind must be one of {sorted(NEURONS)}, got {kind!r}")
    real("tau", tau, 0.0, 1.0, open_low=True, open_high=True)
    real("v_threshold", v_threshold, 0.0, open_low=True)
    _fixed_width(width)
    return lambda: NEURONS[kind](tau, v_threshold, width)


# --------------------------------------------------------------------------- building blocks


class SpikingUnit(nn.Module):
    """synapse -> tdBN -> neuron, over time-first input `[T, B, ...]`.

    I = bn(synapse(x[t]) for every t);  s = neuron(I, gamma_mean=bn.gamma_mean()).
    `synapse` is a stateless torch layer (conv, linear) applied to each step; the neuron reads the
    mean gamma of this tdBN for its adaptive surrogate width.
    """

    def __init__(self, synapse: nn.Module, bn: TDBatchNorm, neuron: _MPDNode):
        super().__init__()
        if not isinstance(bn, TDBatchNorm):
            raise TypeError(f"bn must be a snnlib.layers.TDBatchNorm, got {type(bn).__name__}")
        if not isinstance(neuron, _MPDNode):
            raise TypeError(f"neuron must be an MPDLIFNode or MPDPLIFNode, got {type(neuron).__name__}")
        self.synapse = synapse
        self.bn = bn
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = self.bn(functional.seq_to_ann_forward(x, self.synapse))
        return self.neuron(current, gamma_mean=self.bn.gamma_mean())


def _conv_unit(c_in, c_out, kernel, stride, new_neuron, v_threshold) -> SpikingUnit:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return SpikingUnit(conv, TDBatchNorm(c_out, v_threshold=v_threshold), new_neuron())


class SEWBasicBlock(nn.Module):
    """SEW-ResNet basic block (ADD): unit2(unit1(x)) + shortcut(x), all `[T, B, C, H, W]`.

    unit1 = conv3x3(stride) + tdBN + SN, unit2 = conv3x3 + tdBN + SN; the shortcut is x, or
    `downsample` = conv1x1(stride) + tdBN + SN when stride != 1 or the channels change.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, new_neuron: Callable, v_threshold: float = 0.5):
        super().__init__()
        self.unit1 = _conv_unit(c_in, c_out, 3, stride, new_neuron, v_threshold)
        self.unit2 = _conv_unit(c_out, c_out, 3, 1, new_neuron, v_threshold)
        needs_projection = stride != 1 or c_in != c_out
        self.downsample = _conv_unit(c_in, c_out, 1, stride, new_neuron, v_threshold) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.unit2(self.unit1(x)) + shortcut


def _initialise(model: nn.Module, gamma_init: float) -> None:
    """The authors' initialisation: Kaiming normal (fan_out, relu) for every conv, zero conv biases;
    every tdBN gamma = `gamma_init` (torch's, and the authors', is 1)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        if isinstance(module, TDBatchNorm) and module.affine:
            nn.init.constant_(module.weight, gamma_init)


class ResNet19(nn.Module):
    """Spiking ResNet-19 (SEW blocks, tdBN, MPD-AGL neurons), as the authors' models/ResNet19.py.

    Input: static images `[B, C, H, W]` (repeated `time_steps` times: direct encoding) or frames
    `[T, B, C, H, W]` (used as they are). Output: logits per step `[T, B, num_classes]`.
    `channels` = the three stages' widths (paper: 128, 256, 512), `blocks` = blocks per stage
    (3, 3, 2), `fc_hidden` = 256; `neuron` = "plif" or "lif", `width` = None (MPD-AGL) or a fixed
    surrogate width (a number or a (first, later) pair); `tau` = (initial) decay factor; `gamma_init`
    = every tdBN's initial gamma (1 as the authors; far from 1 for a stress test of the width rule).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, time_steps: int = 2,
                 channels: tuple[int, int, int] = (128, 256, 512), blocks: tuple[int, int, int] = (3, 3, 2),
                 fc_hidden: int = 256, neuron: str = "plif", width=None,
                 v_threshold: float = 0.5, tau: float = 0.2, gamma_init: float = 1.0):
        super().__init__()
        if len(channels) != 3 or len(blocks) != 3:
            raise ValueError(f"channels and blocks need one entry per stage (3), got {channels!r} and {blocks!r}")
        for name, value in [("in_channels", in_channels), ("num_classes", num_classes), ("time_steps", time_steps),
                            ("fc_hidden", fc_hidden), *[("channels", c) for c in channels],
                            *[("blocks", b) for b in blocks]]:
            positive_int(name, value)
        self.time_steps = time_steps
        new_neuron = make_neuron(neuron, width, v_threshold, tau)
        self.encode = _conv_unit(in_channels, channels[0], 3, 1, new_neuron, v_threshold)
        stages, c_in = [], channels[0]
        for c_out, n_blocks, stride in zip(channels, blocks, (1, 2, 2)):
            for index in range(n_blocks):
                stages.append(SEWBasicBlock(c_in, c_out, stride if index == 0 else 1, new_neuron, v_threshold))
                c_in = c_out
        self.blocks = nn.Sequential(*stages)
        self.pool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.fc = SpikingUnit(nn.Linear(c_in, fc_hidden, bias=False), TDBatchNorm(fc_hidden, v_threshold=v_threshold),
                              new_neuron())
        self.classifier = layer.Linear(fc_hidden, num_classes, bias=False, step_mode="m")
        _initialise(self, real("gamma_init", gamma_init, 0.0, open_low=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
            raise ValueError(
                "ResNet19 expects images [B, C, H, W] (repeated over time) or frames [T, B, C, H, W], "
                f"got {getattr(x, 'shape', type(x).__name__)}"
            )
        if x.dim() == 4:
            x = x.unsqueeze(0).repeat(self.time_steps, 1, 1, 1, 1)
        x = self.blocks(self.encode(x.float()))
        x = self.pool(x).flatten(2)  # global average pooling -> [T, B, C]
        return self.classifier(self.fc(x))


class VGGSNN(nn.Module):
    """VGGSNN (TET's, as the authors' models/VGGSNN.py) with tdBN and MPD-AGL neurons.

    Input frames `[T, B, in_channels, input_size, input_size]`; output logits `[T, B, num_classes]`.
    Layers: encode conv(in -> c0); c1 | AP | c2, c2 | AP | c3, c3 | AP | c3, c3 | AP | FC, every conv
    3x3 + tdBN + SN, AP = 2x2 average pooling. Paper: channels (64, 128, 256, 512), input 48, T = 10.
    `width`, `tau`, `gamma_init` as for `ResNet19`.
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 10, input_size: int = 48,
                 channels: tuple[int, int, int, int] = (64, 128, 256, 512), neuron: str = "plif",
                 width=None, v_threshold: float = 0.5, tau: float = 0.2, gamma_init: float = 1.0):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"channels needs 4 entries (encode, 3 stages), got {channels!r}")
        for name, value in [("in_channels", in_channels), ("num_classes", num_classes),
                            *[("channels", c) for c in channels]]:
            positive_int(name, value)
        if positive_int("input_size", input_size) < 16:
            raise ValueError(f"input_size must be >= 16 (four 2x2 poolings), got {input_size}")
        self.input_size = input_size
        new_neuron = make_neuron(neuron, width, v_threshold, tau)
        c0, c1, c2, c3 = channels
        plan = [c1, "pool", c2, c2, "pool", c3, c3, "pool", c3, c3, "pool"]
        self.encode = _conv_unit(in_channels, c0, 3, 1, new_neuron, v_threshold)
        features, c_in = [], c0
        for step in plan:
            if step == "pool":
                features.append(layer.AvgPool2d(2, 2, step_mode="m"))
            else:
                features.append(_conv_unit(c_in, step, 3, 1, new_neuron, v_threshold))
                c_in = step
        self.features = nn.Sequential(*features)
        self.classifier = layer.Linear(c3 * (input_size // 16) ** 2, num_classes, bias=True, step_mode="m")
        _initialise(self, real("gamma_init", gamma_init, 0.0, open_low=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 5 or tuple(x.shape[3:]) != (self.input_size,) * 2:
            raise ValueError(
                f"VGGSNN expects frames [T, B, C, {self.input_size}, {self.input_size}], "
                f"got {getattr(x, 'shape', type(x).__name__)}; resize the frames or set input_size"
            )
        x = self.features(self.encode(x.float()))
        return self.classifier(x.flatten(2))


def mean_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the time-averaged logits: CE(mean_t output[t], target); output `[T, B, C]`."""
    if not isinstance(output, torch.Tensor) or output.dim() != 3:
        raise ValueError(f"expected time-first logits [T, B, classes], got {getattr(output, 'shape', output)!r}")
    return F.cross_entropy(output.mean(0), target.long())


def convert_authors_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """An authors' ResNet19/VGGSNN state dict (their 'net' checkpoint entry) renamed for `model`.

    Both register their tensors in the same order (synapse weight, tdBN weight, bias, running_mean,
    running_var, num_batches_tracked, PLIF w; block by block), so entries are paired in order and
    each pair must agree in its last name component and its shape. DataParallel's "module." prefix is
    stripped. Raises ValueError naming the first entry that does not match.
    """
    theirs = [(re.sub(r"^module\.", "", key), value) for key, value in state_dict.items()]
    ours = list(model.state_dict().items())
    if len(theirs) != len(ours):
        raise ValueError(
            f"the state dict has {len(theirs)} entries, the model {len(ours)}: build the model with the same "
            "channels, blocks, neuron kind (plif has a parameter w, lif none) and FC biases"
        )
    converted = {}
    for (their_key, value), (our_key, reference) in zip(theirs, ours):
        if their_key.rsplit(".", 1)[-1] != our_key.rsplit(".", 1)[-1] or value.shape != reference.shape:
            raise ValueError(f"{their_key} {tuple(value.shape)} does not match {our_key} {tuple(reference.shape)}")
        converted[our_key] = value
    return converted


# --------------------------------------------------------------------------- measurements


def _mpd_neurons(model: nn.Module) -> dict[nn.Module, str]:
    return {module: name for name, module in model.named_modules() if isinstance(module, _MPDNode)}


class GradientWindowMonitor(HookedMonitor):
    """Fraction of neurons in the gradient-available interval |u - V_th| < w/2, per layer and step.

    Watches every MPD neuron of `model` while used as a context manager (it turns their
    `store_u_seq` on, and back off on exit). Each forward call adds, for every step t, the number of
    neurons whose membrane before reset u[t] lies strictly inside that step's window. With
    `training_only=True` (default) only calls in training mode count. `table()` gives
    layer, depth (0 = first neuron layer), t, fraction, count; `reset()` starts afresh.

        with GradientWindowMonitor(model) as monitor:
            fit(model, ..., epoch_callback=lambda e, h: rows.append(monitor.table().assign(epoch=e)) or monitor.reset())
    """

    def __init__(self, model: nn.Module, training_only: bool = True):
        neurons = _mpd_neurons(model)
        if not neurons:
            raise ValueError("the model has no MPDLIFNode/MPDPLIFNode to watch")
        super().__init__(neurons)
        self.training_only = training_only
        self._depth = {name: depth for depth, name in enumerate(neurons.values())}
        self._stored: dict[nn.Module, bool] = {}
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self._inside: dict[str, torch.Tensor] = {}
        self._total: dict[str, torch.Tensor] = {}

    def __enter__(self):
        self._stored = {module: module.store_u_seq for module in self._modules}
        for module in self._modules:
            module.store_u_seq = True
        return super().__enter__()

    def __exit__(self, *exc_info):
        for module, stored in self._stored.items():
            module.store_u_seq = stored
        return super().__exit__(*exc_info)

    def record(self, name, module, args, output):
        if self.training_only and not module.training:
            return
        u = module.u_seq.flatten(1)
        half = (module.width_seq.to(u.device) / 2)[:, None]
        inside = ((u - module.v_threshold).abs() < half).sum(1).double().cpu()
        total = torch.full_like(inside, u.shape[1])
        if name in self._inside and len(self._inside[name]) == len(inside):
            self._inside[name] += inside
            self._total[name] += total
        else:
            self._inside[name], self._total[name] = inside, total

    def table(self) -> pd.DataFrame:
        """Long table: layer, depth, t, fraction (inside / all neuron-steps seen), count (neuron-steps)."""
        rows = [
            {"layer": name, "depth": self._depth[name], "t": t, "fraction": inside / total, "count": int(total)}
            for name in self._inside
            for t, (inside, total) in enumerate(zip(self._inside[name].tolist(), self._total[name].tolist()))
        ]
        return pd.DataFrame(rows, columns=["layer", "depth", "t", "fraction", "count"])


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                         loss_fn: Callable = mean_cross_entropy) -> pd.DataFrame:
    """L2 norm of the loss gradient w.r.t. each conv/linear weight on one batch, in forward order.

    Runs on a deep copy of `model` in training mode (batch statistics), so neither the model's
    weights, gradients nor tdBN running statistics change. The copy keeps the model's forward
    hooks, so an active monitor (e.g. `GradientWindowMonitor`) also counts this batch.
    Returns layer, depth (0 = first), grad_norm.
    """
    probe = copy.deepcopy(model).train()
    functional.reset_net(probe)
    probe.zero_grad(set_to_none=True)
    loss_fn(probe(x), y).backward()
    rows = [
        {"layer": name.removesuffix(".synapse"), "grad_norm": module.weight.grad.norm().item()}
        for name, module in probe.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module.weight.grad is not None
    ]
    return pd.DataFrame(rows, columns=["layer", "grad_norm"]).rename_axis("depth").reset_index()


def surrogate_state(model: nn.Module, time_steps: int) -> pd.DataFrame:
    """What sets each neuron layer's surrogate now: mean tdBN gamma, decay tau and the width per step.

    One row per `SpikingUnit` (in forward order, depth 0 = the first) and time step t: layer, depth,
    gamma_mean (the unit's tdBN, the MPD statistic gamma_bar), tau (the neuron's decay factor), t,
    width (the width its neuron uses at step t: MPD-AGL's rule for adaptive neurons, else the fixed one).
    """
    time_steps = positive_int("time_steps", time_steps)
    units = [(name, module) for name, module in model.named_modules() if isinstance(module, SpikingUnit)]
    if not units:
        raise ValueError("the model has no SpikingUnit (synapse -> tdBN -> MPD neuron) to read")
    rows = []
    with torch.no_grad():
        for depth, (name, unit) in enumerate(units):
            gamma = unit.bn.gamma_mean()
            widths = unit.neuron.widths(time_steps, gamma)
            rows += [{"layer": name, "depth": depth, "gamma_mean": float(gamma), "tau": float(unit.neuron.decay()),
                      "t": t, "width": float(w)} for t, w in enumerate(widths)]
    return pd.DataFrame(rows)


def depth_ratio(gradients: pd.DataFrame) -> pd.DataFrame:
    """log10(input-side / output-side gradient norm) per probe, from `layer_gradient_norms` tables.

    `gradients` holds layer, depth, grad_norm and any probe columns (e.g. epoch); for each probe the
    first layer's norm (depth 0, the encoding conv) is divided by the last one's (the classifier,
    whose gradient passes no surrogate). Both fall as the loss falls, their ratio measures how much of
    the gradient survives the way back through the spiking layers. Returns the probe columns and
    `log10_ratio`.
    """
    missing = {"depth", "grad_norm"} - set(gradients.columns)
    if missing:
        raise ValueError(f"gradients needs columns depth and grad_norm (layer_gradient_norms), missing {sorted(missing)}")
    keys = [c for c in gradients.columns if c not in ("layer", "depth", "grad_norm")]
    def ratio(group):
        ordered = group.sort_values("depth").grad_norm.to_numpy()
        return np.log10(ordered[0] / ordered[-1])
    if not keys:
        return pd.DataFrame({"log10_ratio": [ratio(gradients)]})
    return gradients.groupby(keys).apply(ratio, include_groups=False).rename("log10_ratio").reset_index()


def membrane_std_table(gammas, taus, *, v_threshold: float = 0.5, beta: float = 0.0, n_neurons: int = 100_000,
                       time_steps: int = 4, reset: bool = False, seed: int = 0) -> pd.DataFrame:
    """The theory check: std of u[t] for I[t] ~ N(beta, (gamma V_th)^2) i.i.d., against MPD-AGL's prediction.

    For each gamma and decay factor tau, simulates `n_neurons` independent neurons for `time_steps`
    steps, u[t] = tau u[t-1] + I[t] (with reset=True: the hard reset u[t-1] (1 - s[t-1]) of the real
    neuron), and returns one row per (gamma, tau, t) with
        empirical   std of u[t] over the neurons
        predicted   gamma V_th at t = 0, sqrt(1 + tau^2) gamma V_th at t >= 1 (MPD-AGL's width / 2)
        exact       sqrt(1 + tau^2 + ... + tau^(2t)) gamma V_th (no reset)
        std_error   the standard error of `empirical`, approximately empirical / sqrt(2 (n - 1)).
    Randomness comes from numpy's `default_rng(seed)`.
    """
    v_threshold = real("v_threshold", v_threshold, 0.0, open_low=True)
    beta = real("beta", beta)
    n_neurons = positive_int("n_neurons", n_neurons)
    if n_neurons < 2:
        raise ValueError("n_neurons must be >= 2 to estimate a standard deviation")
    time_steps = positive_int("time_steps", time_steps)
    rng = np.random.default_rng(seed)
    rows = []
    for gamma in gammas:
        sigma = real("gamma", gamma, 0.0, open_low=True) * v_threshold
        for tau in taus:
            tau = real("tau", tau, 0.0, 1.0, open_low=True, open_high=True)
            currents = rng.normal(beta, sigma, size=(time_steps, n_neurons))
            u = np.zeros(n_neurons)
            for t in range(time_steps):
                u = tau * u + currents[t]
                std = u.std(ddof=1)
                predicted = sigma if t == 0 else math.sqrt(1 + tau**2) * sigma
                exact = sigma * math.sqrt(sum(tau ** (2 * k) for k in range(t + 1)))
                rows.append({"gamma": gamma, "tau": tau, "t": t, "empirical": std, "predicted": predicted,
                             "exact": exact, "std_error": std / math.sqrt(2 * (n_neurons - 1))})
                if reset:
                    u = np.where(u >= v_threshold, 0.0, u)
    return pd.DataFrame(rows)


def train_and_record(make_model: Callable[[], nn.Module], train_set, test_set, *, epochs: int, batch_size: int,
                     lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-4, seed: int = 0,
                     device="auto", time_axis: int | None = None, probe_size: int = 64,
                     progress: bool = False) -> dict[str, pd.DataFrame]:
    """Train a fresh `make_model()` with the authors' recipe and record MPD-AGL's diagnostics.

    Recipe (main.py): SGD(lr, momentum, weight_decay), cosine annealing to 0 over `epochs`,
    `mean_cross_entropy`; the model is built after seeding with `seed`, batches are shuffled by
    `seed`. `time_axis`: None for static images `[B, C, H, W]` (the model repeats them over time),
    1 for frame batches `[B, T, ...]`. Returns
        history    fit's table (epoch, train_loss, train_acc, val_loss, val_acc = test accuracy, ...)
        window     `GradientWindowMonitor` over each epoch's training batches, with an `epoch` column
        gradients  `layer_gradient_norms` on the first `probe_size` training samples, before training
                   (epoch 0) and after every epoch (so at the same optimiser steps for every model)
        surrogate  `surrogate_state` (mean tdBN gamma, tau, width per layer and step) at the same points
    The model's time steps are `model.time_steps` for static images, else the frames' T.
    """
    device = resolve_device(device)
    seed_everything(seed)
    model = make_model().to(device)
    probe_x, probe_y = next(iter(make_loader(train_set, min(probe_size, len(train_set)), shuffle=False)))
    probe_x = probe_x.to(device) if time_axis is None else probe_x.movedim(time_axis, 0).to(device)
    probe_y = probe_y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    windows = []
    gradients = [layer_gradient_norms(model, probe_x, probe_y).assign(epoch=0)]
    steps = model.time_steps if time_axis is None else probe_x.shape[0]
    surrogate = [surrogate_state(model, steps).assign(epoch=0)]

    with GradientWindowMonitor(model) as monitor:
        def after_epoch(epoch, history):
            windows.append(monitor.table().assign(epoch=epoch))
            gradients.append(layer_gradient_norms(model, probe_x, probe_y).assign(epoch=epoch))
            surrogate.append(surrogate_state(model, steps).assign(epoch=epoch))
            monitor.reset()  # after the probe: its copy of the model carries the monitor's hooks

        history = fit(model, make_loader(train_set, batch_size, seed=seed), epochs=epochs, optimizer=optimizer,
                      loss_fn=mean_cross_entropy, val_loader=make_loader(test_set, 256, shuffle=False),
                      scheduler=scheduler, seed=seed, device=device, time_axis=time_axis, progress=progress,
                      epoch_callback=after_epoch)
    return {"history": history, "window": pd.concat(windows, ignore_index=True),
            "gradients": pd.concat(gradients, ignore_index=True), "surrogate": pd.concat(surrogate, ignore_index=True)}
