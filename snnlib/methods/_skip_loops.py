"""The numba loops of the fused skip-recurrent layer (`snnlib.methods.skip_recurrent`), over the whole sequence.

Imported by `skip_recurrent._kernels()` on first use; raises ImportError without numba or where
torch's CPU library does not export the BLAS routines sgemm_ / dgemm_ (the layer then runs step
by step). The recurrent product calls those routines, the ones torch.mm calls on the CPU (MKL in
the x86 wheels), with torch.mm's arguments, so that r W^T has the per-step path's bits. The
equations are in skip_recurrent's docstring. All compiled code of the layer is in this one file:
numba's disk cache checks only the source file of the function it loads, so a loop here calling
a kernel kept in another file would keep running the old kernel after that file changed (the
loops need the BLAS handles as module globals for the cache to be used at all).
"""

import ctypes
from pathlib import Path

import llvmlite.binding
import numpy as np
import torch
from numba import types

from snnlib.neurons import jit_kernels


def _blas_routines():
    """(sgemm, dgemm) as numba external functions bound to torch's own BLAS routines."""
    found = sorted(Path(torch.__file__).parent.joinpath("lib").glob("libtorch_cpu.*"))
    try:
        library = ctypes.CDLL(str(found[0]))
        addresses = [ctypes.cast(getattr(library, name), ctypes.c_void_p).value for name in ("sgemm_", "dgemm_")]
    except (IndexError, OSError, AttributeError) as error:
        raise ImportError(f"torch's CPU library exports no sgemm_/dgemm_ here ({error})") from error
    routines = []
    for name, address in zip(("sgemm_", "dgemm_"), addresses):
        llvmlite.binding.add_symbol(name, address)
        routines.append(types.ExternalFunction(name, types.void(*[types.voidptr] * 13)))
    return routines


_sgemm, _dgemm = _blas_routines()


def _step_forward(rec, c, v, spikes, h, t, constants, hard, recurrent):
    """numba kernel, one step t: I = rec + c[t] (c[t] alone if not recurrent), H = v decay + I,
    S = (H - theta >= 0) into spikes[t], H into h[t] (h[0] if h has one row), reset v in place.
    The per-step module's operations in its order (soft: v - theta S; hard: S 0 + (1 - S) H)."""
    decay, threshold = constants[0], constants[1]
    zero = decay - decay
    one = zero + 1
    c_t, s_t, h_t = c[t], spikes[t], h[t % h.shape[0]]
    for i in range(v.shape[0]):
        u = v[i] * decay + (rec[i] + c_t[i] if recurrent else c_t[i])
        s = one if u - threshold >= zero else zero
        v[i] = s * zero + (one - s) * u if hard else u - threshold * s
        s_t[i] = s
        h_t[i] = u


def _step_backward(h, grad_spikes, pending, t, carry, grad_current, constants, hard, detach):
    """numba kernel, one reverse step t: G = dL/dS g + carry dV/dH into grad_current[t], carry <- decay G.

    dL/dS[t] = grad_spikes[t] + pending (the later steps' use of S[t]; pending is zeroed for reuse),
    carry dL/dV[t] on entry and dL/dV[t-1] on exit; g = c max(0, 1 - c |H - theta|), c = 2 / width
    (Triangle); S recomputed from H as in the forward; dV/dH = 1 - theta g (soft) or 1 - S - H g
    (hard), g -> 0 if detach.
    """
    decay, threshold, c = constants[0], constants[1], constants[2]
    zero = decay - decay
    one = zero + 1
    h_t, gs_t, g_t = h[t], grad_spikes[t], grad_current[t]
    for i in range(carry.shape[0]):
        z = h_t[i] - threshold
        g = max(zero, one - abs(z) * c) * c
        through = zero if detach else g
        dv_dh = (zero if z >= zero else one) - h_t[i] * through if hard else one - threshold * through
        grad = (gs_t[i] + pending[i]) * g + carry[i] * dv_dh
        pending[i] = zero
        g_t[i] = grad
        carry[i] = decay * grad


def _mix(weights, spikes, past, t, out, block):
    """numba kernel: out = sum_j weights[j] S[t-1-j] (j < K < 256; S[u] = past[K + u] for u < 0), in
    the order of torch.sum over dim 0 of the stacked products (ATen's cascade sum on CPU): blocks of
    16 terms, each summed from 0, added one after another; the last, partial block summed from 0
    and added last. That is ATen's order for the columns it sums in whole groups of vectors (rows
    of a multiple of 64 elements); its leftover columns use other orders, so the fused path takes
    only such rows."""
    zero = weights[0] - weights[0]
    out[:] = zero
    block[:] = zero
    for j in range(weights.shape[0]):
        u = t - 1 - j
        w, s = weights[j], spikes[u] if u >= 0 else past[past.shape[0] + u]
        for i in range(out.shape[0]):
            block[i] += w * s[i]
        if j % 16 == 15:
            for i in range(out.shape[0]):
                out[i] += block[i]
            block[:] = zero
    for i in range(out.shape[0]):
        out[i] = block[i] + out[i]


def _recompute(h, past, u, threshold, out):
    """numba kernel: out = S[u], from H as in the forward (u >= 0) or the carried vector past[K + u]."""
    if u < 0:
        out[:] = past[past.shape[0] + u]
        return
    zero = threshold - threshold
    one = zero + 1
    h_u = h[u]
    for i in range(out.shape[0]):
        out[i] = one if h_u[i] - threshold >= zero else zero


def _mix_backward(weights, recent, t, dr, pending, r, products):
    """numba kernel, the mixture's share of one reverse step: pending[u % K] += weights[j] dr (dL/dS of
    the K earlier steps u = t-1-j), r = sum_j weights[j] S[u] (for dL/dW, any order), and
    products[j] += S[u] dr (summed over neurons after the loop: dL/dweights[j]); recent[u % K] = S[u]."""
    span = weights.shape[0]
    r[:] = weights[0] - weights[0]
    for j in range(span):
        u = (t - 1 - j) % span
        w, s, g, p = weights[j], recent[u], pending[u], products[j]
        for i in range(dr.shape[0]):
            g[i] += w * dr[i]
            r[i] += w * s[i]
            p[i] += s[i] * dr[i]


step_forward, step_backward, mix, recompute, mix_backward = jit_kernels(
    _step_forward, _step_backward, _mix, _recompute, _mix_backward)


def _gemm(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """c = op(a) op(b) + beta c, BLAS's column-major gemm (a row-major [rows, cols] array is its
    column-major transpose, leading dimension cols)."""
    ints = np.array([ord("T") if transpose_a else ord("N"), ord("T") if transpose_b else ord("N"),
                     m, n, k, lda, ldb, ldc], np.int32)
    scalars = np.empty(2, c.dtype)
    scalars[0], scalars[1] = 1, beta
    args = (ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes, ints[3:].ctypes, ints[4:].ctypes, scalars.ctypes,
            a.ctypes, ints[5:].ctypes, b.ctypes, ints[6:].ctypes, scalars[1:].ctypes, c.ctypes, ints[7:].ctypes)
    if c.itemsize == 4:
        _sgemm(*args)
    else:
        _dgemm(*args)


(gemm,) = jit_kernels(_gemm)


def _forward(c, weight, mixture, lag, v, past, spikes, h, constants, hard):
    """The whole forward: per step the recurrent input r (S[t - lag], or the mixture
    if `mixture` is not empty), rec = r W^T as torch.mm(r, W.t()) computes it, then the step."""
    steps, size = c.shape
    width = weight.shape[0]
    rec, mixed, block = np.zeros(size, c.dtype), np.empty(size, c.dtype), np.empty(size, c.dtype)
    for t in range(steps):
        if width:
            u = t - lag
            r = mixed if mixture.shape[0] else spikes[u] if u >= 0 else past[past.shape[0] + u]
            if mixture.shape[0]:
                mix(mixture, spikes, past, t, mixed, block)
            gemm(True, False, width, size // width, width, weight, width, r, width, 0, rec, width)
        step_forward(rec, c, v, spikes, h, t, constants, hard, width > 0)


def _backward(h, grad_spikes, carry, grad_current, weight, grad_weight, mixture, products, lag, past, pending,
              recent, constants, hard, detach):
    """The whole backward (equations: skip_recurrent's docstring). pending[u % K] gathers dL/dS[u] from the
    steps after u until step u reads it; recent[u % K] holds S[u] for the K steps before t."""
    steps, size = h.shape
    width, span = weight.shape[0], pending.shape[0]
    dr, mixed = np.empty(size, h.dtype), np.empty(size, h.dtype)
    for u in range(steps - 1 - span, steps - 1 if width else steps - 1 - span):
        recompute(h, past, u, constants[1], recent[u % span])
    for t in range(steps - 1, -1, -1):
        step_backward(h, grad_spikes, pending[t % span], t, carry, grad_current, constants, hard, detach)
        if not width:
            continue
        g_t = grad_current[t]
        gemm(False, False, width, size // width, width, weight, width, g_t, width, 0, dr, width)  # dL/dr = G W
        u = (t - lag) % span
        if mixture.shape[0]:
            mix_backward(mixture, recent, t, dr, pending, mixed, products)
        else:
            pending_u = pending[u]
            for i in range(size):
                pending_u[i] += dr[i]
        r = mixed if mixture.shape[0] else recent[u]
        gemm(False, True, width, width, size // width, r, width, g_t, width, 1, grad_weight, width)  # += G^T r
        if t:
            recompute(h, past, t - 1 - span, constants[1], recent[(t - 1 - span) % span])


forward, backward = jit_kernels(_forward, _backward)
