"""Xu et al. 2025: skip recurrent connections (SRC) and adaptive skip spans (ASRC-SNN).

Paper: S. Xu, J. Zhang, Z. Wang, R. Jiang, R. Yan, H. Tang, "ASRC-SNN: Adaptive Skip Recurrent
Connection Spiking Neural Network", arXiv 2505.11455. Authors' code: github.com/dgxdn/ASRC-SNN
(model.py, neuron.py, main.py, load_dataset.py, commands.txt). Facts: shared/research/papers.md §5.

Shapes. Inputs are time-first `[T, B, features]`; every model returns its readout at every step,
`[T, B, classes]`. The prediction is the argmax of the readout summed over time, and the loss the
cross-entropy of that sum (`summed_cross_entropy`, `summed_accuracy`; `last=n` sums only the last
n steps, for the delayed-cue task).

One recurrent spiking layer l with hidden size H, input x[t], output spikes s[t] in {0, 1}^H:

    c[t] = Dropout(W_in x[t] + b_in)                 feed-forward current (one dropout mask per sequence)
    r[t] = recurrent input from the spike history    (below; s[t'] = 0 for t' < 0)
    I[t] = W_rec r[t] + c[t]                         W_rec: H x H, no bias, orthogonal init (gain 1)
    v[t] = decay * v[t-1] + I[t]                     LIF, decay 0.5, v[-1] = 0
    s[t] = 1 if v[t] - theta >= 0 else 0             theta = 1
    ds/dv ~ max(0, 1 - |v[t] - theta|)               triangle surrogate (snnlib Triangle(width=2))
    v[t] <- v[t] - theta * s[t]                      soft reset (hard_reset=True: v[t] <- v[t] (1 - s[t]))

    recurrence=None   (feed-forward SNN):   r[t] = 0, no W_rec
    recurrence="src", span k:               r[t] = s[t-k]            (k = 1: the vanilla RSNN)
    recurrence="asrc", max span K, logits alpha in R^K (init 0), temperature tau_s (init 1):
        training:   r[t] = sum_{j=1..K} p_j s[t-j],   p = softmax(alpha / tau_s)
        inference:  r[t] = s[t - j*],                 j* = argmax_j alpha_j  (first maximum on ties)
        after every epoch: tau_s <- de_tau * tau_s    (`anneal_temperature`)
        de_tau = 0.96 ** (200 / E) for a run of E epochs (`epoch_decay`): tau_s falls over any
        run as far as the authors' 0.96 per epoch over their 200 (0.96^200 ~ 2.8e-4)

Network: layers as above, one after another, then a linear readout z[t] = W_o s_L[t] + b_o at
every step; prediction argmax_c sum_t z[t, c]; loss CE(sum_t z[t], y). alpha is per layer, or one
alpha shared by every layer (network_wise=True, every layer with the same K); it gets its own
optimiser group (`make_optimizer`: lr_skip, no weight decay). Computing the whole sequence of one
layer before the next equals the authors' step-by-step loop over the stack (layer l at step t
reads only layer l-1 at steps <= t).

State. Each layer is a spikingjelly `MemoryModule`: its membrane (in `neuron`) and its last K
spike vectors (`history`) persist across calls, so a sequence may be fed in pieces;
`spikingjelly.activation_based.functional.reset_net(model)` clears both (the dropout mask too)
before the next sequence.

Following the authors' code (model.py, neuron.py, main.py) where the paper is silent:
  * the spike buffer holds s[t-1] .. s[t-K], most recent first, zeros before the sequence starts;
    SRC with span k reads its oldest entry; ASRC's p_j weighs s[t-j]; inference takes
    argmax(alpha), not argmax(alpha / tau_s) (the same index, tau_s > 0);
  * `span_mode` ("auto": soft when training, hard in eval mode) ties the mixture to the module's
    train/eval mode as the authors do; "soft" and "hard" force one, to measure the train-mode vs
    inference-mode gap without dropout;
  * the optimiser: weights (lr, weight decay) in one group, alpha (lr_skip, no weight decay) in
    another, both in one torch optimiser (equivalent to the authors' separate Adam/AdamW
    instances: every parameter keeps its own moments); OneCycleLR stepped once per epoch with
    total_steps = epochs, per group maximum lr (`make_scheduler`).
Departures, and why:
  * the temperature decay per epoch is derived from the epoch count, de_tau = 0.96 ** (200 / E)
    (`epoch_decay`), where the authors use 0.96 for every run. Over their 200 epochs the two are
    the same; over a short run a fixed 0.96 would leave the mixture far from one-hot, and any
    other fixed value (a faster one picked for a 14-epoch run made tau ~ 5e-8 and the mixture
    one-hot by epoch 3) couples the anneal to one epoch count. The anneal stays per epoch (not
    per step), as the authors', so the mixture is constant within an epoch;
  * the authors' options that none of their commands uses are left out: LayerNorm/BatchNorm
    models, PLIF/GLIF neurons, the exp/rectangle/sigmoid/multi-Gaussian surrogates;
  * their surrogate.py is not in the public snapshot we could read; the forward is taken to fire
    on v - theta >= 0 (the TET triangle their group's code derives from: input.ge(0)); the
    backward max(0, 1 - |v - theta|) is stated in papers.md §5.2. Only a membrane exactly on the
    threshold can differ;
  * the feed-forward current of a layer is computed for all steps in one matrix product (theirs:
    one per step) and the soft mixture by a memory-light autograd function (`span_mixture`,
    which saves references to the K spike tensors instead of a K x B x H copy per step); both
    compute the same sums, in the same order for the mixture, and can differ from the authors'
    only in the last float bit of the feed-forward product.

Fused path. A layer's whole sequence runs as one autograd Function (`_SkipRecurrence`) given
c [T, B, H], W_rec, the mixture weights p [K] (soft ASRC; else the lag k or j*) and the carried
membrane and last K spike vectors. Forward: one numba loop over t (`snnlib.methods._skip_loops`),
each step the product r[t] W_rec^T by the BLAS routine torch.mm itself calls on the CPU (torch's
exported sgemm_/dgemm_, with torch.mm's arguments, on one thread), then I, v, s and the reset with
the per-step path's floating-point operations in its order; the soft mixture r[t] is summed in
torch.sum's order (ATen's cascade: blocks of 16 terms), so the spikes are bit-identical to the
per-step path's. No Python runs per step and no [T, B, H] buffer is made but the spikes and H.
Saved for backward: H[t] = v[t] before the reset, 4 bytes per neuron-step in float32 (8 in
float64), plus W_rec, p and the K carried spike vectors; s and the slope are recomputed from H
(the per-step path saves ~11.6 bytes per neuron-step in float32, tests/test_fused_skip_recurrent.py).
Backward, one reverse numba loop over t, with G[t] = dL/dI[t]:

    G[t]      = dL/ds[t] g[t] + dL/dv[t] dv/dh[t],      g[t] = max(0, 1 - |H[t] - theta|)
    dv/dh[t]  = 1 - theta g[t] (soft) or 1 - s[t] - H[t] g[t] (hard); g -> 0 in it if detach_reset
    dL/dv[t-1] = decay G[t];   dL/dc[t] = G[t];   dL/dr[t] = G[t] W_rec
    dL/ds[t-j] += p_j dL/dr[t] (soft) or dL/ds[t-k] += dL/dr[t]; dL/dp_j = sum_t <dL/dr[t], s[t-j]>
    dL/dW_rec = sum_t G[t]^T r[t]   (one BLAS product per step, r recomputed from H)

where dL/ds[t] includes the later steps' use of s[t] by the time step t is reached: those uses
gather in a ring of K rows (row u mod K for s[u]), and a second ring holds s[t-1..t-K]
recomputed from H. Gradients reach the carried membrane and spike history (a state carried from
an earlier call keeps its graph, as in the per-step path). The per-step path runs instead under SNNLIB_FUSED=0
(`snnlib.neurons.fused_enabled`), off the CPU, in dtypes other than float32/float64, with a
surrogate other than snnlib's non-strict spiking Triangle, without numba or where torch's CPU
library exports no sgemm_/dgemm_, and for the soft mixture with K >= 256 or a step of B H
neurons not a multiple of 64 (ATen then sums some columns in other orders, and the spikes could
differ in the last bit of r).
"""

from __future__ import annotations

import contextlib
import functools
import numbers
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import base, functional, layer
from spikingjelly.activation_based.neuron import SimpleBaseNode
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.data import TensorDataset

from snnlib import neurons
from snnlib.checks import flag, positive_int, real, time_first
from snnlib.metrics import accuracy
from snnlib.surrogate import Triangle
from snnlib.training import evaluate, make_loader, one_torch_thread

__all__ = [
    "RECURRENCES",
    "SPAN_MODES",
    "SkipLIFNode",
    "SkipRecurrentLayer",
    "SkipRecurrentSNN",
    "accuracy_under_noise",
    "anneal_temperature",
    "chosen_spans",
    "convert_authors_state_dict",
    "delayed_cue_task",
    "epoch_decay",
    "input_gradient_norms",
    "make_optimizer",
    "make_scheduler",
    "pixel_permutation",
    "sequential_mnist",
    "span_distributions",
    "span_mixture",
    "span_parameters",
    "summed_accuracy",
    "summed_cross_entropy",
    "use_span_mode",
]

RECURRENCES = (None, "src", "asrc")
"""None: feed-forward SNN; "src": skip span k (k = 1: vanilla RSNN); "asrc": learnable span 1..K."""
SPAN_MODES = ("auto", "soft", "hard")
"""ASRC recurrent input: "auto" (soft in train mode, hard in eval mode), or always soft / hard."""


# --------------------------------------------------------------------------- argument checks


# How to mend a wrongly shaped input: the end of its error message (snnlib.checks.time_first).
_SEQUENCE_HINT = "move time to the front (x.movedim(1, 0) for [B, T, features] batches)"


# --------------------------------------------------------------------------- the soft span mixture


class _SpanMixture(torch.autograd.Function):
    """r = sum_j p[j] * s_j over the K history tensors s_j (s_1 = most recent); saves references only."""

    @staticmethod
    def forward(ctx, weights, *history):
        ctx.save_for_backward(weights, *history)
        return (weights.view(-1, *([1] * history[0].dim())) * torch.stack(history)).sum(0)

    @staticmethod
    def backward(ctx, grad):
        weights, *history = ctx.saved_tensors
        grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_weights = (torch.stack(history) * grad).flatten(1).sum(1)
        grad_history = (weights.view(-1, *([1] * grad.dim())) * grad).unbind(0)
        return (grad_weights, *(g if needed else None for g, needed in zip(grad_history, ctx.needs_input_grad[1:])))


def span_mixture(weights: torch.Tensor, history: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum_j weights[j] * history[j]: the ASRC soft recurrent input, history most recent first.

    `weights` has shape [K] (the span probabilities), `history` holds K tensors of one shape.
    Same value as `(weights[:, None, None] * torch.stack(history)).sum(0)`, but the backward
    keeps references to the K tensors instead of a stacked copy per call.
    """
    if weights.dim() != 1 or len(history) != weights.shape[0]:
        raise ValueError(f"need one weight per history tensor, got {tuple(weights.shape)} and {len(history)}")
    return _SpanMixture.apply(weights, *history)


# --------------------------------------------------------------------------- the fused layer


@functools.cache
def _kernels():
    """(forward loop, backward loop) compiled by numba (`snnlib.methods._skip_loops`), or None
    without numba or without torch's BLAS routines."""
    try:
        from snnlib.methods import _skip_loops
    except ImportError:
        return None
    return _skip_loops.forward, _skip_loops.backward


@dataclass(frozen=True)
class _Spec:
    """What the fused loops need besides the tensors: the recurrence (`lag` for one past spike vector,
    else the mixture weights are given) and the neuron, `constants` = [decay, theta, 2 / width]."""

    lag: int
    hard: bool
    detach: bool
    constants: np.ndarray


def _rows(tensor, size: int, like: torch.Tensor) -> np.ndarray:
    """`tensor` (None: an empty one) as a C-contiguous numpy array of rows of `size` elements."""
    if tensor is None:
        return np.empty((0, size), neurons._NUMPY_TYPES[like.dtype])
    return tensor.detach().contiguous().view(-1, size).numpy()


def _fused_forward(spec: _Spec, current, weight, mixture, v, past, keep_h: bool):
    """The forward loop: (spikes [T, B, H], final v [B, H], H [T, B, H] or its last step).

    past [K, B, H] holds the K carried spike vectors, oldest first: past[K - j] = S[-j].
    """
    steps, size = current.shape[0], current[0].numel()
    c = current.detach().contiguous()
    spikes = torch.empty_like(c)
    h = torch.empty_like(c) if keep_h else c.new_empty((1, *c.shape[1:]))
    state = v.detach().clone(memory_format=torch.contiguous_format)
    width = 0 if weight is None else weight.shape[0]
    with one_torch_thread():  # the BLAS called per step: one thread (the per-step path's, same bits)
        _kernels()[0](c.view(steps, size).numpy(), _rows(weight, width, c), _rows(mixture, 1, c).reshape(-1),
                      spec.lag, state.view(-1).numpy(), _rows(past, size, c), spikes.view(steps, size).numpy(),
                      h.view(h.shape[0], size).numpy(), spec.constants, spec.hard)
    return spikes, state, h


class _SkipRecurrence(torch.autograd.Function):
    """A whole layer over the sequence: forward(current, weight, mixture, v, past, spec) -> (spikes, final v).

    Saves H [T, B, H] only (and the [H, H], [K] and [K, B, H] inputs); the spikes are recomputed
    from it. Backward: one reverse loop over t in numba, per step dL/dr = G W, its scatter to the
    K earlier spike vectors and dL/dW += G^T r.
    """

    @staticmethod
    def forward(ctx, current, weight, mixture, v, past, spec):
        spikes, state, h = _fused_forward(spec, current, weight, mixture, v, past, keep_h=True)
        ctx.spec = spec
        ctx.save_for_backward(h, weight, mixture, past)
        ctx.set_materialize_grads(False)
        return spikes, state

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes, grad_v):
        h, weight, mixture, past = ctx.saved_tensors
        spec, (steps, size) = ctx.spec, (h.shape[0], h[0].numel())
        span = 1 if past is None else past.shape[0]
        grad_spikes = torch.zeros_like(h) if grad_spikes is None else grad_spikes.contiguous()
        carry = h.new_zeros(size) if grad_v is None else grad_v.reshape(-1).clone()
        grad_current = torch.empty_like(h)  # dL/dI[t] = dL/dc[t]
        width = 0 if weight is None else weight.shape[0]
        grad_weight = None if weight is None else h.new_zeros(weight.shape)
        products = h.new_zeros((0 if mixture is None else span, size))  # dL/dp_j per neuron
        pending, recent = h.new_zeros((span, size)), h.new_empty((span, size))
        with one_torch_thread():
            _kernels()[1](h.view(steps, size).numpy(), grad_spikes.view(steps, size).numpy(), carry.numpy(),
                          grad_current.view(steps, size).numpy(), _rows(weight, width, h),
                          _rows(grad_weight, width, h), _rows(mixture, 1, h).reshape(-1), products.numpy(), spec.lag,
                          _rows(past, size, h), pending.numpy(), recent.numpy(), spec.constants, spec.hard, spec.detach)
        grad_mixture = None if mixture is None else products.sum(1, dtype=torch.float64).to(mixture.dtype)
        return (grad_current, grad_weight if ctx.needs_input_grad[1] else None, grad_mixture, carry.view(h.shape[1:]),
                None if past is None else pending.view(past.shape), None)


def _run_layer(spec: _Spec, current, weight, mixture, v, past):
    """(spikes [T, B, H], final v [B, H]) of one layer: through `_SkipRecurrence` when a gradient is
    needed, else the forward loop alone (nothing kept)."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (current, weight, mixture, v, past)):
        return _SkipRecurrence.apply(current, weight, mixture, v, past, spec)
    return _fused_forward(spec, current, weight, mixture, v, past, keep_h=False)[:2]


# --------------------------------------------------------------------------- neuron and layer


class SkipLIFNode(SimpleBaseNode):
    """The authors' LIF neuron: v = decay * v + x;  s = (v - v_threshold >= 0);  soft or hard reset.

    A spikingjelly `SimpleBaseNode` (single-step, `[B, H]` per call) firing with
    `Triangle(width=2)` (surrogate max(0, 1 - |v - v_threshold|)). Soft reset: v -= v_threshold * s;
    hard reset: v = v (1 - s). Written as decay * v rather than spikingjelly LIFNode's
    v - v / tau so that any decay matches the authors' arithmetic bit for bit. `SkipRecurrentLayer`
    steps it on its per-step path; its fused path applies the same operations in numba.
    """

    def __init__(self, decay: float = 0.5, v_threshold: float = 1.0, hard_reset: bool = False,
                 detach_reset: bool = False):
        super().__init__(
            v_threshold=real("v_threshold", v_threshold),
            v_reset=0.0 if flag("hard_reset", hard_reset) else None,
            surrogate_function=Triangle(width=2.0),
            detach_reset=flag("detach_reset", detach_reset),
            step_mode="s",
        )
        self.decay = real("decay", decay, 0.0, 1.0)

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v * self.decay + x

    def extra_repr(self) -> str:
        return (f"decay={self.decay}, v_threshold={self.v_threshold}, hard_reset={self.v_reset is not None}, "
                f"detach_reset={self.detach_reset}")


class SkipRecurrentLayer(base.MemoryModule):
    """One spiking layer with a feed-forward input and an (adaptive) skip recurrent connection.

    `[T, B, in_features]` -> spikes `[T, B, hidden]` (equations in the module docstring).
    recurrence None | "src" | "asrc"; `span` is k for SRC and the maximum span K for ASRC.
    For ASRC, `alpha` (shape [K], init 0) may be passed in to share it between layers; `tau`
    (a buffer, init 1) is divided into it and multiplied by `de_tau` by `anneal()`.
    Runs fused (one autograd Function over the sequence, see the module docstring) where it
    can, else step by step with `SkipLIFNode`; both give the same spikes.
    """

    def __init__(self, in_features: int, hidden: int, *, recurrence: str | None = "src", span: int = 1,
                 bias: bool = False, dropout: float = 0.0, decay: float = 0.5, v_threshold: float = 1.0,
                 hard_reset: bool = False, detach_reset: bool = False, de_tau: float = 0.96,
                 alpha: nn.Parameter | None = None):
        super().__init__()
        if recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {recurrence!r}")
        self.in_features = positive_int("in_features", in_features)
        self.hidden = positive_int("hidden", hidden)
        self.recurrence = recurrence
        self.span = positive_int("span", span) if recurrence else 0
        self.input = nn.Linear(self.in_features, self.hidden, bias=flag("bias", bias))
        p = real("dropout", dropout, 0.0, 0.99)
        self.dropout = layer.Dropout(p, step_mode="m") if p > 0 else nn.Identity()
        self.neuron = SkipLIFNode(decay, v_threshold, hard_reset, detach_reset)
        self.span_mode = "auto"
        if recurrence:
            self.recurrent = nn.Linear(self.hidden, self.hidden, bias=False)
            nn.init.orthogonal_(self.recurrent.weight, gain=1.0)
        if recurrence == "asrc":
            self.de_tau = real("de_tau", de_tau, 0.0, 1.0)
            if alpha is None:
                alpha = nn.Parameter(torch.zeros(self.span))
            elif not isinstance(alpha, nn.Parameter) or tuple(alpha.shape) != (self.span,):
                raise ValueError(f"a shared alpha must be an nn.Parameter of shape ({self.span},), got "
                                 f"{getattr(alpha, 'shape', alpha)!r}: give every layer the same span")
            self.alpha = alpha
            self.register_buffer("tau", torch.ones(()))
        elif alpha is not None:
            raise ValueError("alpha (span logits) only applies to recurrence='asrc'")
        self.register_memory("history", None)

    @property
    def span_mode(self) -> str:
        return self._span_mode

    @span_mode.setter
    def span_mode(self, mode: str) -> None:
        if mode not in SPAN_MODES:
            raise ValueError(f"span_mode must be one of {SPAN_MODES}, got {mode!r}")
        self._span_mode = mode

    def span_probabilities(self) -> torch.Tensor:
        """softmax(alpha / tau) over spans 1..K (ASRC only), shape [K]."""
        if self.recurrence != "asrc":
            raise ValueError(f"span probabilities exist only for recurrence='asrc', not {self.recurrence!r}")
        return F.softmax(self.alpha / self.tau, dim=0)

    def chosen_span(self) -> int:
        """The span used at inference: k for SRC, 1 + argmax(alpha) for ASRC, 0 without recurrence."""
        if self.recurrence == "asrc":
            return int(torch.argmax(self.alpha)) + 1
        return self.span

    @torch.no_grad()
    def anneal(self) -> None:
        """tau <- de_tau * tau (ASRC; the authors call it once per epoch)."""
        if self.recurrence == "asrc":
            self.tau.mul_(self.de_tau)

    def _uses_mixture(self) -> bool:
        """True when r[t] is ASRC's soft mixture, False when it is one past spike vector."""
        soft = self.span_mode == "soft" or (self.span_mode == "auto" and self.training)
        return self.recurrence == "asrc" and soft

    def _fused(self, current: torch.Tensor) -> bool:
        """True when this call runs as one `_SkipRecurrence` (see the module docstring)."""
        surrogate = self.neuron.surrogate_function
        return (neurons.fused_enabled(surrogate) and type(surrogate) is Triangle and surrogate.spiking
                and not surrogate.strict and current.device.type == "cpu" and current.dtype in neurons._NUMPY_TYPES
                and (not self._uses_mixture() or (self.span < 256 and current[0].numel() % 64 == 0))
                and _kernels() is not None)

    def _past(self, current: torch.Tensor) -> list[torch.Tensor]:
        """The last K spike vectors, oldest first (zeros before the first call)."""
        past = list(self.history) if self.history is not None else [current.new_zeros(current.shape[1:])] * self.span
        if past and past[0].shape != current.shape[1:]:
            raise ValueError(f"batch shape {tuple(current.shape[1:])} differs from the stored history "
                             f"{tuple(past[0].shape)}: call functional.reset_net(model) between sequences")
        return past

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.in_features, _SEQUENCE_HINT)
        current = self.dropout(self.input(x_seq))
        return self._forward_fused(current) if self._fused(current) else self._forward_per_step(current)

    def _forward_per_step(self, current: torch.Tensor) -> torch.Tensor:
        if self.recurrence is None:
            return torch.stack([self.neuron(c) for c in current])  # iterating unbinds: O(T) backward
        past = self._past(current)
        weights = self.span_probabilities() if self._uses_mixture() else None
        lag = self.chosen_span()
        spikes = []
        for c in current:  # past is oldest first: past[-j] = s[t-j]
            r = span_mixture(weights, past[: -self.span - 1 : -1]) if weights is not None else past[-lag]
            spike = self.neuron(self.recurrent(r) + c)
            past.append(spike)
            spikes.append(spike)
        self.history = past[-self.span :]
        return torch.stack(spikes)

    def _forward_fused(self, current: torch.Tensor) -> torch.Tensor:
        v = self.neuron.v
        if isinstance(v, float):
            v = current.new_full(current.shape[1:], v)
        elif v.shape != current.shape[1:]:
            raise ValueError(f"batch shape {tuple(current.shape[1:])} differs from the stored membrane "
                             f"{tuple(v.shape)}: call functional.reset_net(model) between sequences")
        past = self._past(current)
        weights = self.span_probabilities() if self._uses_mixture() else None
        constants = [self.neuron.decay, self.neuron.v_threshold, 2 / self.neuron.surrogate_function.width]
        spec = _Spec(self.chosen_span(), self.neuron.v_reset is not None, self.neuron.detach_reset,
                     np.array(constants, neurons._NUMPY_TYPES[current.dtype]))
        weight = self.recurrent.weight if self.recurrence else None
        spikes, self.neuron.v = _run_layer(spec, current, weight, weights, v, torch.stack(past) if past else None)
        if past:
            self.history = (past + list(spikes[-self.span :].unbind(0)))[-self.span :]
        return spikes

    def extra_repr(self) -> str:
        return f"recurrence={self.recurrence!r}, span={self.span}, span_mode={self.span_mode!r}"


class SkipRecurrentSNN(nn.Module):
    """The ASRC-SNN / SRC-SNN / vanilla RSNN / feed-forward SNN classifier of the authors' MODEL.

    `[T, B, input_size]` -> readout `[T, B, classes]` (sum over time for the class scores).
    `spans`: an int for every layer or one per layer (k for SRC, K for ASRC; ignored with
    recurrence None). network_wise=True shares one alpha (attribute `alpha`) between all layers.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], classes: int, *,
                 recurrence: str | None = "src", spans: int | Sequence[int] = 1, bias: bool = True,
                 dropout: float = 0.0, decay: float = 0.5, v_threshold: float = 1.0, hard_reset: bool = False,
                 detach_reset: bool = False, de_tau: float = 0.96, network_wise: bool = False):
        super().__init__()
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence) or not hidden_sizes:
            raise TypeError(f"hidden_sizes must be a non-empty list of positive ints, got {hidden_sizes!r}")
        sizes = [positive_int("every hidden size", h) for h in hidden_sizes]
        if isinstance(spans, numbers.Integral) and not isinstance(spans, bool):
            spans = [int(spans)] * len(sizes)
        if not isinstance(spans, Sequence) or len(spans) != len(sizes):
            raise ValueError(f"spans must be an int or one int per layer ({len(sizes)}), got {spans!r}")
        self.input_size = positive_int("input_size", input_size)
        self.network_wise = flag("network_wise", network_wise)
        if network_wise:
            if recurrence != "asrc":
                raise ValueError("network_wise shares ASRC's span logits: it needs recurrence='asrc'")
            if len(set(spans)) != 1:
                raise ValueError(f"network_wise needs the same maximum span in every layer, got {list(spans)}")
            self.alpha = nn.Parameter(torch.zeros(positive_int("span", spans[0])))
        shared = self.alpha if network_wise else None
        self.layers = nn.ModuleList()
        width = self.input_size
        for hidden, span in zip(sizes, spans):
            self.layers.append(SkipRecurrentLayer(
                width, hidden, recurrence=recurrence, span=span, bias=bias, dropout=dropout, decay=decay,
                v_threshold=v_threshold, hard_reset=hard_reset, detach_reset=detach_reset, de_tau=de_tau,
                alpha=shared))
            width = hidden
        self.readout = nn.Linear(width, positive_int("classes", classes), bias=flag("bias", bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time_first(x, self.input_size, _SEQUENCE_HINT)
        for lyr in self.layers:
            x = lyr(x)
        return self.readout(x)


# --------------------------------------------------------------------------- spans, temperature, optimiser


def _asrc_layers(model: nn.Module) -> list[SkipRecurrentLayer]:
    return [m for m in model.modules() if isinstance(m, SkipRecurrentLayer) and m.recurrence == "asrc"]


def span_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every ASRC span-logit tensor alpha of `model`, each once (a shared alpha counts once)."""
    found = []
    for lyr in _asrc_layers(model):
        if all(lyr.alpha is not p for p in found):
            found.append(lyr.alpha)
    return found


@torch.no_grad()
def span_distributions(model: nn.Module) -> list[np.ndarray]:
    """softmax(alpha / tau) of every ASRC layer, in order (numpy arrays of length K)."""
    return [lyr.span_probabilities().cpu().numpy() for lyr in _asrc_layers(model)]


def chosen_spans(model: nn.Module) -> list[int]:
    """The inference span of every recurrent layer (k for SRC, 1 + argmax alpha for ASRC)."""
    return [m.chosen_span() for m in model.modules() if isinstance(m, SkipRecurrentLayer) and m.recurrence]


def epoch_decay(epochs: int, *, reference_decay: float = 0.96, reference_epochs: int = 200) -> float:
    """The per-epoch temperature decay de_tau for a run of `epochs` epochs: reference_decay ** (reference_epochs / epochs).

    After `epochs` anneals tau_s has fallen to reference_decay ** reference_epochs, as far as
    the authors' 0.96 per epoch over their 200 epochs (~2.8e-4), whatever the run's length.
    """
    epochs = positive_int("epochs", epochs)
    rate = real("reference_decay", reference_decay, 0.0, 1.0, open_low=True, open_high=True)
    return rate ** (positive_int("reference_epochs", reference_epochs) / epochs)


def anneal_temperature(model: nn.Module) -> list[float]:
    """tau <- de_tau * tau in every ASRC layer (once per epoch); returns the new temperatures."""
    layers = _asrc_layers(model)
    for lyr in layers:
        lyr.anneal()
    return [float(lyr.tau) for lyr in layers]


@contextlib.contextmanager
def use_span_mode(model: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Within the block every ASRC layer uses `mode` ("soft", "hard" or "auto"); restored after."""
    layers = _asrc_layers(model)
    saved = [lyr.span_mode for lyr in layers]
    try:
        for lyr in layers:
            lyr.span_mode = mode
        yield model
    finally:
        for lyr, old in zip(layers, saved):
            lyr.span_mode = old


def make_optimizer(model: nn.Module, *, kind: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                   lr_skip: float = 0.1) -> torch.optim.Optimizer:
    """The authors' optimiser: group 0 every weight (lr, weight_decay), group 1 the span logits
    alpha (lr_skip, no weight decay; absent without ASRC). kind: "adam", "adamw" or "sgd"."""
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    if kind not in classes:
        raise ValueError(f"kind must be one of {sorted(classes)}, got {kind!r}")
    spans = span_parameters(model)
    weights = [p for p in model.parameters() if all(p is not a for a in spans)]
    groups = [{"params": weights, "lr": real("lr", lr, 0.0), "weight_decay": real("weight_decay", weight_decay, 0.0)}]
    if spans:
        groups.append({"params": spans, "lr": real("lr_skip", lr_skip, 0.0), "weight_decay": 0.0})
    return classes[kind](groups)


def make_scheduler(optimizer: torch.optim.Optimizer, kind: str | None, epochs: int):
    """The authors' schedulers, stepped once per epoch: "onecycle" (OneCycleLR, every group's
    max_lr its lr, total_steps=epochs), "cos" (CosineAnnealingLR, T_max=epochs) or None."""
    epochs = positive_int("epochs", epochs)
    if kind is None:
        return None
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=epochs)
    if kind == "cos":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"scheduler kind must be 'onecycle', 'cos' or None, got {kind!r}")


# --------------------------------------------------------------------------- the authors' weights


def convert_authors_state_dict(state_dict: Mapping[str, torch.Tensor], model: SkipRecurrentSNN) -> dict:
    """The weights of the authors' `MODEL` (model.py, no layer norm) as a state dict for `model`.

    Their `features` is [Linear, Dropout, container] per layer, then the readout Linear: layer i's
    input is features.{3i}, its recurrent weight features.{3i+2}.mlp.weight, its span logits
    features.{3i+2}.skip_para (shape [K, 1, 1]) and temperature features.{3i+2}.tau (shape [1]);
    the readout is features.{3L}; a network-wise alpha is also stored as skip_para. Load the
    result with `model.load_state_dict(...)`; raises ValueError for keys or shapes that differ.
    """
    names = {"skip_para": "alpha"}
    for i in range(len(model.layers)):
        names.update({f"features.{3 * i}.weight": f"layers.{i}.input.weight",
                      f"features.{3 * i}.bias": f"layers.{i}.input.bias",
                      f"features.{3 * i + 2}.mlp.weight": f"layers.{i}.recurrent.weight",
                      f"features.{3 * i + 2}.skip_para": f"layers.{i}.alpha",
                      f"features.{3 * i + 2}.tau": f"layers.{i}.tau"})
    last = 3 * len(model.layers)
    names.update({f"features.{last}.weight": "readout.weight", f"features.{last}.bias": "readout.bias"})
    ours = model.state_dict()
    converted = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key not in names or names[key] not in ours:
            raise ValueError(f"the authors' state dict has {key!r}, which this {type(model).__name__} "
                             "does not have: build it with the same layers, recurrence and bias")
        target = names[key]
        if value.numel() != ours[target].numel():
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {target} {tuple(ours[target].shape)}")
        converted[target] = value.reshape(ours[target].shape)
    missing = sorted(set(ours) - set(converted))
    if missing:
        raise ValueError(f"the authors' state dict lacks {missing}: was it saved from the same configuration?")
    return converted


# --------------------------------------------------------------------------- losses and metrics


def _summed(outputs: torch.Tensor, last: int | None) -> torch.Tensor:
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3:
        raise ValueError(f"expected time-first outputs [T, B, classes], got {getattr(outputs, 'shape', outputs)!r}")
    if last is not None:
        outputs = outputs[-positive_int("last", last):]
    return outputs.sum(dim=0)


def summed_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor, last: int | None = None) -> torch.Tensor:
    """Cross-entropy of the readout summed over time (over the last `last` steps if given)."""
    return F.cross_entropy(_summed(outputs, last), labels)


def summed_accuracy(outputs: torch.Tensor, labels: torch.Tensor, last: int | None = None) -> float:
    """Fraction of samples whose time-summed readout (last `last` steps if given) peaks at the label."""
    return accuracy(_summed(outputs, last), labels)


def input_gradient_norms(model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                         loss_fn=summed_cross_entropy) -> torch.Tensor:
    """||dL/dx[t]||_2 for every step t of a time-first batch x `[T, B, D]` (norm over B and D), `[T]`.

    Runs in the model's current train/eval and span mode; the model is reset first and after,
    and the parameters' .grad are left untouched. Plot against the lag T - 1 - t.
    """
    x = x.detach().clone().requires_grad_(True)
    functional.reset_net(model)
    loss = loss_fn(model(x), labels)
    (grad,) = torch.autograd.grad(loss, x)
    functional.reset_net(model)
    return grad.flatten(1).norm(dim=1)


@torch.no_grad()
def accuracy_under_noise(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, sigmas: Sequence[float], *,
                         seed: int = 0, batch_size: int = 256, accuracy_fn=summed_accuracy) -> list[float]:
    """Accuracy on `x + sigma * N(0, 1)` for every sigma, x time-first `[T, N, D]`, by `snnlib.training.evaluate`.

    The noise comes from a torch.Generator seeded with `seed` (the same draw for every sigma,
    scaled). Batches of `batch_size` samples in order; the model's train/eval mode is restored.
    """
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 3):
        raise ValueError(f"expected a time-first float tensor [T, N, D], got {getattr(x, 'shape', x)!r}")
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(x.device, x.dtype)
    results = []
    for sigma in sigmas:
        noisy = (x + real("sigma", sigma, 0.0) * noise).movedim(1, 0)  # sample-first, as a data set holds it
        loader = make_loader(TensorDataset(noisy, labels), batch_size, shuffle=False)
        results.append(evaluate(model, loader, device=x.device, accuracy_fn=accuracy_fn)["accuracy"])
    return results


# --------------------------------------------------------------------------- data


def pixel_permutation(seed: int, n_pixels: int = 784) -> torch.Tensor:
    """A fixed random order of the pixels (permuted sequential MNIST), from a seeded torch.Generator."""
    return torch.randperm(positive_int("n_pixels", n_pixels), generator=torch.Generator().manual_seed(seed))


def sequential_mnist(images, permutation: torch.Tensor | None = None) -> torch.Tensor:
    """MNIST images `[N, 28, 28]` (uint8 0..255 or float 0..1) -> `[N, 784, 1]` float pixel sequences.

    One pixel per step in row-major order (the authors' view(-1, 784, 1) of ToTensor images, so
    uint8 values are divided by 255), reordered by `permutation` (PS-MNIST) if given. Samples are
    sample-first, as a Dataset stores them; fit moves time to the front of each batch.
    """
    images = torch.as_tensor(images)
    if images.dim() != 3:
        raise ValueError(f"expected images [N, H, W], got shape {tuple(images.shape)}")
    seq = images.reshape(len(images), -1, 1)
    seq = seq.float() / 255.0 if images.dtype == torch.uint8 else seq.float()
    if permutation is not None:
        if sorted(permutation.tolist()) != list(range(seq.shape[1])):
            raise ValueError(f"permutation must reorder all {seq.shape[1]} pixels exactly once")
        seq = seq[:, permutation]
    return seq


def delayed_cue_task(n_samples: int, delay: int, *, classes: int = 4, cue_steps: int = 10, recall_steps: int = 10,
                     channels_per_class: int = 4, cue_rate: float = 0.5, noise_rate: float = 0.02,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A long-memory task: the class is shown at the start, asked for at the end.

    Returns x `[N, T, D]` (spikes, float) and labels `[N]`, T = cue_steps + delay + recall_steps,
    D = (classes + 1) * channels_per_class. During the first cue_steps steps the label's group of
    channels fires with probability cue_rate per step; during the last recall_steps steps the
    recall group (the last channels) fires with cue_rate; every channel also fires with
    noise_rate at every step. Score the readout over the last recall_steps steps only
    (`summed_cross_entropy(..., last=recall_steps)`), so the class must be held for `delay` steps.
    Labels are balanced (cycled, then shuffled); everything comes from a numpy Generator(seed).
    """
    n = positive_int("n_samples", n_samples)
    delay = int(real("delay", delay, 0))
    classes, group = positive_int("classes", classes), positive_int("channels_per_class", channels_per_class)
    cue, recall = positive_int("cue_steps", cue_steps), positive_int("recall_steps", recall_steps)
    cue_rate, noise_rate = real("cue_rate", cue_rate, 0, 1), real("noise_rate", noise_rate, 0, 1)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % classes)
    steps, channels = cue + delay + recall, (classes + 1) * group
    x = rng.random((n, steps, channels)) < noise_rate
    rows = np.arange(n)[:, None, None]
    cue_channels = labels[:, None, None] * group + np.arange(group)[None, None, :]
    x[rows, np.arange(cue)[None, :, None], cue_channels] |= rng.random((n, cue, group)) < cue_rate
    x[:, steps - recall:, classes * group:] |= rng.random((n, recall, group)) < cue_rate
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))
