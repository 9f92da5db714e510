"""Spiking neurons: LIF, PLIF and IF on spikingjelly 2.0, and a bridge to snntorch's Leaky.

Shapes. Every tensor that carries time is time-first, `[T, B, ...]` (spikingjelly's multi-step
mode, `step_mode='m'`, the default here). In single-step mode (`step_mode='s'`) a neuron takes
one step `[B, ...]` per call and keeps its state between calls. Reset the state between samples
with `spikingjelly.activation_based.functional.reset_net(net)`.

Dynamics (spikingjelly's charge / fire / reset, per time step t; V[-1] = V_reset, or 0 for a
soft reset; V_reset written as 0 when v_reset=None):

    charge  LIF, decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
            LIF, decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
            PLIF:                    the same with 1/tau = sigmoid(w), w a learnable scalar
            IF:                      H[t] = V[t-1] + X[t]
    fire    S[t] = Theta(H[t] - V_threshold),  Theta(x) = 1 if x >= 0 else 0
    reset   hard (v_reset a float):  V[t] = H[t] * (1 - S[t]) + V_reset * S[t]
            soft (v_reset=None):     V[t] = H[t] - V_threshold * S[t]

So with decay factor k = 1 - 1/tau and V_reset = 0, the LIF is V <- k V + X (decay_input=False)
or V <- k V + X / tau (decay_input=True). A paper's decay factor k maps to tau = 1 / (1 - k).
The backward pass replaces dTheta/dx by the surrogate derivative of `surrogate_function`
(default: a fresh `snnlib.surrogate.ArcTan()` per neuron). `detach_reset=True` keeps the reset
out of the graph (S in the reset equation is treated as a constant). `store_v_seq=True` keeps
the post-reset V[t] of the last multi-step call in `v_seq`, `[T, B, ...]`.
The MPD-AGL paper's PLIF, u[t] = sigmoid(a) u[t-1] (1 - s[t-1]) + I[t], is `PLIFNode` with
decay_input=False, v_reset=0.0 and w = -a; spikingjelly's decay_input=True also scales the input.

Firing at exactly the threshold. spikingjelly (and snnlib.surrogate) fire when H >= V_threshold;
snntorch's surrogates and He et al. 2020 fire when mem > threshold. The two agree except where
the membrane lands exactly on the threshold. snntorch fires through its `spike_grad`, so giving
an snnlib surrogate as `spike_grad` makes snntorch fire on >= too.

snntorch's Leaky (1.0.0). With the previous membrane m[t-1], beta clamped to [0, 1], and
R[t] = spike_grad(m[t-1] - threshold), detached (the spike of the previous step):

    "subtract":  m[t] = beta m[t-1] + X[t] - threshold R[t]
    "zero":      m[t] = beta (1 - R[t]) m[t-1] + X[t]
    fire:        S[t] = spike_grad(m[t] - threshold)
    reset_delay=False then resets at once, in the graph: m[t] -= (S[t] - R[t]) * threshold
                 ("subtract") or m[t] -= (S[t] - R[t]) * m[t] ("zero").

Equivalences, with beta = 1 - 1/tau and the snntorch input scaled by 1/tau when decay_input=True
(`leaky_for_lif` / `lif_for_leaky` build them and refuse the rest):

    spikingjelly                     snntorch Leaky                     snntorch mem is
    hard, v_reset=0, detached        "zero", reset_delay=True           H[t] (before reset)
    hard, v_reset=0, not detached    "zero", reset_delay=False          V[t] (after reset)
    soft, not detached               "subtract", reset_delay=False      V[t], while V[t] < threshold
    soft, detached                   no match: snntorch's subtraction is in the graph or delayed
    no match                         "subtract", reset_delay=True: it subtracts the threshold after
                                     the leak; spikingjelly's reset, before the leak, takes
                                     beta * threshold off the next membrane
    no match                         "none": never resets

The two "zero" rows give the same spikes; they differ in the reset gradient and in what mem holds.
The soft-reset match holds as long as no membrane stays at or above threshold after its reset
(i.e. H[t] < 2 V_threshold): snntorch recomputes R[t] from the stored, already reset m[t-1] and
would subtract the threshold again before firing. A v_reset other than 0 has no match (snntorch
starts at and resets to 0). The thresholds must be positive. Spikes agree exactly, up to the
firing-at-threshold convention above; the spike gradients agree when both use the same surrogate.

Fused multi-step path. In multi-step mode LIFNode, PLIFNode and IFNode do not build a graph per
time step: one autograd Function runs the whole sequence. Its forward pass applies, per step,
exactly spikingjelly's floating-point operations in spikingjelly's order (so spikes, V and v_seq
are bit-identical to spikingjelly's), writing H[t] into one [T, B, ...] buffer. That buffer is
the only [T, B, ...] tensor saved for backward (plus V[-1], [B, ...], for PLIF); nothing else of
the forward pass is kept. The backward pass walks time once in reverse. With G[t] = dL/dH[t],

    G[t]   = dL/dS[t] g'(H[t] - V_th) + dL/dV[t] dV[t]/dH[t]   (direct terms: spikes, v_seq, final v)
           + G[t+1] k dV[t]/dH[t]                            (through the next step)
    dV/dH  = 1 - S + (V_reset - H) g'   (hard)   or   1 - V_th g'   (soft);   1 - S or 1 if detach_reset
    dL/dX[t] = a G[t],   dL/dV[-1] = k G[0],   k = dH/dV = 1 - 1/tau, a = dH/dX = 1/tau or 1
               (PLIF: 1 - sigmoid(w) and sigmoid(w) or 1; IF: k = a = 1; decay factor: k = beta, a = 1)
    PLIF:    dL/dw = sigmoid'(w) sum_t G[t] dH[t]/dq,  dH/dq = (H[t] - V[t-1]) / q  (decay_input)
                                                          or V_reset - V[t-1],  q = sigmoid(w)
    decay factor:  dL/dbeta = sum_t G[t] V[t-1]

where S and V[t-1] are recomputed from the saved H, and the arithmetic is in the input's dtype.
Three back ends run these loops, with the same results:
- CPU, float32/float64, spiking surrogate: two numba kernels (compiled on first use, cached in
  __pycache__), one pass over memory each way, vectorised over neurons; large layers are split
  over torch.get_num_threads() threads. The backward kernel evaluates ArcTan, Rectangle and
  Triangle itself; any other surrogate (Sigmoid, a user's subclass) through its own `derivative`
  on blocks of time steps.
- CUDA, float32/float64, spiking surrogate: the same two loops as Triton kernels
  (`snnlib.triton_neurons`, same operations in the same order, one program per block of neurons).
- anywhere else (float16, a non-spiking surrogate, numba or triton missing): PyTorch calls, per step
  spikingjelly's operations in place; backward, all but the G recursion vectorised over blocks of
  time steps, so that the reverse loop costs one multiply-add per step.
A fourth form, the decay-factor LIF of He et al. 2020 and MPD-AGL (Jiang et al. 2025), runs on the
same kernels through `fused_decay_lif`: H[t] = V[t-1] * beta + X[t] (beta a float or a 0-dim tensor,
learnable, e.g. sigmoid(w)), hard reset to 0 in the graph, strict or non-strict firing, and
optionally a surrogate width per time step (a [T] tensor: step t's backward uses widths[t]).
`snnlib.methods.snn_vs_rnn.HeLIFNode` and `snnlib.methods.adaptive_surrogate.MPDLIFNode` /
`MPDPLIFNode` call it in multi-step mode. H is also an output of the fused Function, in the graph
(those modules keep it as their pre-reset membrane u); a gradient w.r.t. it adds to G[t].
Every fused neuron asks `fused_enabled(surrogate)` first, at each call; the environment variable
SNNLIB_FUSED=0 turns the fused path off everywhere.
The gradient reaches the initial state V[-1] when it requires grad, as in spikingjelly: a state
carried from the previous multi-step call keeps its graph (truncated BPTT: call
`functional.detach_net(net)` to cut it). Without grad (eval, torch.no_grad) no H buffer is kept.
The fused path needs a surrogate of `snnlib.surrogate` (it calls the class's `derivative`);
with any other surrogate function the neurons run spikingjelly's own multi-step code. A
surrogate in non-spiking mode fires S = primitive(H - V_th) (smooth), as spikingjelly would.
"""

import functools
import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import snntorch
import torch
from spikingjelly.activation_based import base, neuron
from torch.autograd.function import once_differentiable

from snnlib.checks import flag, real
from snnlib.surrogate import ArcTan, Rectangle, SurrogateSpike, Triangle

__all__ = [
    "IFNode",
    "LIFNode",
    "LeakyEquivalence",
    "LeakyMultiStep",
    "PLIFNode",
    "fused_decay_lif",
    "fused_enabled",
    "leaky_for_lif",
    "lif_for_leaky",
]


def _tau(name: str, value) -> float:
    tau = real(name, value)
    if tau <= 1.0:
        raise ValueError(
            f"{name} must be > 1 so that the decay factor 1 - 1/{name} lies in (0, 1), got {value}; "
            f"for a decay factor k use {name} = 1 / (1 - k)"
        )
    return tau


def _node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq) -> dict:
    """Checked keyword arguments shared by the spikingjelly neurons, with the default surrogate filled in."""
    if surrogate_function is None:
        surrogate_function = ArcTan()
    if not callable(surrogate_function):
        raise TypeError(
            f"surrogate_function must be callable (e.g. snnlib.surrogate.ArcTan()), got {surrogate_function!r}"
        )
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode must be 'm' (input [T, B, ...]) or 's' (input [B, ...]), got {step_mode!r}")
    return dict(
        v_threshold=real("v_threshold", v_threshold),
        v_reset=None if v_reset is None else real("v_reset (a float for hard reset, None for soft)", v_reset),
        surrogate_function=surrogate_function,
        detach_reset=flag("detach_reset", detach_reset),
        step_mode=step_mode,
        store_v_seq=flag("store_v_seq", store_v_seq),
    )


# ----------------------------------------------------------------------------- fused multi-step path
#
# Three back ends compute the same thing. On CPU in float32/float64 with a spiking surrogate, two
# numba kernels run the loops (one pass over memory each way, vectorised over neurons); on CUDA,
# Triton kernels (snnlib.triton_neurons). Elsewhere (float16, non-spiking surrogates, numba or
# triton missing) the same loops run as PyTorch calls.

# Elements per block of time steps in the backward pass, whose surrogate slope is evaluated a
# block at a time by the surrogate's own `derivative`. Below PyTorch's parallel grain size (32768)
# those operations run on one thread: with two or more threads they would wait for each other at
# every operation, which costs milliseconds on a busy machine. Blocks hold whole time steps, so a
# layer with more than 32767 neurons still gets one step per block (and multi-threaded operations).
# On a GPU, where every operation is a kernel launch, the blocks are as large as memory allows.
_BLOCK_ELEMENTS = {"cpu": 32767, "other": 2**24}

# Work (time steps x neurons) from which a numba kernel call is split over torch.get_num_threads() threads.
_PARALLEL_ELEMENTS = 2**20

_NUMPY_TYPES = {torch.float32: np.float32, torch.float64: np.float64}


class _Dynamics:
    """Charge, fire and reset of one neuron layer for one multi-step call, constants in the input's dtype.

    `kind` is "if", "lif" (`scale` the float tau: H uses "/ tau"), "plif" (`scale` PLIF's parameter
    w: H uses "* q", q = sigmoid(w)) or "decay" (`scale` a 0-dim tensor beta: H = V * beta + X).
    `params`, a [T] tensor or None, gives the surrogate's width/alpha per time step instead of the
    surrogate's own one (spiking surrogates only). Built anew for every call, so a changed tau,
    threshold or surrogate width takes effect on the next call; the surrogate's width/alpha is
    frozen here for the backward pass of this call.
    """

    def __init__(self, kind, scale, decay_input, v_threshold, v_reset, detach_reset, surrogate, dtype, params=None):
        self.kind = kind
        self.decay_input = decay_input and kind in ("lif", "plif")
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.detach_reset = detach_reset
        self.derivative = surrogate.derivative
        self.primitive = surrogate.primitive
        self.param = getattr(surrogate, surrogate.param_name)
        self.spiking = surrogate.spiking
        if params is not None and not self.spiking:
            raise ValueError("per-step surrogate parameters need a spiking surrogate (set_spiking_mode(True))")
        self.params = None if params is None else params.detach().to(dtype)
        self.strict = getattr(surrogate, "strict", False)
        self.surrogate_type = type(surrogate)
        self.dtype = dtype
        # 0-dim tensors: a Python scalar would be wrapped into a tensor at every call (twice the cost).
        self._threshold = torch.tensor(v_threshold, dtype=dtype)
        self.rest = 0.0 if v_reset is None else v_reset
        self._rest = None if self.rest == 0.0 else torch.tensor(self.rest, dtype=dtype)  # V - 0.0 == V exactly
        if kind == "if":
            self._scale, q = None, 1.0
        elif kind == "lif":
            self._scale, q = torch.tensor(scale, dtype=dtype), 1.0 / scale
        elif kind == "plif":
            self._scale = torch.sigmoid(scale.detach()).to(dtype)  # in w's dtype first, as spikingjelly
            q = self._scale.item()
        else:
            self._scale = scale.detach().to(dtype)
            q = self._scale.item()
        self.q = q
        self.k = {"if": 1.0, "decay": q}.get(kind, 1.0 - q)  # dH[t]/dV[t-1]
        self.a = q if self.decay_input else 1.0  # dH[t]/dX[t]

    def grad_parameter(self, grad_q: torch.Tensor, dtype: torch.dtype, shape) -> torch.Tensor:
        """dL/dw for PLIF (through q = sigmoid(w)) or dL/dbeta for "decay", from dL/dq, in that dtype and shape."""
        factor = self.q * (1.0 - self.q) if self.kind == "plif" else 1.0
        return (grad_q * factor).to(dtype).reshape(shape)

    def kernel_neuron(self) -> tuple:
        """The kernels' `neuron` argument: (kind, decay_input, scale, rest, threshold, soft, strict)."""
        number = _NUMPY_TYPES[self.dtype]
        scale = 1.0 if self._scale is None else self._scale.item()
        kind = ("if", "lif", "plif", "decay").index(self.kind)
        return (
            kind,
            self.decay_input,
            number(scale),
            number(self.rest),
            number(self.v_threshold),
            self.v_reset is None,
            self.strict,
        )

    def kernel_gradient(self, steps: int) -> tuple:
        """The backward kernel's `gradient` argument: (detach, k, a, one, surrogate, c1, c2).

        surrogate and c1, c2 tell it how to compute the slope (see `_backward_kernel`); c1 and c2
        are arrays with one entry per time step (of `steps`) for per-step parameters, else one entry.
        """
        number = _NUMPY_TYPES[self.dtype]
        p = np.array([self.param]) if self.params is None else self.params.cpu().numpy().astype(np.float64)
        if len(p) not in (1, steps):
            raise ValueError(f"per-step surrogate parameters: expected {steps}, got {len(p)}")
        surrogate, c1, c2 = {
            ArcTan: (0, math.pi / 2 * p, p / 2),
            Rectangle: (1, p / 2, p),
            Triangle: (2, 2 / p, 2 / p),
        }.get(self.surrogate_type, (-1, np.ones(1), np.ones(1)))
        c1, c2 = c1.astype(number), c2.astype(number)
        return self.detach_reset, number(self.k), number(self.a), number(1), surrogate, c1, c2

    # -- per-step PyTorch operations (the torch back end)

    def _scaled(self, t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """t / tau (LIF) or t * q (PLIF) into `out`, the operation spikingjelly applies."""
        return torch.div(t, self._scale, out=out) if self.kind == "lif" else torch.mul(t, self._scale, out=out)

    def charge(self, x: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> None:
        """H = V + (X - (V - V_reset)) / tau, V - (V - V_reset) / tau + X, V + X or V * beta + X, into `out`."""
        if self.kind == "if":
            torch.add(v, x, out=out)
            return
        if self.kind == "decay":
            torch.mul(v, self._scale, out=out).add_(x)
            return
        if self.decay_input:
            if self._rest is None:
                torch.sub(x, v, out=out)
            else:
                torch.sub(x, torch.sub(v, self._rest, out=out), out=out)
            self._scaled(out, out).add_(v)
        else:
            self._scaled(v if self._rest is None else torch.sub(v, self._rest, out=out), out)
            torch.sub(v, out, out=out).add_(x)

    def fire(self, h: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """S = Theta(H - V_th) into `out` (H > V_th if the surrogate is strict; primitive(H - V_th) if not spiking)."""
        if self.spiking:
            return (torch.gt if self.strict else torch.ge)(h, self._threshold, out=out)
        torch.sub(h, self._threshold, out=out)
        return out.copy_(self.primitive(out, self.param))

    def reset(self, h: torch.Tensor, s: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """V = H - V_th S (soft) or H - S H + V_reset S (hard, equal to H (1 - S) + V_reset S for S in {0, 1})."""
        if self.v_reset is None:
            return torch.sub(h, s, alpha=self.v_threshold, out=out)
        torch.addcmul(h, s, h, value=-1, out=out)
        return out if self._rest is None else out.add_(s, alpha=self.v_reset)

    # -- vectorised over a block of time steps (the backward pass)

    def slope(self, h: torch.Tensor, t0: int) -> torch.Tensor:
        """The surrogate slope g'(H - V_th) for a block of H, the steps [t0, t0 + len(h)), contiguous."""
        param = self.param
        if self.params is not None:
            param = self.params[t0 : t0 + h.shape[0]].to(h.device).view(-1, *[1] * (h.dim() - 1))
        return self.derivative(h - self._threshold, param).contiguous()

    def dv_dh(self, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """dV/dH (module docstring) for a block of H [n, B, ...] with slope g."""
        if self.v_reset is None:
            return torch.ones_like(h) if self.detach_reset else torch.mul(g, -self.v_threshold).add_(1.0)
        dv_dh = 1.0 - self.fire(h, torch.empty_like(h))
        return dv_dh if self.detach_reset else dv_dh.addcmul_(self.v_reset - h, g)

    def previous_v(self, h_seq, v_init, t0: int, t1: int) -> torch.Tensor:
        """V[t-1] for t in [t0, t1), recomputed from H exactly as the forward pass computed it."""
        prev = torch.empty_like(h_seq[t0:t1])
        first = 0
        if t0 == 0:
            prev[0] = v_init
            first = 1
        h = h_seq[t0 - 1 + first : t1 - 1]
        self.reset(h, self.fire(h, torch.empty_like(h)), prev[first:])
        return prev

    def dh_dq(self, h_seq, v_init, t0: int, t1: int) -> torch.Tensor:
        """dH[t]/dq for t in [t0, t1): PLIF (q = sigmoid(w)) X - (V - V_reset) = (H - V) / q, or V_reset - V;
        "decay" (q = beta) V[t-1]."""
        prev = self.previous_v(h_seq, v_init, t0, t1)
        if self.kind == "decay":
            return prev
        if self.decay_input:
            return torch.sub(h_seq[t0:t1], prev).div_(self._scale)
        return prev.neg_() if self._rest is None else prev.sub_(self._rest).neg_()


def _forward_kernel(x, v, spikes, h_rows, v_rows, neuron, lo, hi):
    """numba kernel: the forward loop over x [T, M] for the neurons [lo, hi), from the state v [M] (updated in place).

    Writes S[t] to spikes [T, M], H[t] to h_rows[t] and V[t] to v_rows[t]; h_rows and v_rows may
    have a single row, then overwritten at every step. `neuron` = (kind 0/1/2/3 for
    IF/LIF/PLIF/decay, decay_input, scale = tau (LIF), q (PLIF) or beta (decay), rest, threshold,
    soft, strict), the numbers in the arrays' dtype (`_Dynamics.kernel_neuron`). Every operation
    is spikingjelly's (for "decay": V * beta + X), in its order, so the results are bit-identical.
    The inner loop runs over slices (indices known to be >= 0) and has no branches, so it vectorises.
    """
    kind, decay_input, scale, rest, threshold, soft, strict = neuron
    lif = kind == 1
    leak = kind != 0
    decay = kind == 3
    fire_at_threshold = not strict
    v = v[lo:hi]
    for t in range(x.shape[0]):
        x_t, s_t = x[t, lo:hi], spikes[t, lo:hi]
        h_t, v_t = h_rows[t % h_rows.shape[0], lo:hi], v_rows[t % v_rows.shape[0], lo:hi]
        for i in range(hi - lo):
            v_i = v[i]
            u = v_i - rest
            d = x_t[i] - u if decay_input else u
            d = d / scale if lif else d * scale
            if decay:
                h = v_i * scale + x_t[i]
            else:
                h = (v_i + d if decay_input else v_i - d + x_t[i]) if leak else v_i + x_t[i]
            s = (h > threshold) | ((h == threshold) & fire_at_threshold)
            v_i = (h - threshold if soft else rest) if s else h
            s_t[i] = s
            h_t[i] = h
            v[i] = v_i
            v_t[i] = v_i


def _backward_kernel(
    h, slope, grad_s, grad_h, grad_v_seq, carry, grad_x, v_init, acc, t0, steps, neuron, gradient, lo, hi
):
    """numba kernel: the reverse loop over the time steps [t0, t0 + steps) of h [T, M], neurons [lo, hi).

    The surrogate slope g = g'(H - V_th) is computed here for snnlib's ArcTan (surrogate 0),
    Rectangle (1) and Triangle (2), by the formulas of snnlib.surrogate with the constants c1, c2
    of `_Dynamics.kernel_gradient` (arrays: one entry per time step, or one for all); for any
    other surrogate (-1) it is read from slope [steps, M], computed by the surrogate's own
    `derivative` (for Sigmoid too: PyTorch's vectorised exp is faster than numba's). grad_s,
    grad_h and grad_v_seq [steps, M] are the incoming gradients w.r.t. S, H and V, or one row
    used at every step. carry [M] holds dL/dV from later steps: on entry that of step
    t0 + steps - 1, on exit that of V[t0 - 1]. grad_x [T, M] receives dL/dX = a G; for PLIF and
    "decay", acc [M] accumulates G dH/dq. `neuron` as in `_forward_kernel`; `gradient` =
    (detach, k, a, one, surrogate, c1, c2), `one` being 1 in the arrays' dtype (a float literal
    would turn float32 arithmetic into float64). S and V[t-1] are recomputed exactly as in the
    forward pass.
    """
    kind, decay_input, scale, rest, threshold, soft, strict = neuron
    detach, k, a, one, surrogate, c1_steps, c2_steps = gradient
    learn = kind >= 2
    fire_at_threshold = not strict
    zero = one - one
    carry, acc = carry[lo:hi], acc[lo:hi]
    g = np.empty_like(carry)
    v_prev = np.empty_like(carry)
    for j in range(steps - 1, -1, -1):
        t = t0 + j
        c1, c2 = c1_steps[t % c1_steps.shape[0]], c2_steps[t % c2_steps.shape[0]]
        h_t, gx_t = h[t, lo:hi], grad_x[t, lo:hi]
        gs_t, gh_t = grad_s[j % grad_s.shape[0], lo:hi], grad_h[j % grad_h.shape[0], lo:hi]
        gv_t = grad_v_seq[j % grad_v_seq.shape[0], lo:hi]
        if surrogate == 0:  # ArcTan: (alpha / 2) / (1 + (pi / 2 alpha z)^2)
            for i in range(hi - lo):
                z = c1 * (h_t[i] - threshold)
                g[i] = c2 / (one + z * z)
        elif surrogate == 1:  # Rectangle: 1 / width where |z| < width / 2
            height = one / c2
            for i in range(hi - lo):
                g[i] = height if abs(h_t[i] - threshold) < c1 else zero
        elif surrogate == 2:  # Triangle: (2 / width) max(0, 1 - |z| 2 / width)
            for i in range(hi - lo):
                g[i] = max(zero, one - abs(h_t[i] - threshold) * c1) * c2
        else:
            g[:] = slope[j, lo:hi]
        for i in range(hi - lo):
            h_i = h_t[i]
            s = (h_i > threshold) | ((h_i == threshold) & fire_at_threshold)
            through_reset = zero if detach else g[i]  # dS/dH as the reset sees it
            dv_dh = one - threshold * through_reset if soft else (zero if s else one) + (rest - h_i) * through_reset
            grad_h_i = gs_t[i] * g[i] + gh_t[i] + (gv_t[i] + carry[i]) * dv_dh
            carry[i] = k * grad_h_i
            gx_t[i] = a * grad_h_i
            g[i] = grad_h_i  # kept for dL/dq below
        if learn:  # acc += G dH/dq, dH/dq = (H - V[t-1]) / q or V_reset - V[t-1] (PLIF), V[t-1] (decay)
            if t == 0:
                v_prev[:] = v_init[lo:hi]
            else:
                h_p = h[t - 1, lo:hi]
                for i in range(hi - lo):
                    s = (h_p[i] > threshold) | ((h_p[i] == threshold) & fire_at_threshold)
                    v_prev[i] = (h_p[i] - threshold if soft else rest) if s else h_p[i]
            if kind == 3:
                for i in range(hi - lo):
                    acc[i] += g[i] * v_prev[i]
            else:
                for i in range(hi - lo):
                    acc[i] += g[i] * ((h_t[i] - v_prev[i]) / scale if decay_input else rest - v_prev[i])


def jit_kernels(*kernels) -> tuple | None:
    """The functions compiled by numba on first call (and cached on disk), or None without numba.
    Also used by snnlib.methods.skip_recurrent for its kernels."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")  # x / 0 gives inf: no check to branch on
    return tuple(jit(kernel) for kernel in kernels)


@functools.cache
def _numba_kernels():
    """(forward, backward) compiled by numba on first use (and cached on disk), or None without numba."""
    return jit_kernels(_forward_kernel, _backward_kernel)


@functools.cache
def _helpers(count: int, pid: int) -> ThreadPoolExecutor:
    """`count` worker threads kept for the kernels of this process (`pid`: a forked child, whose copy
    has no live threads, gets its own); starting threads at every call cost ~0.3 ms."""
    return ThreadPoolExecutor(count, thread_name_prefix="snnlib-neurons")


def _in_parallel(kernel, args: tuple, steps: int, size: int) -> None:
    """kernel(*args, lo, hi) for the neurons [0, size): one call, or for large work (steps x size) one call
    per thread of torch.get_num_threads() on slices of the neurons (the kernels release the GIL), the
    calling thread taking the last slice."""
    parts = min(torch.get_num_threads(), size // 64) if steps * size >= _PARALLEL_ELEMENTS else 1
    bounds = [size * p // parts // 16 * 16 for p in range(parts)] + [size]  # slices start at 64-byte boundaries
    slices = list(itertools.pairwise(bounds))
    pending = [_helpers(parts - 1, os.getpid()).submit(kernel, *args, lo, hi) for lo, hi in slices[:-1]]
    kernel(*args, *slices[-1])
    for done in pending:
        done.result()


def _on_numba(dyn: _Dynamics, x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in _NUMPY_TYPES and dyn.spiking and _numba_kernels() is not None


@functools.cache
def _triton_kernels():
    """`snnlib.triton_neurons` (imported on first use on a GPU), or None without triton."""
    try:
        from snnlib import triton_neurons
    except ImportError:
        return None
    return triton_neurons


def _on_triton(dyn: _Dynamics, x: torch.Tensor) -> bool:
    return x.device.type == "cuda" and _triton_kernels() is not None and _triton_kernels().available(dyn, x)


def _rows(a: torch.Tensor) -> np.ndarray:
    """A contiguous CPU tensor [T, ...] as a numpy array [T, M] sharing its memory."""
    return a.view(a.shape[0], -1).numpy()


def _forward(dyn: _Dynamics, x_seq, v, keep_h: bool, store_v_seq: bool):
    """The forward loop over x_seq [T, B, ...] from state v [B, ...].

    Returns spikes [T, B, ...], the final V [B, ...], H [T, B, ...] (unless keep_h only the last
    step's, [1, B, ...]) and V [T, B, ...] (None unless store_v_seq), all new tensors.
    """
    if _on_numba(dyn, x_seq):
        return _forward_numba(dyn, x_seq, v, keep_h, store_v_seq)
    if _on_triton(dyn, x_seq):
        return _triton_kernels().forward(dyn, x_seq, v, keep_h, store_v_seq)
    return _forward_torch(dyn, x_seq, v, keep_h, store_v_seq)


def _forward_numba(dyn, x_seq, v, keep_h, store_v_seq):
    shape, steps = x_seq.shape, x_seq.shape[0]
    x = x_seq.detach().contiguous()
    state = v.detach().clone(memory_format=torch.contiguous_format)  # not a view: detach_net detaches it in place
    spikes = torch.empty_like(x)
    h_seq = torch.empty_like(x) if keep_h else x.new_empty((1, *shape[1:]))
    v_seq = torch.empty_like(x) if store_v_seq else x.new_empty((1, *shape[1:]))
    arrays = (_rows(x), state.view(-1).numpy(), _rows(spikes), _rows(h_seq), _rows(v_seq))
    _in_parallel(_numba_kernels()[0], (*arrays, dyn.kernel_neuron()), steps, state.numel())
    return spikes, state, h_seq, v_seq if store_v_seq else None


def _forward_torch(dyn, x_seq, v, keep_h, store_v_seq):
    steps = x_seq.shape[0]
    spikes = x_seq.new_empty(x_seq.shape)
    h_seq = x_seq.new_empty(x_seq.shape if keep_h else (1, *x_seq.shape[1:]))
    h_steps = h_seq.unbind(0) if keep_h else h_seq.unbind(0) * steps
    v_seq = x_seq.new_empty(x_seq.shape) if store_v_seq else None
    # Without v_seq one state buffer is updated in place: the charge reads V before the reset overwrites it.
    v_steps = v_seq.unbind(0) if store_v_seq else [x_seq.new_empty(x_seq.shape[1:])] * steps
    for x, h, s, v_next in zip(x_seq.unbind(0), h_steps, spikes.unbind(0), v_steps, strict=True):
        dyn.charge(x, v, h)
        dyn.reset(h, dyn.fire(h, s), v_next)
        v = v_next
    return spikes, (v.clone() if store_v_seq else v), h_seq, v_seq


def _time_blocks(h_seq: torch.Tensor) -> list[tuple[int, int]]:
    """[t0, t1) blocks covering the time steps of h_seq, at most _BLOCK_ELEMENTS each (or one step), latest first."""
    steps, step_numel = h_seq.shape[0], max(1, h_seq[0].numel())
    size = max(1, _BLOCK_ELEMENTS["cpu" if h_seq.device.type == "cpu" else "other"] // step_numel)
    return [(t0, min(t0 + size, steps)) for t0 in range(0, steps, size)][::-1]


def _backward(dyn: _Dynamics, h_seq, v_init, grads, need_q: bool):
    """One reverse pass over time: dL/dX [T, B, ...], dL/dV[-1] [B, ...] and dL/dq (float64 0-dim, or None).

    grads = (dL/dS [T, B, ...], dL/dV[T-1] [B, ...], dL/dV [T, B, ...], dL/dH [T, B, ...]); any may
    be None (that output was not used). v_init is needed for need_q only.
    """
    if _on_numba(dyn, h_seq):
        return _backward_numba(dyn, h_seq, v_init, *grads, need_q)
    if _on_triton(dyn, h_seq):
        return _triton_kernels().backward(dyn, h_seq, v_init, grads, need_q)
    return _backward_torch(dyn, h_seq, v_init, *grads, need_q)


def _backward_numba(dyn, h_seq, v_init, grad_spikes, grad_v, grad_v_seq, grad_h_seq, need_q):
    steps, size = h_seq.shape[0], h_seq[0].numel()
    h = h_seq.view(steps, size)
    grad_x = torch.empty_like(h)
    carry = h.new_zeros(size) if grad_v is None else grad_v.reshape(-1).clone()  # dL/dV from later steps
    acc = h.new_zeros(size)
    v0 = h.new_zeros(size) if v_init is None else v_init.reshape(-1).contiguous()
    neuron, gradient = dyn.kernel_neuron(), dyn.kernel_gradient(steps)
    in_kernel = gradient[4] >= 0  # snnlib's own surrogates are evaluated in the kernel: one call for all steps
    for t0, t1 in [(0, steps)] if in_kernel else _time_blocks(h_seq):
        slope = h[:1] if in_kernel else dyn.slope(h[t0:t1], t0)  # h[:1]: a placeholder, not read
        incoming = (_incoming(g, t0, t1, h) for g in (grad_spikes, grad_h_seq, grad_v_seq))
        arrays = (h, slope, *incoming, carry, grad_x, v0, acc)
        args = (*(a.numpy() for a in arrays), t0, t1 - t0, neuron, gradient)
        _in_parallel(_numba_kernels()[1], args, t1 - t0, size)
    return grad_x.view(h_seq.shape), carry.view(h_seq.shape[1:]), acc.sum(dtype=torch.float64) if need_q else None


def _incoming(grad, t0: int, t1: int, like: torch.Tensor) -> torch.Tensor:
    """An incoming gradient for the steps [t0, t1) as a contiguous [t1 - t0, M], or as one row used at every
    step: zeros for None, the first step if it is the same at every step (stride 0 in time, as after .sum())."""
    if grad is None:
        return like.new_zeros((1, like.shape[1]))
    if grad.stride(0) == 0:
        return grad[0].reshape(1, -1).contiguous()
    return grad[t0:t1].reshape(t1 - t0, -1).contiguous()


def _backward_torch(dyn, h_seq, v_init, grad_spikes, grad_v, grad_v_seq, grad_h_seq, need_q):
    steps = h_seq.shape[0]
    grad = torch.empty_like(h_seq)  # G[t] = dL/dH[t], scaled in place into dL/dX[t] block by block
    carry = None  # G[t + 1], not yet scaled
    grad_q = torch.zeros((), dtype=torch.float64, device=h_seq.device) if need_q else None
    for t0, t1 in _time_blocks(h_seq):
        h = h_seq[t0:t1]
        g = dyn.slope(h, t0)
        dv_dh = dyn.dv_dh(h, g)
        block = grad[t0:t1]
        if grad_spikes is None:
            block.zero_()
        else:
            torch.mul(grad_spikes[t0:t1], g, out=block)
        if grad_h_seq is not None:
            block.add_(grad_h_seq[t0:t1])
        if grad_v_seq is not None:
            block.addcmul_(grad_v_seq[t0:t1], dv_dh)
        if grad_v is not None and t1 == steps:
            block[-1].addcmul_(grad_v, dv_dh[-1])
        coupling = dv_dh.mul_(dyn.k).unbind(0)  # dH[t+1]/dH[t] = k dV[t]/dH[t]
        rows = block.unbind(0)
        for i in range(t1 - t0 - 1, -1, -1):
            if carry is not None:
                rows[i].addcmul_(coupling[i], carry)
            carry = rows[i]
        if need_q:
            grad_q += torch.sum(block * dyn.dh_dq(h_seq, v_init, t0, t1), dtype=torch.float64)
        if dyn.a != 1.0:
            carry = carry.clone()
            block.mul_(dyn.a)
    return grad, carry * dyn.k, grad_q


class _FusedNeuron(torch.autograd.Function):
    """Whole-sequence neuron: forward(x_seq, v_init, w, dynamics, store_v_seq) -> (spikes, V[T-1], H, v_seq or None).

    `w` is PLIF's parameter (the gradient w.r.t. it goes through q = sigmoid(w)), the decay factor
    beta of the "decay" kind (gradient dL/dbeta), or None. Saves H [T, B, ...] only (and V[-1] when
    `w` is given), which is also returned (differentiable: the pre-reset membrane).
    """

    @staticmethod
    def forward(ctx, x_seq, v_init, w, dyn, store_v_seq):
        spikes, v, h_seq, v_seq = _forward(dyn, x_seq, v_init, keep_h=True, store_v_seq=store_v_seq)
        ctx.dyn = dyn
        ctx.w_type = None if w is None else (w.dtype, w.shape)
        ctx.save_for_backward(h_seq, v_init if w is not None else None)
        ctx.set_materialize_grads(False)
        return spikes, v, h_seq, v_seq

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes, grad_v, grad_h_seq, grad_v_seq):
        h_seq, v_init = ctx.saved_tensors
        dyn = ctx.dyn
        need_w = ctx.needs_input_grad[2]
        grads = (grad_spikes, grad_v, grad_v_seq, grad_h_seq)
        grad_x, grad_v_init, grad_q = _backward(dyn, h_seq, v_init, grads, need_w)
        return (
            grad_x if ctx.needs_input_grad[0] else None,
            grad_v_init if ctx.needs_input_grad[1] else None,
            dyn.grad_parameter(grad_q, *ctx.w_type) if need_w else None,
            None,
            None,
        )


def _run(dyn: _Dynamics, x_seq, v, w, store_v_seq: bool, keep_h: bool):
    """(spikes, final V, H, v_seq or None) for x_seq [T, B, ...] from the materialised state v [B, ...].

    Through `_FusedNeuron` when a gradient is needed (H [T, B, ...] then in the graph); without,
    the forward loop alone, H being [T, B, ...] if keep_h, else only the last step's [1, B, ...].
    """
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x_seq, v, w)):
        return _FusedNeuron.apply(x_seq, v, w, dyn, store_v_seq)
    return _forward(dyn, x_seq, v, keep_h=keep_h, store_v_seq=store_v_seq)


def _check_sequence(x_seq) -> None:
    if not (isinstance(x_seq, torch.Tensor) and x_seq.is_floating_point()):
        got = f"dtype {x_seq.dtype}" if isinstance(x_seq, torch.Tensor) else type(x_seq).__name__
        raise TypeError(f"expected a floating-point tensor [T, B, ...], got {got}")
    if x_seq.dim() < 2 or x_seq.shape[0] == 0:
        raise ValueError(
            f"expected time-first input [T, B, ...] with T >= 1, got shape {tuple(x_seq.shape)}; "
            "for one step [B, ...] use step_mode='s'"
        )


def fused_enabled(surrogate) -> bool:
    """True if multi-step neurons with this surrogate run fused: a `snnlib.surrogate.SurrogateSpike`,
    unless the environment variable SNNLIB_FUSED is "0".

    Every fused neuron (LIFNode, PLIFNode, IFNode and the method modules' decay-factor neurons) asks
    this function, at each call, before taking the fused path. SNNLIB_FUSED=0 runs them all on
    their per-step code, in this process and in the notebook kernels it starts (to time "before"
    in benchmarks/training_step.py or a whole pipeline, or to rule the fused path out when debugging).
    """
    switch = os.environ.get("SNNLIB_FUSED", "1")
    if switch not in ("0", "1"):
        raise ValueError(f"SNNLIB_FUSED must be 0 (per-step neurons) or 1 (fused, the default), got {switch!r}")
    return switch == "1" and isinstance(surrogate, SurrogateSpike)


def fused_decay_lif(x_seq, v, beta, v_threshold: float, surrogate, widths=None, keep_h_seq: bool = False):
    """The decay-factor LIF with a hard reset to 0 in the graph, all T steps in one fused call.

        H[t] = V[t-1] * beta + X[t],   S[t] = Theta(H[t] - v_threshold),   V[t] = H[t] (1 - S[t])

    Theta fires on H >= v_threshold, or H > v_threshold if `surrogate.strict`; backward,
    dS/dH = g'(H - v_threshold) of `surrogate` (a spiking `snnlib.surrogate.SurrogateSpike`), with
    its own width/alpha or, if `widths` ([T] tensor) is given, widths[t] at step t; the reset
    gives dV/dH = 1 - S - H g'. x_seq [T, B, ...]; v, the state V[-1], [B, ...] (may carry a graph);
    beta a float or a 0-dim tensor, which may require grad (e.g. sigmoid(w)): the gradient
    dL/dbeta = sum_t G[t] V[t-1] reaches it. Floating-point operations as `v * beta + x`, so
    spikes and H are bit-identical to a per-step loop computing that. Returns (spikes [T, B, ...],
    V[T-1] [B, ...], H): H [T, B, ...], in the graph, when a gradient is needed or keep_h_seq,
    else the last step's H, [1, B, ...].
    """
    _check_sequence(x_seq)
    if not (isinstance(surrogate, SurrogateSpike) and surrogate.spiking):
        raise TypeError(f"surrogate must be a spiking snnlib.surrogate.SurrogateSpike, got {surrogate!r}")
    if not isinstance(v, torch.Tensor) or v.shape != x_seq.shape[1:]:
        raise ValueError(
            f"the state v must be a tensor of one step's shape {tuple(x_seq.shape[1:])}, got "
            f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}; materialise it first"
        )
    if not isinstance(beta, torch.Tensor):
        beta = torch.tensor(real("beta", beta), dtype=x_seq.dtype, device=x_seq.device)
    if beta.dim() != 0 or not beta.is_floating_point():
        raise ValueError(f"beta must be a float or a 0-dim floating tensor, got shape {tuple(beta.shape)}")
    if widths is not None and (not isinstance(widths, torch.Tensor) or widths.shape != x_seq.shape[:1]):
        raise ValueError(f"widths must be a tensor of shape [T] = [{x_seq.shape[0]}], got {widths!r}")
    dyn = _Dynamics("decay", beta, False, real("v_threshold", v_threshold), 0.0, False, surrogate, x_seq.dtype,
                    params=widths)
    spikes, v, h, _ = _run(dyn, x_seq, v, beta, False, keep_h_seq)
    return spikes, v, h


class _FusedMultiStep:
    """Mixin for the spikingjelly neurons: their multi-step path through `_FusedNeuron`.

    Subclasses give `_leak()`, ("lif", tau, decay_input), ("plif", w, decay_input) or
    ("if", None, False), and keep everything else of spikingjelly's node (single-step mode,
    memories, reset_net, v_seq). Falls back to spikingjelly's own multi-step code where
    `fused_enabled(surrogate)` is False (surrogates that are not `snnlib.surrogate.SurrogateSpike`)
    and when spikingjelly's reduced-precision mode (`_neuron_precision`) is set.
    """

    def _leak(self):
        raise NotImplementedError

    def _fused(self) -> bool:
        return fused_enabled(self.surrogate_function) and self._neuron_precision is None

    def _run_fused(self, x_seq, v, store_v_seq: bool):
        """(spikes, final V, v_seq or None) for input x_seq [T, B, ...] from the materialised state v [B, ...]."""
        kind, scale, decay_input = self._leak()
        w = scale if kind == "plif" else None
        dyn = _Dynamics(
            kind, scale, decay_input, self.v_threshold, self.v_reset, self.detach_reset, self.surrogate_function,
            x_seq.dtype,
        )
        spikes, v, _, v_seq = _run(dyn, x_seq, v, w, store_v_seq, keep_h=False)
        return spikes, v, v_seq

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        """Input x_seq [T, B, ...], output spikes [T, B, ...]; updates v (and v_seq if store_v_seq)."""
        if not self._fused() or args or kwargs:
            return super().multi_step_forward(x_seq, *args, **kwargs)
        _check_sequence(x_seq)
        states = self.materialize_states((x_seq,), tuple(self._memories.values()), "m")
        spikes, v, v_seq = self._run_fused(x_seq, states[0], self.store_v_seq)
        self._memories["v"] = v
        self.v_seq = v_seq
        return spikes

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        """spikingjelly's functional form: ((x_seq,), (v,)) -> ((spikes,), (final v,))."""
        if not self._fused() or len(inputs) != 1 or kwargs:
            return super().multi_step_functional_forward(inputs, states, **kwargs)
        _check_sequence(inputs[0])
        spikes, v, _ = self._run_fused(inputs[0], states[0], False)
        return (spikes,), (v, *states[1:])


class LIFNode(_FusedMultiStep, neuron.LIFNode):
    """Leaky integrate-and-fire neuron (spikingjelly `LIFNode`), multi-step `[T, B, ...]` by default.

    H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau   (decay_input=True)
    H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]     (decay_input=False)
    S[t] = (H[t] >= v_threshold);  V[t] = hard or soft reset of H[t] (see the module docstring).

    Args: tau > 1; v_reset a float (hard reset to it) or None (soft reset: subtract v_threshold);
    surrogate_function defaults to a new snnlib.surrogate.ArcTan(); the rest as in spikingjelly.
    Multi-step calls run fused (one autograd Function for all T; see the module docstring).
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(
            tau=_tau("tau", tau),
            decay_input=flag("decay_input", decay_input),
            **_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq),
        )

    def _leak(self):
        return "lif", self.tau, self.decay_input


class PLIFNode(_FusedMultiStep, neuron.ParametricLIFNode):
    """Parametric LIF (spikingjelly `ParametricLIFNode`): the LIF with a learnable 1/tau = sigmoid(w).

    `w` is one scalar nn.Parameter, initialised to -log(init_tau - 1) so that tau starts at init_tau.
    Input `[T, B, ...]` by default; other arguments as in `LIFNode`. Multi-step calls run fused,
    with the gradient w.r.t. w computed in the same reverse pass.
    """

    def __init__(
        self,
        init_tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(
            init_tau=_tau("init_tau", init_tau),
            decay_input=flag("decay_input", decay_input),
            **_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq),
        )

    def _leak(self):
        return "plif", self.w, self.decay_input


class IFNode(_FusedMultiStep, neuron.IFNode):
    """Integrate-and-fire neuron (spikingjelly `IFNode`): H[t] = V[t-1] + X[t], no leak.

    Input `[T, B, ...]` by default; fire and reset as in `LIFNode`; multi-step calls run fused.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(**_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq))

    def _leak(self):
        return "if", None, False


class LeakyMultiStep(base.MemoryModule):
    """Runs an `snntorch.Leaky` over time-first input `[T, B, ...]` and returns spikes `[T, B, ...]`.

    The bridge owns the membrane state (memory `mem`, starting at 0), so it resets with
    `functional.reset_net` like the spikingjelly neurons, and it passes the state to the Leaky
    explicitly at every step. With `store_mem_seq=True` the Leaky's membrane after each step of
    the last multi-step call is kept in `mem_seq`, `[T, B, ...]` (see the module docstring for
    how it relates to spikingjelly's H and V). `step_mode='s'` takes one step `[B, ...]` per call.
    """

    def __init__(self, leaky: snntorch.Leaky, store_mem_seq: bool = False, step_mode: str = "m"):
        super().__init__()
        if not isinstance(leaky, snntorch.Leaky):
            raise TypeError(f"leaky must be an snntorch.Leaky, got {type(leaky).__name__}")
        if leaky.init_hidden:
            raise ValueError("build the Leaky with init_hidden=False: LeakyMultiStep keeps the membrane state itself")
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 'm' (input [T, B, ...]) or 's' (input [B, ...]), got {step_mode!r}")
        self.leaky = leaky
        self.store_mem_seq = flag("store_mem_seq", store_mem_seq)
        self.step_mode = step_mode
        self.register_memory("mem", 0.0)
        self.register_memory("mem_seq", None)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.mem, float):
            mem = torch.full_like(x, self.mem)
        elif self.mem.shape != x.shape:
            raise ValueError(
                f"input shape {tuple(x.shape)} differs from the stored membrane {tuple(self.mem.shape)}; "
                "call spikingjelly.activation_based.functional.reset_net(net) between batches"
            )
        else:
            mem = self.mem
        spike, self.mem = self.leaky(x, mem)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"expected time-first input [T, B, ...], got shape {tuple(x_seq.shape)}")
        spikes, mems = [], []
        for x in x_seq.unbind(0):
            spikes.append(self.single_step_forward(x))
            if self.store_mem_seq:
                mems.append(self.mem)
        if self.store_mem_seq:
            self.mem_seq = torch.stack(mems)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"store_mem_seq={self.store_mem_seq}, step_mode={self.step_mode}"


# The spikingjelly reset settings that snntorch's Leaky can reproduce, forward and backward:
# (soft reset, detach_reset) -> (reset_mechanism, reset_delay, snntorch mem is the pre-reset H).
_MATCHES = {
    (False, True): ("zero", True, True),
    (False, False): ("zero", False, False),
    (True, False): ("subtract", False, False),
}


@dataclass(frozen=True)
class LeakyEquivalence:
    """A spikingjelly-style LIF and an snntorch Leaky with the same spikes and spike gradients.

    Build it with `leaky_for_lif` or `lif_for_leaky`, then run
        LIFNode(**eq.lif_kwargs(), surrogate_function=sg)                  on input x and
        LeakyMultiStep(snntorch.Leaky(**eq.leaky_kwargs(), spike_grad=sg))  on input eq.input_scale * x.
    With the same snnlib surrogate `sg` both fire on >= and the spikes are identical; the Leaky's
    membrane equals spikingjelly's pre-reset H[t] if `mem_is_pre_reset`, else its post-reset V[t].
    Conditions and exceptions: see the module docstring.
    """

    tau: float
    decay_input: bool
    v_reset: float | None
    detach_reset: bool
    beta: float
    threshold: float
    reset_mechanism: str
    reset_delay: bool
    input_scale: float
    mem_is_pre_reset: bool

    def lif_kwargs(self) -> dict:
        """Keyword arguments for `LIFNode` (or spikingjelly's `neuron.LIFNode`)."""
        return dict(
            tau=self.tau,
            decay_input=self.decay_input,
            v_threshold=self.threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
        )

    def leaky_kwargs(self) -> dict:
        """Keyword arguments for `snntorch.Leaky` (add `spike_grad=`); beta and threshold become float32 buffers."""
        return dict(
            beta=self.beta,
            threshold=self.threshold,
            reset_mechanism=self.reset_mechanism,
            reset_delay=self.reset_delay,
        )


def _positive_threshold(value) -> float:
    threshold = real("threshold", value)
    if threshold <= 0:
        raise ValueError(f"the LIF/Leaky mapping needs a positive threshold, got {value}")
    return threshold


def leaky_for_lif(
    tau: float,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
) -> LeakyEquivalence:
    """The snntorch Leaky that reproduces a spikingjelly LIF: beta = 1 - 1/tau, input scaled by 1/tau if decay_input.

    Raises ValueError for a v_reset other than 0.0/None and for a soft reset with detach_reset=True,
    which no Leaky setting reproduces.
    """
    tau = _tau("tau", tau)
    if v_reset is not None and real("v_reset", v_reset) != 0.0:
        raise ValueError(
            f"snntorch's Leaky starts at and resets to 0, so v_reset={v_reset} has no match; use v_reset=0.0 or None"
        )
    soft = v_reset is None
    key = (soft, flag("detach_reset", detach_reset))
    if key not in _MATCHES:
        raise ValueError(
            "a soft reset with detach_reset=True has no snntorch Leaky match: reset_delay=False keeps the "
            "subtraction in the graph and reset_delay=True subtracts after the leak; use detach_reset=False"
        )
    reset_mechanism, reset_delay, pre_reset = _MATCHES[key]
    return LeakyEquivalence(
        tau=tau,
        decay_input=flag("decay_input", decay_input),
        v_reset=None if soft else 0.0,
        detach_reset=detach_reset,
        beta=1.0 - 1.0 / tau,
        threshold=_positive_threshold(v_threshold),
        reset_mechanism=reset_mechanism,
        reset_delay=reset_delay,
        input_scale=1.0 / tau if decay_input else 1.0,
        mem_is_pre_reset=pre_reset,
    )


def lif_for_leaky(
    beta: float,
    threshold: float = 1.0,
    reset_mechanism: str = "subtract",
    reset_delay: bool = True,
) -> LeakyEquivalence:
    """The spikingjelly LIF (decay_input=False, tau = 1 / (1 - beta)) that reproduces an snntorch Leaky.

    The defaults are snntorch's. Raises ValueError for beta outside (0, 1) (beta = 1 is an IF
    neuron: use IFNode), for reset_mechanism "none", and for "subtract" with reset_delay=True,
    which no spikingjelly LIF reproduces.
    """
    beta = real("beta", beta)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1) for a leaky neuron, got {beta}; beta = 1 is IFNode")
    matches = {(mechanism, delay): key for key, (mechanism, delay, _) in _MATCHES.items()}
    if (reset_mechanism, flag("reset_delay", reset_delay)) not in matches:
        raise ValueError(
            f"snntorch's Leaky with reset_mechanism={reset_mechanism!r}, reset_delay={reset_delay} has no spikingjelly "
            "LIF match: 'subtract' with reset_delay=True subtracts the threshold after the leak, 'none' never "
            "resets; use 'zero' (either delay) or 'subtract' with reset_delay=False"
        )
    soft, detach_reset = matches[(reset_mechanism, reset_delay)]
    return LeakyEquivalence(
        tau=1.0 / (1.0 - beta),
        decay_input=False,
        v_reset=None if soft else 0.0,
        detach_reset=detach_reset,
        beta=beta,
        threshold=_positive_threshold(threshold),
        reset_mechanism=reset_mechanism,
        reset_delay=reset_delay,
        input_scale=1.0,
        mem_is_pre_reset=_MATCHES[(soft, detach_reset)][2],
    )
