"""Triton kernels for the fused neurons' loops: the CUDA back end of `snnlib.neurons`.

On CPU the fused neurons' two loops (forward over time, backward in reverse) run as numba kernels
(`snnlib.neurons._forward_kernel`, `_backward_kernel`). On a CUDA device, in float32 or float64 with
a spiking surrogate, the same two loops run here as Triton kernels, one program per block of
`BLOCK` neurons, each program walking all T steps with its neurons' state in registers:

    forward, per step t:   H[t] = charge(V[t-1], X[t])             (IF, LIF, PLIF or decay factor)
                           S[t] = H[t] >= V_th  (> if strict)
                           V[t] = H[t] - V_th S[t]  (soft)  or  S[t] ? V_reset : H[t]  (hard)
    backward, t = T-1..0:  G[t] = dL/dS[t] g'(H[t] - V_th) + dL/dH[t] + (dL/dV[t] + C[t]) dV[t]/dH[t]
                           C[t-1] = k G[t],  dL/dX[t] = a G[t],  acc += G[t] dH[t]/dq  (PLIF, decay)

with exactly the numba kernels' operations in the same order (see `snnlib.neurons` for the
charge of each kind, dV/dH, k, a and dH/dq), so both back ends give the same spikes, H and V bit
for bit and the same gradients. Two things keep the GPU arithmetic equal to the CPU's: divisions
are asked for IEEE round-to-nearest (`tl.math.fdiv(..., ieee_rounding=True)`), not left to the
compiler's choice, and the kernels are compiled with `enable_fp_fusion=False`, so that `a * b + c` is
a multiply then an add, never one fused multiply-add with a single rounding. Constants (tau,
beta, thresholds, k, a, the surrogate's per-step constants) are passed as tensors in the data's
dtype: a Python float argument would reach the kernel as float32 and round float64 constants.

Surrogates: snnlib's ArcTan, Rectangle and Triangle (per-step widths included) are evaluated in
the backward kernel from the constants of `_Dynamics.kernel_gradient`; any other spiking
surrogate's slope is computed by its own `derivative` for the whole sequence on the device first
(one [T, M] tensor) and read by the kernel.

Testing without a GPU. Triton's interpreter (environment variable TRITON_INTERPRET=1, set before
this module is imported) runs the same kernels on CPU tensors through numpy; tests/test_triton_neurons.py
checks them there against the numba kernels. Departure: no `torch.compile` path; the Triton
kernels are the peer of spikingjelly's own Triton LIF. Speed on a GPU: see
benchmarks/lif_layer.py --device cuda.
"""

import os

import torch
import triton
import triton.language as tl

__all__ = ["available", "backward", "forward"]

BLOCK = 256  # neurons per program
_TYPES = (torch.float32, torch.float64)
# Compile options: no fused multiply-add (the CPU kernels round after every operation). The interpreter
# takes no compile options.
_OPTIONS = {} if os.environ.get("TRITON_INTERPRET") == "1" else {"enable_fp_fusion": False}


def available(dyn, x: torch.Tensor) -> bool:
    """True if this layer's loops run here: a spiking surrogate and float32/float64 on a CUDA device
    (or on any device under Triton's interpreter)."""
    on_device = x.device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    return on_device and x.dtype in _TYPES and dyn.spiking


def _constants(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=like.dtype, device=like.device)


@triton.jit
def _div(x, y):
    """x / y rounded to nearest (IEEE), as on the CPU."""
    return tl.math.fdiv(x, y, ieee_rounding=True)


@triton.jit
def _charge(v, x, scale, rest, KIND: tl.constexpr, DECAY_INPUT: tl.constexpr):
    """H from V[t-1] and X[t]: kind 0 IF, 1 LIF (scale tau), 2 PLIF (scale q), 3 decay factor (scale beta)."""
    if KIND == 3:
        h = v * scale + x
    elif KIND == 0:
        h = v + x
    else:
        u = v - rest
        if DECAY_INPUT:
            d = x - u
        else:
            d = u
        if KIND == 1:
            d = _div(d, scale)
        else:
            d = d * scale
        if DECAY_INPUT:
            h = v + d
        else:
            h = v - d + x
    return h


@triton.jit
def _fire(h, threshold, STRICT: tl.constexpr):
    if STRICT:
        s = h > threshold
    else:
        s = h >= threshold
    return s


@triton.jit
def _reset(h, s, threshold, rest, SOFT: tl.constexpr):
    if SOFT:
        v = tl.where(s, h - threshold, h)
    else:
        v = tl.where(s, rest, h)
    return v


@triton.jit
def _forward_kernel(
    x_ptr, v_ptr, s_ptr, h_ptr, vseq_ptr, const_ptr, steps, size,
    h_stride, vseq_stride,
    KIND: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr, STRICT: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
):
    """Forward loop for the neurons of one block: x [T, M] -> spikes [T, M], H rows, V rows, state v [M] in place.
    h_stride / vseq_stride are M (one row per step) or 0 (one row, overwritten at every step)."""
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < size
    scale = tl.load(const_ptr + 0)
    rest = tl.load(const_ptr + 1)
    threshold = tl.load(const_ptr + 2)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    for t in range(steps):
        x = tl.load(x_ptr + t * size + offs, mask=mask, other=0.0)
        h = _charge(v, x, scale, rest, KIND, DECAY_INPUT)
        s = _fire(h, threshold, STRICT)
        v = _reset(h, s, threshold, rest, SOFT)
        tl.store(s_ptr + t * size + offs, s.to(s_ptr.dtype.element_ty), mask=mask)
        tl.store(h_ptr + t * h_stride + offs, h, mask=mask)
        tl.store(vseq_ptr + t * vseq_stride + offs, v, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)


@triton.jit
def _slope(h, threshold, c1, c2, slope_ptr, index, mask, SURROGATE: tl.constexpr):
    """g'(H - V_th): 0 ArcTan, 1 Rectangle, 2 Triangle (constants c1, c2 as in the numba kernel), -1 read."""
    if SURROGATE == 0:
        z = c1 * (h - threshold)
        g = _div(c2, 1.0 + z * z)
    elif SURROGATE == 1:
        g = tl.where(tl.abs(h - threshold) < c1, _div(1.0, c2), 0.0)
    elif SURROGATE == 2:
        g = tl.maximum(0.0, 1.0 - tl.abs(h - threshold) * c1) * c2
    else:
        g = tl.load(slope_ptr + index, mask=mask, other=0.0)
    return g


@triton.jit
def _backward_kernel(
    h_ptr, slope_ptr, gs_ptr, gh_ptr, gv_ptr, carry_ptr, gx_ptr, v0_ptr, acc_ptr, const_ptr, c1_ptr, c2_ptr,
    steps, size, gs_stride, gh_stride, gv_stride, c_stride,
    KIND: tl.constexpr, DECAY_INPUT: tl.constexpr, SOFT: tl.constexpr, STRICT: tl.constexpr,
    DETACH: tl.constexpr, SURROGATE: tl.constexpr, LEARN: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    """Reverse loop for the neurons of one block (the numba `_backward_kernel` over all steps at once).
    Incoming gradients have stride M (one row per step) or 0 (one row for every step); carry [M] holds
    dL/dV[T-1] on entry and dL/dV[-1] on exit; acc [M] accumulates G dH/dq when LEARN."""
    offs = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < size
    scale = tl.load(const_ptr + 0)
    rest = tl.load(const_ptr + 1)
    threshold = tl.load(const_ptr + 2)
    k = tl.load(const_ptr + 3)
    a = tl.load(const_ptr + 4)
    carry = tl.load(carry_ptr + offs, mask=mask, other=0.0)
    acc = tl.load(acc_ptr + offs, mask=mask, other=0.0)
    v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    for j in range(steps):
        t = steps - 1 - j
        c1 = tl.load(c1_ptr + t * c_stride)
        c2 = tl.load(c2_ptr + t * c_stride)
        h = tl.load(h_ptr + t * size + offs, mask=mask, other=0.0)
        g = _slope(h, threshold, c1, c2, slope_ptr, t * size + offs, mask, SURROGATE)
        s = _fire(h, threshold, STRICT)
        through_reset = g  # dS/dH as the reset sees it
        if DETACH:
            through_reset = 0.0 * g
        if SOFT:
            dv_dh = 1.0 - threshold * through_reset
        else:
            dv_dh = tl.where(s, 0.0, 1.0) + (rest - h) * through_reset
        gs = tl.load(gs_ptr + t * gs_stride + offs, mask=mask, other=0.0)
        gh = tl.load(gh_ptr + t * gh_stride + offs, mask=mask, other=0.0)
        gv = tl.load(gv_ptr + t * gv_stride + offs, mask=mask, other=0.0)
        grad_h = gs * g + gh + (gv + carry) * dv_dh
        carry = k * grad_h
        tl.store(gx_ptr + t * size + offs, a * grad_h, mask=mask)
        if LEARN:
            h_prev = tl.load(h_ptr + tl.maximum(t - 1, 0) * size + offs, mask=mask, other=0.0)
            v_prev = tl.where(t == 0, v0, _reset(h_prev, _fire(h_prev, threshold, STRICT), threshold, rest, SOFT))
            if KIND == 3:
                acc += grad_h * v_prev
            elif DECAY_INPUT:
                acc += grad_h * _div(h - v_prev, scale)
            else:
                acc += grad_h * (rest - v_prev)
    tl.store(carry_ptr + offs, carry, mask=mask)
    tl.store(acc_ptr + offs, acc, mask=mask)


def _grid(size: int) -> tuple:
    return (triton.cdiv(size, BLOCK),)


def forward(dyn, x_seq, v, keep_h: bool, store_v_seq: bool):
    """The forward loop over x_seq [T, B, ...] from state v [B, ...], as `snnlib.neurons._forward`:
    (spikes, final V, H [T, ...] or its last step [1, ...], V [T, ...] or None), all new tensors."""
    shape, steps = x_seq.shape, x_seq.shape[0]
    x = x_seq.detach().contiguous()
    state = v.detach().clone(memory_format=torch.contiguous_format)
    size = state.numel()
    spikes = torch.empty_like(x)
    h_seq = torch.empty_like(x) if keep_h else x.new_empty((1, *shape[1:]))
    v_seq = torch.empty_like(x) if store_v_seq else x.new_empty((1, *shape[1:]))
    kind, decay_input, scale, rest, threshold, soft, strict = dyn.kernel_neuron()
    _forward_kernel[_grid(size)](
        x, state, spikes, h_seq, v_seq, _constants((scale, rest, threshold), x), steps, size,
        size if keep_h else 0, size if store_v_seq else 0,
        KIND=kind, DECAY_INPUT=bool(decay_input), SOFT=bool(soft), STRICT=bool(strict), BLOCK_SIZE=BLOCK,
        **_OPTIONS,
    )
    return spikes, state, h_seq, v_seq if store_v_seq else None


def _incoming(grad, like: torch.Tensor) -> tuple[torch.Tensor, int]:
    """An incoming gradient as (contiguous tensor, row stride): [T, M] and M, or one row and 0
    (zeros for None; the first step if it is the same at every step, as after .sum())."""
    size = like[0].numel()
    if grad is None:
        return like.new_zeros(size), 0
    if grad.stride(0) == 0:
        return grad[0].reshape(-1).contiguous(), 0
    return grad.reshape(grad.shape[0], -1).contiguous(), size


def backward(dyn, h_seq, v_init, grads, need_q: bool):
    """One reverse pass, as `snnlib.neurons._backward`: (dL/dX [T, B, ...], dL/dV[-1] [B, ...], dL/dq or None)."""
    grad_spikes, grad_v, grad_v_seq, grad_h_seq = grads
    steps, size = h_seq.shape[0], h_seq[0].numel()
    h = h_seq.contiguous()
    grad_x = torch.empty_like(h)
    carry = h.new_zeros(size) if grad_v is None else grad_v.reshape(-1).clone()
    acc = h.new_zeros(size)
    v0 = h.new_zeros(size) if v_init is None else v_init.reshape(-1).contiguous()
    kind, decay_input, scale, rest, threshold, soft, strict = dyn.kernel_neuron()
    detach, k, a, _, surrogate, c1, c2 = dyn.kernel_gradient(steps)
    slope = h if surrogate >= 0 else dyn.slope(h, 0)  # h: a placeholder, not read
    (gs, gs_stride), (gh, gh_stride), (gv, gv_stride) = (_incoming(g, h) for g in (grad_spikes, grad_h_seq, grad_v_seq))
    c1, c2 = (torch.from_numpy(c).to(h.device) for c in (c1, c2))
    _backward_kernel[_grid(size)](
        h, slope, gs, gh, gv, carry, grad_x, v0, acc, _constants((scale, rest, threshold, k, a), h), c1, c2,
        steps, size, gs_stride, gh_stride, gv_stride, 1 if len(c1) > 1 else 0,
        KIND=kind, DECAY_INPUT=bool(decay_input), SOFT=bool(soft), STRICT=bool(strict), DETACH=bool(detach),
        SURROGATE=surrogate, LEARN=need_q and kind >= 2, BLOCK_SIZE=BLOCK, **_OPTIONS,
    )
    return grad_x, carry.view(h_seq.shape[1:]), acc.sum(dtype=torch.float64) if need_q else None
