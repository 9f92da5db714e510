"""The numba loops of the fused skip-recurrent layer (`snnlib.methods.skip_recurrent`), over the whole sequence.

Imported by `skip_recurrent._kernels()` on first use; raises ImportError without numba or where
torch's CPU library does not export the BLAS routines sgemm_ / dgemm_ (the layer then runs step
by step). The recurrent product calls those routines, the ones torch.mm calls on the CPU (MKL in
the x86 wheels), with torch.mm's arguments, so that r W^T has the per-step path's bits. The step
kernels live in skip_recurrent.py beside the equations; here they are compiled and looped over.
A module of its own so that numba's disk cache finds the loops and the BLAS handles as globals.
"""

import ctypes
from pathlib import Path

import llvmlite.binding
import numpy as np
import torch
from numba import types

from snnlib.methods import skip_recurrent as _sr
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
step_forward, step_backward, mix, recompute, mix_backward = jit_kernels(
    _sr._step_forward, _sr._step_backward, _sr._mix, _sr._recompute, _sr._mix_backward)


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
