"""Qin et al. 2025: gated recurrent spiking neurons (GRSN) and the temporal alignment paradigm (TAP).

Paper: L. Qin, Z. Wang, R. Jiang, R. Yan, H. Tang, "GRSN: Gated Recurrent Spiking Neurons for
POMDPs and MARL", AAAI 2025, 39(2):1483-1491, arXiv 2404.15597. Authors' code:
github.com/StillWolf/GRSN-SNN (grsn/policies/rlifs/*.py).

Shapes. Every sequence is time-first, `[T, B, features]`, where one step t is one environment
step (one RL decision). A core maps observations-features `[T, B, in]` to features `[T, B, H]`
and keeps its state between calls, so an agent can be stepped one environment step at a time
(`x[None]`, T = 1) or run over a whole episode at once with the same result. Reset the state at
the start of an episode with `spikingjelly.activation_based.functional.reset_net(core)`, or for
some batch rows only with `reset_where(core, done)`.

GRSN cell (`GRSNCell`, the "paper-aligned" formulation of the authors' refactored
`rlifs/GRSN.py`, written after the paper's Eq. 16-18), per step t, with o the cell's own spikes:

    F[t]       = sigmoid(W_f o[t-1] + b_f)                       forget gate
    I[t]       = relu(W_i o[t-1] + b_i)                          input gate (candidate current)
    c[t]       = F[t] * c[t-1] + (1 - F[t]) * I[t]               gated recurrent current
    u[t]       = beta * h[t-1] + (1 - beta) * (W_x x[t] + b_x + c[t])
    o[t]       = Theta(u[t] - V_th)                              fires at u >= V_th, V_th = 1
    h[t]       = u[t] - V_th * o[t]                              soft reset
    beta       = sigmoid(beta_raw), one learnable decay per neuron, beta_raw = 0 (beta = 0.5) at start
    h[-1] = c[-1] = o[-1] = 0;  dTheta/dx ~ arctan surrogate, alpha = 2 (snnlib.surrogate.ArcTan)

So with F = 1 the current c is kept unchanged; with F = 0 it is replaced by I. All weights and
biases start uniform in [-1/sqrt(H), 1/sqrt(H)] (H = hidden size, also for W_x), as the authors'.

Fused GRSN path. A multi-step call of `GRSNCell` runs as one autograd Function over all T steps
(`_FusedGRSN`) instead of a graph of ~15 nodes per step. The drives W_x x[t] + b_x are one
nn.Linear call for all steps, outside the Function (autograd gives dL/dW_x, dL/db_x from dL/ddrive).
Forward, per step: z_f = addmm(b_f, o[t-1], W_f^T), F = sigmoid(z_f), z_i likewise (the calls
nn.Linear and torch.sigmoid make), then one numba kernel for the element-wise rest with the
per-step module's operations in its order (no fused multiply-add), so spikes, h and c are
bit-identical to the per-step path, float32 and float64. Saved for backward, [T, B, H] each: u[t],
c[t], F[t], I[t] and the drives (5 numbers per neuron-step: 20 bytes in float32, 40 in float64,
against 34 / 68 for the per-step graph, measured with torch.autograd.graph.saved_tensors_hooks,
unique storages, input projection excluded), plus h[-1], c[-1], o[-1], W_f, W_i and beta; o[t-1]
and h[t-1] are recomputed from u[t-1] as the forward pass computed them. Backward, one numba
reverse loop over t with g = g'(u[t] - V_th) (the surrogate's own `derivative`, evaluated for all
steps at once beforehand) and the carries dL/dh, dL/dc, dL/do from step t+1:

    dL/du[t]     = g (dL/do[t] + dL/do[t]|gates(t+1) - V_th dL/dh[t]) + dL/dh[t]
    dL/dh[t-1]   = beta dL/du[t],        dL/ddrive[t] = (1 - beta) dL/du[t]
    dL/dc[t]    += (1 - beta) dL/du[t];   dL/dc[t-1] = F dL/dc[t]
    dL/dz_f[t]   = dL/dc[t] (c[t-1] - I[t]) F (1 - F),   dL/dz_i[t] = dL/dc[t] (1 - F) [z_i > 0]
    dL/do[t-1]|gates(t) = dL/dz_f[t] W_f + dL/dz_i[t] W_i
    dL/dbeta    += dL/du[t] (h[t-1] - drive[t] - c[t])     (through sigmoid by autograd to beta_raw)

then dL/dW_f = sum_t dL/dz_f[t]^T o[t-1] (and W_i) as one product over all steps. The gradients
agree with autograd's through the per-step graph to rounding (summation order differs: below 1e-6
of the largest entry in float32, 1e-15 in float64; tests/test_fused_grsn.py). The state (h, c, o)
is carried between calls, in the graph (dL/dh[-1], dL/dc[-1], dL/do[-1] are outputs of the
backward), so stepping an agent one environment step at a time (T = 1, fused as well), reset_where
and truncation by `functional.detach_net` behave as in the per-step path. Without a gradient
(acting, torch.no_grad) only the forward loop runs and nothing is saved. The per-step path runs
instead where `snnlib.neurons.fused_enabled(surrogate)` is False (SNNLIB_FUSED=0, a surrogate that
is not a `snnlib.surrogate.SurrogateSpike`), for a non-spiking surrogate, off the CPU (CUDA: no
kernel here), for dtypes other than float32/float64 or parameters of another dtype than the
input, without numba, and while the gate layers carry forward hooks (the fused loop calls addmm,
not the nn.Linear modules, so `snnlib.metrics.SynapticOperationCounter` and NeuroBench, which
count through hooks, would miss every gate product; global hooks, torch.nn.modules.module.
register_module_forward_hook, are not detected).

Fused released cell. `InputGatedGRSNCell` computes its gates F, C for all steps at once (two
nn.Linear calls, sigmoid, relu, in the graph) and runs only the c and v recurrence as one autograd
Function (`_FusedReleasedGRSN`): the forward loop is one numba kernel call with the per-step
module's operations in its order (bit-identical spikes, c and v), the backward one reverse numba
loop, with m[t] = v[t-1] + (c[t] - v[t-1]) / 2 the membrane before reset and g = g'(m[t] - V_th):

    dL/dm[t]   = g (dL/do[t] - V_th dL/dv[t]) + dL/dv[t],     dL/dv[t-1] = dL/dm[t] / 2
    dL/dc[t]  += dL/dm[t] / 2 (+ dL/dc[t] of the output, output="current");  dL/dc[t-1] = F dL/dc[t]
    dL/dF[t]   = dL/dc[t] (c[t-1] - C[t]),   dL/dC[t] = dL/dc[t] (1 - F[t])

It saves F and C (which the sigmoid and relu before it keep anyway) and c, m [T, B, H]: 16 bytes
per neuron-step in float32 (32 in float64), against 20 (40) for the per-step graph, measured as
above. It runs under the same conditions as the fused GRSN path.

Released GRSN cell (`InputGatedGRSNCell`, the authors' released `rlifs/RecurrentLIF.py` /
`GRSNwoTAP.py`, papers.md 6.3 variant (a)): the gates read the current input, not the spikes,
and the gated current drives a LIF (tau = 2, decay_input, V_th = 1, soft reset, arctan alpha 2):

    F[t] = sigmoid(W_f x[t] + b_f),   C[t] = relu(W_i x[t] + b_i)
    c[t] = F[t] * c[t-1] + (1 - F[t]) * C[t]
    v    = v[t-1] + (c[t] - v[t-1]) / 2;   o[t] = Theta(v - 1);   v[t] = v - o[t]

with no separate W_x. In a stack the next layer receives the continuous current c[t] of the
layer below (only the last layer outputs spikes), as in the released code. One departure: the
released code resets the membrane v at the end of every forward call, so an agent stepped one
environment step at a time keeps memory only in c while training on whole sequences keeps v
as well (a train/act mismatch); here v is carried like c, so acting step by step and replaying
the episode give the same outputs. Weights and biases start uniform in [-1/sqrt(H), 1/sqrt(H)]
like the other cells here. The released cells fail backward() with two or more layers (an
in-place write into a tensor autograd saved); this one writes out of place, so stacks train.
Both cells are built so that the two readings of the GRSN gates can be compared on the same tasks
(config/qin2025.yaml says which one each claim used).

Memoryless baseline (`FeedForwardCore`, kind "mlp"): y[t] = tanh(W x[t] + b), no state; a task
that it solves does not need memory, so a memory claim is only judged where it fails.

LIF cell (`LIFCell`, the paper's baseline, refactored `rlifs/LIF.py`): a linear input projection
followed by a spikingjelly LIF with tau = 2 (decay 0.5), decay_input=True, V_th = 1, arctan
surrogate (alpha 2):

    u[t] = v[t-1] + (W x[t] + b - v[t-1]) / 2
    o[t] = Theta(u[t] - 1)
    v[t] = u[t] (1 - o[t])   (hard reset to 0, the refactor; v_reset=None gives the released
                              code's soft reset v[t] = u[t] - o[t])

Temporal alignment (`SpikingCore(paradigm=...)`), per layer:

    TAP    one neuron update per environment step; the state (h, c, o or v) is carried from one
           environment step to the next for the whole episode, so the neuron is the memory.
    woTAP  the conventional scheme: each environment step's input is held for `substeps` (K = 4)
           neuron updates and the layer's output is the mean spike count over them (rate code;
           readout="last" keeps the last sub-step's spikes instead). With reset_each_step=True
           (the default, the paper's description of conventional spiking RL) the state starts
           from zero at every environment step, so a woTAP core has no memory across steps.
           reset_each_step=False carries the state from the last sub-step to the next
           environment step, which is what the authors' refactored wrapper (`_base.py`,
           time_step 4, rate_code True) does.

Layers are stacked; layer l + 1 receives the output of layer l (spikes, or spike rates under
woTAP; the gated current c below the last layer of the released GRSN). The GRU core (`GRUCore`) is the non-spiking reference, a standard GRU written with
nn.Linear layers so that synaptic operations can be counted:

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import functools
import math

import torch
from spikingjelly.activation_based import base, functional
from torch import nn
from torch.autograd.function import once_differentiable

from snnlib.checks import flag, positive_int, time_first
from snnlib.neurons import _NUMPY_TYPES, LIFNode, _rows, fused_enabled
from snnlib.surrogate import ArcTan, heaviside

__all__ = ["GRSNCell", "InputGatedGRSNCell", "FeedForwardCore", "GRUCore", "LIFCell", "SpikingCore", "make_core", "reset_where", "CORE_KINDS"]

CORE_KINDS = ("mlp", "gru", "lif-tap", "lif-wotap", "grsn-tap", "grsn-wotap", "igrsn-tap", "igrsn-wotap")
"""Names understood by `make_core`: the memoryless MLP, the five cores of the paper's comparison, and
the released input-gated GRSN ("igrsn") under TAP and woTAP."""


# How to mend a wrongly shaped input: the end of its error message (snnlib.checks.time_first).
_SEQUENCE_HINT = "for one environment step pass x[None]"


def _uniform_init(layers, hidden_size: int) -> None:
    """Weights and biases uniform in [-1/sqrt(H), 1/sqrt(H)], the authors' initialisation."""
    bound = 1.0 / math.sqrt(hidden_size)
    for layer in layers:
        nn.init.uniform_(layer.weight, -bound, bound)
        nn.init.uniform_(layer.bias, -bound, bound)


def _state(memory, like: torch.Tensor) -> torch.Tensor:
    """A memory as a tensor shaped like `like` (a float memory is a fresh constant tensor)."""
    if isinstance(memory, torch.Tensor):
        return memory
    return torch.full_like(like, float(memory))


# ----------------------------------------------------------------------------- fused GRSN sequence
#
# The kernels below are compiled by numba on first use (`_grsn_kernels`). The forward kernel is
# one step's element-wise update, called once per step after the two gate products (torch.addmm,
# the product nn.Linear computes) and torch.sigmoid, so that every value equals the per-step
# module's bit for bit; the backward kernel is the whole reverse loop, gate products included.


def _grsn_step_kernel(forget, candidate, drive, c_prev, c, u, spikes, h, beta, keep, threshold, one, strict):
    """numba kernel: one GRSN step, rows [B, H]; the per-step module's operations in its order.

    forget = F[t] (sigmoid already applied), candidate = W_i o + b_i before relu (replaced by I[t]
    in place), drive = W_x x + b_x, c_prev = c[t-1]; writes c[t], u[t], spikes o[t] and the
    membrane after reset h (in place: h[t-1] on entry). beta and keep = 1 - beta, [H]; `one` is 1
    in the arrays' dtype (an integer literal would turn float32 arithmetic into float64).
    """
    zero = threshold - threshold
    for b in range(forget.shape[0]):
        for i in range(forget.shape[1]):
            f, z = forget[b, i], candidate[b, i]
            cand = z if z > zero else zero
            candidate[b, i] = cand
            c_t = f * c_prev[b, i] + (one - f) * cand
            u_t = beta[i] * h[b, i] + keep[i] * (drive[b, i] + c_t)
            x = u_t - threshold
            s = (x > zero) | ((x == zero) & (not strict))
            c[b, i] = c_t
            u[b, i] = u_t
            spikes[b, i] = s
            h[b, i] = u_t - threshold if s else u_t  # u - V_th o, o in {0, 1}


def _grsn_backward_kernel(u, c, forget, cand, drive, slope, grad_spikes, h0, c0, beta, keep, w_f, w_i,
                          threshold, one, strict, grad_h, grad_c, grad_o, grad_drive, grad_zf, grad_zi, grad_beta):
    """numba kernel: the reverse loop over all T steps of [T, B, H] (module docstring, fused path).

    On entry grad_h, grad_c [B, H] hold dL/dh[T-1], dL/dc[T-1] and grad_o zeros; on exit they hold
    dL/dh[-1], dL/dc[-1], dL/do[-1]. Writes dL/d(drive), dL/dz_f, dL/dz_i [T, B, H] (z the gate
    pre-activations) and adds dL/dbeta to grad_beta [H]. S[t-1] and h[t-1] are recomputed from
    u[t-1] exactly as the forward pass computed them.
    """
    steps, batch, size = u.shape
    zero = threshold - threshold
    for t in range(steps - 1, -1, -1):
        gs_t = grad_spikes[t % grad_spikes.shape[0]]
        for b in range(batch):
            for i in range(size):
                if t > 0:
                    x = u[t - 1, b, i] - threshold
                    s = (x > zero) | ((x == zero) & (not strict))
                    h_prev = u[t - 1, b, i] - threshold if s else u[t - 1, b, i]
                    c_prev = c[t - 1, b, i]
                else:
                    h_prev, c_prev = h0[b, i], c0[b, i]
                gh = grad_h[b, i]
                grad_u = slope[t, b, i] * (gs_t[b, i] + grad_o[b, i] - threshold * gh) + gh
                grad_beta[i] += grad_u * (h_prev - (drive[t, b, i] + c[t, b, i]))
                grad_a = keep[i] * grad_u
                grad_drive[t, b, i] = grad_a
                grad_h[b, i] = beta[i] * grad_u
                gc = grad_a + grad_c[b, i]
                f = forget[t, b, i]
                grad_zf[t, b, i] = gc * (c_prev - cand[t, b, i]) * f * (one - f)
                grad_zi[t, b, i] = gc * (one - f) if cand[t, b, i] > zero else zero
                grad_c[b, i] = f * gc
        grad_o[:] = zero
        for b in range(batch):  # dL/do[t-1] = dz_f W_f + dz_i W_i, the inner loop along rows of W
            for i in range(size):
                zf, zi = grad_zf[t, b, i], grad_zi[t, b, i]
                for j in range(size):
                    grad_o[b, j] += zf * w_f[i, j] + zi * w_i[i, j]


def _released_forward_kernel(forget, cand, c, v, c_seq, m_seq, spikes, threshold, one, two, strict):
    """numba kernel: the released cell's loop over forget, cand [T, M] from the state c, v [M] (updated in
    place); writes c[t], the membrane before reset m[t] and the spikes, [T, M]. The per-step
    module's operations in its order."""
    zero = one - one
    for t in range(forget.shape[0]):
        for i in range(forget.shape[1]):
            f = forget[t, i]
            c_t = f * c[i] + (one - f) * cand[t, i]
            m = v[i] + (c_t - v[i]) / two
            x = m - threshold
            s = (x > zero) | ((x == zero) & (not strict))
            c[i] = c_t
            v[i] = m - threshold if s else m
            c_seq[t, i] = c_t
            m_seq[t, i] = m
            spikes[t, i] = s


def _released_backward_kernel(forget, cand, c_seq, slope, grad_spikes, grad_c_seq, c0, threshold, one, half,
                              grad_c, grad_v, grad_f, grad_cand):
    """numba kernel: the reverse loop of the released cell over [T, M]. grad_spikes and grad_c_seq are
    the incoming gradients w.r.t. the spikes and c[t] ([T, M] or one row used at every step); on entry
    grad_c, grad_v [M] hold dL/dc[T-1], dL/dv[T-1], on exit dL/dc[-1], dL/dv[-1]. Writes dL/dF, dL/dC."""
    for t in range(forget.shape[0] - 1, -1, -1):
        gs_t, gc_t = grad_spikes[t % grad_spikes.shape[0]], grad_c_seq[t % grad_c_seq.shape[0]]
        for i in range(forget.shape[1]):
            gv = grad_v[i]
            grad_m = slope[t, i] * (gs_t[i] - threshold * gv) + gv
            gc = half * grad_m + grad_c[i] + gc_t[i]
            f = forget[t, i]
            grad_f[t, i] = gc * ((c_seq[t - 1, i] if t > 0 else c0[i]) - cand[t, i])
            grad_cand[t, i] = gc * (one - f)
            grad_c[i] = f * gc
            grad_v[i] = half * grad_m


@functools.cache
def _grsn_kernels():
    """(GRSN step, GRSN backward, released forward, released backward) compiled by numba on first use (and
    cached on disk), or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")
    kernels = (_grsn_step_kernel, _grsn_backward_kernel, _released_forward_kernel, _released_backward_kernel)
    return tuple(jit(kernel) for kernel in kernels)


def _grsn_forward(drives, h0, c0, o0, w_f, b_f, w_i, b_i, beta, threshold: float, strict: bool):
    """The forward loop, no graph: (spikes, u, c, F, I), each [T, B, H], and the final h [B, H].

    Per step: z_f = addmm(b_f, o, W_f^T) and F = sigmoid(z_f) (what nn.Linear and torch.sigmoid
    compute in the per-step module), z_i = addmm(b_i, o, W_i^T), then `_grsn_step_kernel` (relu
    included).
    """
    drives, w_f, b_f, w_i, b_i, beta = (a.detach() for a in (drives, w_f, b_f, w_i, b_i, beta))
    drives = drives.contiguous()
    spikes, u, c, forget, cand = (torch.empty_like(drives) for _ in range(5))
    h = h0.detach().clone(memory_format=torch.contiguous_format)
    number = _NUMPY_TYPES[drives.dtype]
    constants = (beta.numpy(), (1.0 - beta).numpy(), number(threshold), number(1), strict)
    step = _grsn_kernels()[0]
    rows = [a.unbind(0) for a in (spikes, forget, cand)]
    arrays = [a.numpy() for a in (forget, cand, drives, c, u, spikes)]
    o, c_prev, state = o0.detach(), c0.detach().contiguous().numpy(), h.numpy()
    w_f, w_i = w_f.t(), w_i.t()
    for t, (o_next, f_t, z_t) in enumerate(zip(*rows, strict=True)):
        torch.sigmoid_(torch.addmm(b_f, o, w_f, out=f_t))
        torch.addmm(b_i, o, w_i, out=z_t)
        f, z, d, c_t, u_t, s_t = (a[t] for a in arrays)
        step(f, z, d, c_prev, c_t, u_t, s_t, state, *constants)
        o, c_prev = o_next, c_t
    return spikes, u, c, forget, cand, h


class _FusedGRSN(torch.autograd.Function):
    """Whole-sequence GRSN layer: forward(drives, h0, c0, o0, W_f, b_f, W_i, b_i, beta, surrogate, threshold)
    -> (spikes [T, B, H], h[T-1], c[T-1]).

    Saves u, c, F, I and the drives [T, B, H] (five numbers per neuron-step), the initial state and
    the weights; no graph per step. Backward: one reverse pass (`_grsn_backward_kernel`), then the
    weight gradients as one product over all steps, dL/dW = sum_t dz[t]^T o[t-1].
    """

    @staticmethod
    def forward(ctx, drives, h0, c0, o0, w_f, b_f, w_i, b_i, beta, surrogate, threshold):
        spikes, u, c, forget, cand, h = _grsn_forward(drives, h0, c0, o0, w_f, b_f, w_i, b_i, beta, threshold,
                                                      surrogate.strict)
        ctx.save_for_backward(u, c, forget, cand, drives, h0, c0, o0, w_f, w_i, beta)
        ctx.spike = (surrogate.derivative, getattr(surrogate, surrogate.param_name), threshold, surrogate.strict)
        ctx.set_materialize_grads(False)
        return spikes, h, c[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes, grad_h, grad_c):
        u, c, forget, cand, drives, h0, c0, o0, w_f, w_i, beta = ctx.saved_tensors
        derivative, param, threshold, strict = ctx.spike
        x = u - threshold
        slope = derivative(x, param).contiguous()
        row = u.new_zeros(u.shape[1:])
        carries = [row.clone() if g is None else g.detach().clone(memory_format=torch.contiguous_format)
                   for g in (grad_h, grad_c)]
        grad_o = row.clone()
        grad_s = u.new_zeros((1, *u.shape[1:])) if grad_spikes is None else grad_spikes.contiguous()
        grad_drive, grad_zf, grad_zi = (torch.empty_like(u) for _ in range(3))
        grad_beta = torch.zeros(u.shape[-1], dtype=torch.float64)
        number = _NUMPY_TYPES[u.dtype]
        arrays = (u, c, forget, cand, drives.contiguous(), slope, grad_s, h0.contiguous(), c0.contiguous(), beta,
                  1.0 - beta, w_f.contiguous(), w_i.contiguous())
        _grsn_kernels()[1](*(a.detach().numpy() for a in arrays), number(threshold), number(1), strict,
                           *(a.numpy() for a in (*carries, grad_o, grad_drive, grad_zf, grad_zi, grad_beta)))
        o_prev = torch.cat((o0.detach()[None], heaviside(x[:-1], strict))).flatten(0, 1)
        needs = ctx.needs_input_grad
        weights = [(g.flatten(0, 1).t() @ o_prev, g.sum((0, 1))) for g in (grad_zf, grad_zi)]
        return (grad_drive, *(g if need else None for g, need in zip((*carries, grad_o), needs[1:4])),
                *weights[0], *weights[1], grad_beta.to(beta.dtype) if needs[8] else None, None, None)


def _fused(cell, drives: torch.Tensor, bypassed=()) -> bool:
    """Whether `cell` (a GRSN cell) runs `drives` (its [T, B, H] input to the loop) fused (module docstring).
    `bypassed`: the cell's modules that the fused path does not call; it is not taken if they carry hooks."""
    surrogate = cell.surrogate_function
    return (fused_enabled(surrogate) and surrogate.spiking and drives.device.type == "cpu"
            and drives.dtype in _NUMPY_TYPES and all(p.dtype == drives.dtype for p in cell.parameters())
            and not any(m._forward_hooks or m._forward_pre_hooks for m in bypassed)
            and _grsn_kernels() is not None)


def _run_fused(cell, drives, h, c, o):
    """(spikes, h[T-1], c[T-1]) of `cell` over `drives` from the state (h, c, o): through `_FusedGRSN` when a
    gradient is needed, else the forward loop alone."""
    args = (drives, h, c, o, cell.forget_gate.weight, cell.forget_gate.bias, cell.input_gate.weight,
            cell.input_gate.bias, cell.beta)
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        return _FusedGRSN.apply(*args, cell.surrogate_function, cell.v_threshold)
    spikes, _, c_seq, _, _, h = _grsn_forward(*args, cell.v_threshold, cell.surrogate_function.strict)
    return spikes, h, c_seq[-1].clone()


def _released_forward(forget, cand, c0, v0, threshold: float, strict: bool):
    """The released cell's forward loop, no graph: (spikes, c, m) [T, B, H] (m the membrane before reset)
    and the final v [B, H]."""
    forget, cand = (a.detach().contiguous() for a in (forget, cand))
    spikes, c_seq, m_seq = (torch.empty_like(forget) for _ in range(3))
    c, v = (a.detach().clone(memory_format=torch.contiguous_format) for a in (c0, v0))
    number = _NUMPY_TYPES[forget.dtype]
    _grsn_kernels()[2](_rows(forget), _rows(cand), c.view(-1).numpy(), v.view(-1).numpy(),
                       *(_rows(a) for a in (c_seq, m_seq, spikes)), number(threshold), number(1), number(2), strict)
    return spikes, c_seq, m_seq, v


class _FusedReleasedGRSN(torch.autograd.Function):
    """Whole-sequence released GRSN layer: forward(F, C, c0, v0, surrogate, threshold, current) ->
    (spikes, or c if `current`, [T, B, H]; c[T-1]; v[T-1]).

    Saves F and C (also saved by the sigmoid and relu before it: no extra memory), c and m
    [T, B, H], c[-1]; backward, one reverse pass (`_released_backward_kernel`).
    """

    @staticmethod
    def forward(ctx, forget, cand, c0, v0, surrogate, threshold, current):
        spikes, c_seq, m_seq, v = _released_forward(forget, cand, c0, v0, threshold, surrogate.strict)
        ctx.save_for_backward(forget, cand, c_seq, m_seq, c0)
        ctx.spike = (surrogate.derivative, getattr(surrogate, surrogate.param_name), threshold)
        ctx.current = current
        ctx.set_materialize_grads(False)
        return c_seq if current else spikes, c_seq[-1].clone(), v

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_c, grad_v):
        forget, cand, c_seq, m_seq, c0 = ctx.saved_tensors
        derivative, param, threshold = ctx.spike
        row = forget.new_zeros((1, forget[0].numel()))
        incoming = [row if g is None else g.contiguous().view(len(g), -1) for g in (grad_out, None)]
        grad_s, grad_c_seq = incoming[::-1] if ctx.current else incoming
        carries = [row[0].clone() if g is None else g.detach().reshape(-1).clone() for g in (grad_c, grad_v)]
        grad_f, grad_cand = torch.empty_like(forget), torch.empty_like(forget)
        slope = derivative(m_seq - threshold, param).contiguous()
        number = _NUMPY_TYPES[forget.dtype]
        _grsn_kernels()[3](*(_rows(a.detach()) for a in (forget, cand, c_seq, slope)), grad_s.numpy(),
                           grad_c_seq.numpy(), c0.detach().contiguous().view(-1).numpy(), number(threshold), number(1),
                           number(0.5), *(a.numpy() for a in carries), _rows(grad_f), _rows(grad_cand))
        needs = ctx.needs_input_grad
        states = (g.view_as(c0) if need else None for g, need in zip(carries, needs[2:4]))
        return grad_f, grad_cand, *states, None, None, None


def _run_fused_released(cell, forget, cand, c, v):
    """(output, c[T-1], v[T-1]) of the released cell `cell` from the state (c, v): through
    `_FusedReleasedGRSN` when a gradient is needed, else the forward loop alone."""
    current = cell.output == "current"
    if torch.is_grad_enabled() and any(a.requires_grad for a in (forget, cand, c, v)):
        return _FusedReleasedGRSN.apply(forget, cand, c, v, cell.surrogate_function, cell.v_threshold, current)
    spikes, c_seq, _, v = _released_forward(forget, cand, c, v, cell.v_threshold, cell.surrogate_function.strict)
    return c_seq if current else spikes, c_seq[-1].clone(), v


class GRSNCell(base.MemoryModule):
    """One layer of gated recurrent spiking neurons (module docstring), stepped in multi-step mode.

    Input `[T, B, input_size]` (time-first), output spikes `[T, B, hidden_size]`. Memories h
    (membrane after reset), c (gated current) and o (last spikes), each `[B, hidden_size]`,
    persist between calls until `functional.reset_net`.
    Multi-step calls run fused where they can (module docstring, "Fused GRSN path"): one autograd
    Function over the sequence, whose two gate products per step still run in the time loop since
    they read the spikes o[t-1]; elsewhere the per-step code below (`step`), with a graph per step.
    """

    def __init__(self, input_size: int, hidden_size: int, *, v_threshold: float = 1.0, surrogate_function=None):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.v_threshold = float(v_threshold)
        self.surrogate_function = ArcTan(alpha=2.0) if surrogate_function is None else surrogate_function
        self.forget_gate = nn.Linear(hidden_size, hidden_size)
        self.input_gate = nn.Linear(hidden_size, hidden_size)
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.beta_raw = nn.Parameter(torch.zeros(hidden_size))
        _uniform_init((self.forget_gate, self.input_gate, self.input_proj), hidden_size)
        self.register_memory("h", 0.0)
        self.register_memory("c", 0.0)
        self.register_memory("o", 0.0)
        self.step_mode = "m"

    @property
    def beta(self) -> torch.Tensor:
        """The per-neuron decay sigmoid(beta_raw), `[hidden_size]`."""
        return torch.sigmoid(self.beta_raw)

    def gated_current(self, c: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        """c[t] = F c[t-1] + (1 - F) I with F = sigmoid(W_f o + b_f), I = relu(W_i o + b_i)."""
        forget = torch.sigmoid(self.forget_gate(o))
        candidate = torch.relu(self.input_gate(o))
        return forget * c + (1.0 - forget) * candidate

    def step(self, drive: torch.Tensor, h: torch.Tensor, c: torch.Tensor, o: torch.Tensor):
        """One update from the projected input `drive` = W_x x + b_x: returns (o[t], h[t], c[t])."""
        c = self.gated_current(c, o)
        beta = self.beta
        u = beta * h + (1.0 - beta) * (drive + c)
        spike = self.surrogate_function(u - self.v_threshold)
        return spike, u - self.v_threshold * spike, c

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        drives = self.input_proj(x_seq)
        h = _state(self.h, drives[0])
        c, o = _state(self.c, h), _state(self.o, h)
        if _fused(self, drives, (self.forget_gate, self.input_gate)):
            spikes, self.h, self.c = _run_fused(self, drives, h, c, o)
            self.o = spikes[-1]
            return spikes
        spikes = []
        for drive in drives.unbind(0):
            o, h, c = self.step(drive, h, c, o)
            spikes.append(o)
        self.h, self.c, self.o = h, c, o
        return torch.stack(spikes)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step_forward(x[None])[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, v_threshold={self.v_threshold}"


class InputGatedGRSNCell(base.MemoryModule):
    """The authors' released GRSN layer (module docstring, variant (a)), stepped in multi-step mode.

    Input `[T, B, input_size]`, output `[T, B, hidden_size]`: spikes o (output="spikes") or the
    gated current c (output="current", what a lower layer of the released stack passes up).
    Memories c (gated current) and v (membrane after reset) persist between calls until
    `functional.reset_net`. Both gates depend on the input only, so they are computed for all
    steps at once; the time loop is element-wise, and runs fused where it can (module docstring,
    "Fused released cell").
    """

    def __init__(self, input_size: int, hidden_size: int, *, v_threshold: float = 1.0, surrogate_function=None,
                 output: str = "spikes"):
        super().__init__()
        if output not in ("spikes", "current"):
            raise ValueError(f"output must be 'spikes' (last layer) or 'current' (a lower layer), got {output!r}")
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.v_threshold = float(v_threshold)
        self.output = output
        self.surrogate_function = ArcTan(alpha=2.0) if surrogate_function is None else surrogate_function
        self.forget_gate = nn.Linear(input_size, hidden_size)
        self.input_gate = nn.Linear(input_size, hidden_size)
        _uniform_init((self.forget_gate, self.input_gate), hidden_size)
        self.register_memory("c", 0.0)
        self.register_memory("v", 0.0)
        self.step_mode = "m"

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        forget, candidate = torch.sigmoid(self.forget_gate(x_seq)), torch.relu(self.input_gate(x_seq))
        c = _state(self.c, forget[0])
        v = _state(self.v, c)
        if _fused(self, forget):
            out, self.c, self.v = _run_fused_released(self, forget, candidate, c, v)
            return out
        outs = []
        for f, cand in zip(forget.unbind(0), candidate.unbind(0)):
            c = f * c + (1.0 - f) * cand
            v = v + (c - v) / 2.0
            spike = self.surrogate_function(v - self.v_threshold)
            v = v - self.v_threshold * spike
            outs.append(spike if self.output == "spikes" else c)
        self.c, self.v = c, v
        return torch.stack(outs)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step_forward(x[None])[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, v_threshold={self.v_threshold}, output={self.output!r}"


class LIFCell(nn.Module):
    """Linear input projection + LIF (tau 2, decay_input, V_th 1, arctan), the paper's LIF baseline.

    Input `[T, B, input_size]`, output spikes `[T, B, hidden_size]`; the membrane lives in the
    `snnlib.neurons.LIFNode` child (reset by `functional.reset_net`). v_reset=0.0: hard reset
    (the authors' refactor), None: soft reset (their released code).
    """

    def __init__(self, input_size: int, hidden_size: int, *, v_reset: float | None = 0.0, surrogate_function=None):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.linear_ih = nn.Linear(input_size, hidden_size)
        _uniform_init((self.linear_ih,), hidden_size)
        surrogate = ArcTan(alpha=2.0) if surrogate_function is None else surrogate_function
        self.neuron = LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=v_reset, surrogate_function=surrogate)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        return self.neuron(self.linear_ih(x_seq))


_CELLS = {"grsn": GRSNCell, "igrsn": InputGatedGRSNCell, "lif": LIFCell}


class SpikingCore(nn.Module):
    """A stack of spiking layers (GRSN, released GRSN "igrsn" or LIF) stepped under TAP or woTAP (module docstring).

    Input `[T, B, input_size]`, one step per environment step; output `[T, B, hidden_size]`:
    the last layer's spikes (TAP) or spike rates over the sub-steps (woTAP, readout="mean").
    `cell_kwargs` go to every cell (e.g. v_reset=None for the LIF's soft reset). Parameter names
    follow the authors' code (`cells.<l>.forget_gate / input_gate / input_proj / beta_raw` for
    GRSN, `cells.<l>.linear_ih` for LIF), so their state dicts load directly.
    """

    def __init__(self, input_size: int, hidden_size: int, *, neuron: str = "grsn", num_layers: int = 1,
                 paradigm: str = "tap", substeps: int = 4, reset_each_step: bool = True, readout: str = "mean",
                 **cell_kwargs):
        super().__init__()
        if neuron not in _CELLS:
            raise ValueError(f"neuron must be one of {sorted(_CELLS)}, got {neuron!r}")
        if paradigm not in ("tap", "wotap"):
            raise ValueError(f"paradigm must be 'tap' (one update per env step) or 'wotap', got {paradigm!r}")
        if readout not in ("mean", "last"):
            raise ValueError(f"readout must be 'mean' (rate over sub-steps) or 'last', got {readout!r}")
        flag("reset_each_step", reset_each_step)
        positive_int("num_layers", num_layers)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.neuron_kind, self.paradigm, self.readout = neuron, paradigm, readout
        self.substeps = 1 if paradigm == "tap" else positive_int("substeps", substeps)
        self.reset_each_step = reset_each_step
        sizes = [input_size] + [hidden_size] * num_layers
        passes_current = [neuron == "igrsn" and layer < num_layers - 1 for layer in range(num_layers)]
        self.cells = nn.ModuleList(
            _CELLS[neuron](a, b, **cell_kwargs, **({"output": "current"} if current else {}))
            for a, b, current in zip(sizes[:-1], sizes[1:], passes_current))

    def _substeps(self, layer: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
        """Hold every step's input for K sub-steps: [T, B, in] -> [T, B, out] (rate or last spikes)."""
        steps, batch = x_seq.shape[:2]
        if self.reset_each_step:  # every environment step from a fresh state: all steps at once
            functional.reset_net(layer)
            held = x_seq.reshape(1, steps * batch, -1).expand(self.substeps, -1, -1)
            spikes = layer(held)
            functional.reset_net(layer)
            out = spikes.mean(0) if self.readout == "mean" else spikes[-1]
            return out.reshape(steps, batch, -1)
        outs = []
        for x in x_seq.unbind(0):  # state carried from sub-step to sub-step and step to step
            spikes = layer(x[None].expand(self.substeps, -1, -1))
            outs.append(spikes.mean(0) if self.readout == "mean" else spikes[-1])
        return torch.stack(outs)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        for layer in self.cells:
            x_seq = layer(x_seq) if self.paradigm == "tap" else self._substeps(layer, x_seq)
        return x_seq

    def extra_repr(self) -> str:
        extra = "" if self.paradigm == "tap" else (
            f", substeps={self.substeps}, reset_each_step={self.reset_each_step}, readout={self.readout!r}")
        return f"neuron={self.neuron_kind!r}, paradigm={self.paradigm!r}{extra}"


class GRUCore(base.MemoryModule):
    """GRU (module docstring) from nn.Linear layers; input `[T, B, input_size]`, output h `[T, B, hidden_size]`.

    The hidden state `h` is a memory: it persists between calls until `functional.reset_net`.
    Initialisation as torch.nn.GRU: uniform in [-1/sqrt(H), 1/sqrt(H)].
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.input_map = nn.Linear(input_size, 3 * hidden_size)
        self.hidden_map = nn.Linear(hidden_size, 3 * hidden_size)
        _uniform_init((self.input_map, self.hidden_map), hidden_size)
        self.register_memory("h", 0.0)
        self.step_mode = "m"

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        inputs = self.input_map(x_seq)
        h = torch.zeros_like(inputs[0, :, : self.hidden_size]) if not isinstance(self.h, torch.Tensor) else self.h
        outs = []
        for gi in inputs.unbind(0):
            i_r, i_z, i_n = gi.chunk(3, dim=-1)
            h_r, h_z, h_n = self.hidden_map(h).chunk(3, dim=-1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            h = (1.0 - z) * torch.tanh(i_n + r * h_n) + z * h
            outs.append(h)
        self.h = h
        return torch.stack(outs)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step_forward(x[None])[0]


class FeedForwardCore(nn.Module):
    """The memoryless baseline: y[t] = tanh(W x[t] + b) per layer, `[T, B, input_size]` -> `[T, B, hidden_size]`.

    No state: every step is mapped on its own, so what it cannot do needs memory.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1):
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        sizes = [input_size] + [hidden_size] * positive_int("num_layers", num_layers)
        self.layers = nn.Sequential(*(m for a, b in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(a, b), nn.Tanh())))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        time_first(x_seq, self.input_size, _SEQUENCE_HINT)
        return self.layers(x_seq)


def make_core(kind: str, input_size: int, hidden_size: int, *, num_layers: int = 1, substeps: int = 4,
              reset_each_step: bool = True) -> nn.Module:
    """One of `CORE_KINDS`: "mlp", "gru", or "<neuron>-<paradigm>" with neuron lif, grsn or igrsn and
    paradigm tap or wotap."""
    if kind == "mlp":
        return FeedForwardCore(input_size, hidden_size, num_layers)
    if kind == "gru":
        if num_layers != 1:
            raise ValueError("the GRU core has one layer; pass num_layers=1")
        return GRUCore(input_size, hidden_size)
    if kind not in CORE_KINDS:
        raise ValueError(f"unknown core {kind!r}; choose one of {CORE_KINDS}")
    neuron, paradigm = kind.split("-")
    return SpikingCore(input_size, hidden_size, neuron=neuron, num_layers=num_layers, paradigm=paradigm,
                       substeps=substeps, reset_each_step=reset_each_step)


def reset_where(net: nn.Module, done: torch.Tensor) -> None:
    """Reset the state of the batch rows where `done` (bool `[B]`) is True, in every memory of `net`.

    Used when parallel episodes end at different steps. Rows are set to each memory's reset value
    out of place (safe under autograd); memories not yet materialised (floats) are left alone.
    """
    if not isinstance(done, torch.Tensor) or done.dtype != torch.bool or done.dim() != 1:
        raise TypeError("done must be a bool tensor [B] (True where the episode ended)")
    for module in net.modules():
        if not isinstance(module, base.MemoryModule):
            continue
        for name, value in module._memories.items():
            if not isinstance(value, torch.Tensor):
                continue
            if value.shape[0] != done.shape[0]:
                raise ValueError(f"memory {name!r} has batch size {value.shape[0]}, done has {done.shape[0]}")
            mask = done.to(value.device).view(-1, *([1] * (value.dim() - 1)))
            module._memories[name] = torch.where(mask, torch.as_tensor(module._memories_rv[name]).to(value), value)
