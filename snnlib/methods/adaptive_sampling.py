"""Wang et al. 2024 (EAS-SNN): event representations for detection, fixed windows against spike-timed sampling.

Paper: Z. Wang, Z. Wang, H. Li, L. Qin, R. Jiang, D. Ma, H. Tang, "EAS-SNN: End-to-End Adaptive
Sampling and Representation for Event-based Detection with Recurrent Spiking Neural Networks",
ECCV 2024, arXiv 2403.12574. Authors' code: github.com/Windere/EAS-SNN (yolox/models/embedding.py,
cell.py, activation.py, exp/event_yolox_base.py). Facts: shared/research/papers.md §7.

Shapes. A sample is a history window of events cut into Tm equal micro bins of event counts,
`frames` [Tm, B, C, H, W], time-first and oldest bin first (C = 2 polarities). `batch_first=True`
takes the authors' input [B, Tm, C, H, W]. Every sampler returns representations [S, B, C, H, W]:
S = Ts for ARSNN, S = 1 for the fixed-window samplers (the detector repeats S = 1 over its T steps,
as the authors' SpikingYOLOX.forward does).

All spiking samplers walk the bins in REVERSE time order, most recent first (the authors reverse
the bins before the loop), with threshold theta = 1, strict firing s = H(u - theta) (fires on
u - theta > 0), the rectangle surrogate ds/du = 1 for |u - theta| < 0.5 (the authors hard-code it,
whatever spike_fn says) and hard reset to v_reset = 0 (`v_reset=None`: soft reset u - theta s).

    count   R = sum_t f_t                                         (event count over the whole window)
    snn     a_t = Conv(f_t);  u_t = sigmoid(w) v_{t-1} + a_t      (one learnable decay, sigmoid(w) = 0.5 at init)
            s_t = H(u_t - theta);  v_t = u_t (1 - s_t) + v_reset s_t
            R = sum_t u_t                                          (pre-reset potential, readout 'sum')
    rsnn    [g_t, c_t] = InConv(f_t) + GateConv(s_{t-1})          (channels split in half: gate, current)
            u_t = sigmoid(g_t) v_{t-1} + c_t;  s_t, v_t as above;  R = sum_t u_t
    arsnn   u_t, s_t, v_t as rsnn; the spikes of each element (b, c, y, x) cut its bins into
            samples: sample k = sum of u_tau over the k-th inter-spike interval, the closing
            (spiking) step included:  F_k = sum_{tau = t_{k-1}+1 .. t_k} u_tau  (t_0 = -1),
            written for k = 1..Ts. The walk stops as soon as every element of the batch has Ts
            samples. An element that ends the walk without Ts samples writes its residual
            (sum of u since its last spike) as its next sample.
        SAT (spike_attach):  F_k = s_{t_k} * sum u   -- s = 1 there, so the forward value is the
            same, but the gradient gains  (sum u) * ds/du  at the closing spike.
        RPD (write_zero):    the residual is written as 0 (no sample without a closing spike).

Convolutions: every stack is Conv(k) for depth 1, Conv(k) -> ReLU -> Conv(k) for depth 2 (and so
on), 'same' padding k // 2. ARSNN's and rsnn's GateConv maps C -> 2C and InConv C -> 2C; the
recurrent spike path needs in = out channels (the authors' module has the same restriction).
Initialisation as the authors': InConv (and snn's conv) orthogonal with gain sqrt(2), GateConv
Kaiming-uniform for a sigmoid (gain 1), biases PyTorch's default.

Parameter layout follows the authors' module, so a state dict of theirs loads as is:
ARSNN `gate_conv.{0,2}.*`, `input_conv.{0,2}.*`; rsnn `input_conv.layer.{0,2}.*`, `gate_conv.*`;
snn `embedding_conv.layer.{0,2}.*`, `cell.decay` (the decay logit, a 0-d tensor).

Departures from the authors' module, and why:
  * only readout 'sum' (the released commands' setting); their 'last' writes the post-reset
    potential (v_reset) for ARSNN and 'avg' divides by interval lengths: not used by any command;
  * no `abs`/`relu` output rectification and no `split` branch (unused by the released commands;
    `split` only creates two convolutions the forward pass never calls);
  * their modules also accept 4-D and 6-D tensors (a parameter-registration shortcut and a
    [B, Tl, Tm, ...] stack); here 5-D only, time-first by default, with a clear error otherwise;
  * count, snn and rsnn return [1, B, C, H, W] where the authors return [B, C, H, W], so that
    every sampler has the same output rank (squeeze(0) gives theirs);
  * the ARSNN bookkeeping uses dense masks (torch.where) instead of gathering nonzero indices:
    the same values are written to the same places (0 + v = v exactly), so the forward output is
    bit-identical; the gradients are the same sums, possibly accumulated in another order;
  * `decay` is not an ARSNN parameter (the authors pass it but the gate is the decay).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn

from snnlib import checks
from snnlib.surrogate import Rectangle

__all__ = [
    "ARSNNSampler", "CountSampler", "LIFSampler", "RSNNSampler", "SamplerTrace", "SAMPLERS", "build_sampler",
    "window_lengths",
]


def conv_stack(in_channels: int, out_channels: int, kernel_size: int, depth: int) -> nn.Sequential:
    """Conv(k) then (ReLU, Conv(k)) depth - 1 times, 'same' padding: the authors' build_conv."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)]
    for _ in range(depth - 1):
        layers += [nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, kernel_size, padding=kernel_size // 2)]
    return nn.Sequential(*layers)


def _init_convs(stack: nn.Module, kind: str) -> None:
    for m in stack.modules():
        if isinstance(m, nn.Conv2d):
            if kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain("relu"))
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="sigmoid")


class TimeDistributed(nn.Module):
    """Applies `layer` to every step of [T, B, ...] at once (flattening T and B), as the authors' tdLayer."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x.contiguous().view(-1, *x.shape[2:]))
        return y.view(x.shape[0], -1, *y.shape[1:])


def _frames(frames, channels: int, batch_first: bool) -> torch.Tensor:
    """Checked [Tm, B, C, H, W] in bin order (oldest first); a batch-first input is transposed."""
    if not (isinstance(frames, torch.Tensor) and frames.is_floating_point()):
        raise TypeError(f"expected a floating-point tensor of event-count bins, got {type(frames).__name__}")
    layout = "[B, Tm, C, H, W]" if batch_first else "[Tm, B, C, H, W]"
    if frames.dim() != 5 or frames.shape[2] != channels or 0 in frames.shape[:2]:
        raise ValueError(f"expected event-count bins {layout} with C = {channels}, got shape {tuple(frames.shape)}; "
                         "bin the events with snnlib.methods.adaptive_sampling.bin_events (time-first) or pass "
                         "batch_first=True for the authors' layout")
    return frames.transpose(0, 1) if batch_first else frames


def _most_recent_first(frames: torch.Tensor) -> torch.Tensor:
    return torch.index_select(frames, 0, torch.arange(frames.size(0) - 1, -1, -1, device=frames.device))


class _SpikingSampler(nn.Module):
    """Threshold, reset and the authors' hard-coded rectangle surrogate (strict firing)."""

    def __init__(self, threshold: float, v_reset: float | None):
        super().__init__()
        self.threshold = checks.real("threshold", threshold, 0.0, open_low=True)
        self.v_reset = None if v_reset is None else checks.real("v_reset", v_reset)
        self.spike = Rectangle(width=1.0, strict=True)

    def update(self, v, gate, current):
        """(v after reset, u before reset, spike) for one step: u = gate * v + current."""
        u = gate * v + current
        s = self.spike(u - self.threshold)
        if self.v_reset is None:
            return u - self.threshold * s, u, s
        return u * (1 - s) + self.v_reset * s, u, s


class CountSampler(nn.Module):
    """'count': the event counts of all Tm bins summed (a fixed window); no parameters."""

    def __init__(self, channels: int = 2):
        super().__init__()
        self.channels = checks.positive_int("channels", channels)

    def forward(self, frames: torch.Tensor, batch_first: bool = False) -> torch.Tensor:
        return _frames(frames, self.channels, batch_first).sum(dim=0).unsqueeze(0)


class LIFSampler(_SpikingSampler):
    """'snn': Conv stack over every bin, then one LIF layer with a learnable decay; readout sum of u."""

    def __init__(self, kernel_size: int = 5, channels: int = 2, depth: int = 2, decay: float = 0.5,
                 threshold: float = 1.0, v_reset: float | None = 0.0):
        super().__init__(threshold, v_reset)
        self.channels = checks.positive_int("channels", channels)
        decay = checks.real("decay", decay, 0.0, 1.0, open_low=True, open_high=True)
        self.embedding_conv = TimeDistributed(conv_stack(channels, channels, kernel_size, checks.positive_int(
            "depth", depth)))
        self.cell = nn.Module()
        self.cell.decay = nn.Parameter(torch.tensor(math.log(decay / (1 - decay))))
        _init_convs(self.embedding_conv, "orthogonal")

    def forward(self, frames: torch.Tensor, batch_first: bool = False) -> torch.Tensor:
        x = self.embedding_conv(_most_recent_first(_frames(frames, self.channels, batch_first)))
        v = torch.zeros_like(x[0])
        total = torch.zeros_like(x[0])
        for t in range(x.shape[0]):
            v, u, _ = self.update(v, torch.sigmoid(self.cell.decay), x[t])
            total = total + u
        return total.unsqueeze(0)


class RSNNSampler(_SpikingSampler):
    """'rsnn': recurrent conv SNN with a gated decay over all Tm bins; readout sum of u (no sampling)."""

    def __init__(self, kernel_size: int = 5, channels: int = 2, depth: int = 2, threshold: float = 1.0,
                 v_reset: float | None = 0.0):
        super().__init__(threshold, v_reset)
        self.channels = checks.positive_int("channels", channels)
        depth = checks.positive_int("depth", depth)
        self.input_conv = TimeDistributed(conv_stack(channels, 2 * channels, kernel_size, depth))
        self.gate_conv = conv_stack(channels, 2 * channels, kernel_size, depth)
        _init_convs(self.input_conv, "orthogonal")
        _init_convs(self.gate_conv, "kaiming")

    def forward(self, frames: torch.Tensor, batch_first: bool = False) -> torch.Tensor:
        g_in, c_in = self.input_conv(_most_recent_first(_frames(frames, self.channels, batch_first))).chunk(2, dim=-3)
        s = torch.zeros_like(g_in[0])
        v = torch.zeros_like(g_in[0])
        total = torch.zeros_like(g_in[0])
        for t in range(g_in.shape[0]):
            g_rec, c_rec = self.gate_conv(s).chunk(2, dim=-3)
            v, u, s = self.update(v, torch.sigmoid(g_in[t] + g_rec), c_in[t] + c_rec)
            total = total + u
        return total.unsqueeze(0)


class SamplerTrace(NamedTuple):
    """What one ARSNN walk did, per element [B, C, H, W] unless said otherwise.

    samples      [Ts, B, C, H, W], the adaptive frames (what forward returns)
    closed       number of samples closed by a spike (<= Ts)
    first_spike  index (0 = most recent bin) of the spike closing sample 1; Tm where none fired
    steps        number of bins walked before every element had Ts samples (<= Tm), an int
    """

    samples: torch.Tensor
    closed: torch.Tensor
    first_spike: torch.Tensor
    steps: int


class ARSNNSampler(_SpikingSampler):
    """ARSNN: spike-timed adaptive sampling with switches for SAT (`spike_attach`) and RPD (`write_zero`)."""

    def __init__(self, kernel_size: int = 5, channels: int = 2, depth: int = 2, Ts: int = 1,
                 spike_attach: bool = False, write_zero: bool = False, threshold: float = 1.0,
                 v_reset: float | None = 0.0):
        super().__init__(threshold, v_reset)
        self.channels = checks.positive_int("channels", channels)
        self.Ts = checks.positive_int("Ts", Ts)
        self.spike_attach = checks.flag("spike_attach", spike_attach)
        self.write_zero = checks.flag("write_zero", write_zero)
        depth = checks.positive_int("depth", depth)
        self.gate_conv = conv_stack(channels, 2 * channels, kernel_size, depth)
        self.input_conv = conv_stack(channels, 2 * channels, kernel_size, depth)
        _init_convs(self.input_conv, "orthogonal")
        _init_convs(self.gate_conv, "kaiming")

    def forward(self, frames: torch.Tensor, batch_first: bool = False) -> torch.Tensor:
        return self.trace(frames, batch_first).samples

    def trace(self, frames: torch.Tensor, batch_first: bool = False) -> SamplerTrace:
        """Walk the bins most recent first; return the samples and where the spikes fell."""
        f = _most_recent_first(_frames(frames, self.channels, batch_first))
        s = torch.zeros_like(f[0])
        v = torch.zeros_like(f[0])
        running = torch.zeros_like(f[0])          # sum of u since the last spike
        closed = torch.zeros_like(f[0], dtype=torch.long)
        first = torch.full_like(closed, f.shape[0])
        out = [torch.zeros_like(f[0]) for _ in range(self.Ts)]
        steps = 0
        for t in range(f.shape[0]):
            g_rec, c_rec = self.gate_conv(s).chunk(2, dim=-3)
            g_in, c_in = self.input_conv(f[t]).chunk(2, dim=-3)
            v, u, s = self.update(v, torch.sigmoid(g_in + g_rec), c_in + c_rec)
            running = running + u
            fired = s.bool()
            value = running * s if self.spike_attach else running
            for k in range(self.Ts):
                out[k] = torch.where(fired & (closed == k), value, out[k])
            first = torch.where(fired & (closed == 0), torch.full_like(first, t), first)
            closed = closed + (fired & (closed < self.Ts)).long()
            running = torch.where(fired, torch.zeros_like(running), running)
            steps = t + 1
            if int(closed.min()) >= self.Ts:
                break
        if not self.write_zero:
            open_ = ~s.bool()
            for k in range(self.Ts):
                out[k] = torch.where(open_ & (closed == k), running, out[k])
        return SamplerTrace(torch.stack(out), closed, first, steps)


SAMPLERS = {"count": CountSampler, "snn": LIFSampler, "rsnn": RSNNSampler, "arsnn": ARSNNSampler}


def build_sampler(kind: str, **kwargs) -> nn.Module:
    """A sampler by the authors' `embedding` name: count, snn, rsnn or arsnn (kwargs to its constructor)."""
    if kind not in SAMPLERS:
        raise ValueError(f"unknown sampler {kind!r}; choose one of {sorted(SAMPLERS)}")
    if kind == "count":
        kwargs = {k: v for k, v in kwargs.items() if k == "channels"}
    return SAMPLERS[kind](**kwargs)


def window_lengths(trace: SamplerTrace, n_bins: int) -> torch.Tensor:
    """Adaptive window length of the first sample per pixel [B, H, W], in bins counted from the most
    recent: first spike index + 1, the shortest over channels; n_bins (= Tm) where none fired (censored)."""
    return (trace.first_spike + 1).clamp(max=n_bins).amin(dim=1)
