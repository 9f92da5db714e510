"""Fixtures shared by several test files.

Triton's interpreter: TRITON_INTERPRET=1 is set here, before anything imports triton's kernels, so
that `snnlib.triton_neurons` (the CUDA back end of the fused neurons) runs its kernels on CPU
tensors through numpy, and the `backend` fixture can test it on machines without a GPU.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

from snnlib import neurons  # noqa: E402


@pytest.fixture(params=["numba", "torch", "triton"])
def backend(request, monkeypatch):
    """Run the test on the numba kernels, on the PyTorch loops (numba switched off), or on the Triton
    kernels (the CUDA back end) under Triton's interpreter on CPU."""
    if request.param == "numba":
        assert neurons._numba_kernels() is not None, "numba is a dependency of snnlib"
        return request.param
    monkeypatch.setattr(neurons, "_numba_kernels", lambda: None)
    if request.param == "triton":
        kernels = neurons._triton_kernels()
        assert kernels is not None, "triton is a test dependency: pip install the lock (make setup)"
        monkeypatch.setattr(neurons, "_on_triton", lambda dyn, x: kernels.available(dyn, x))
    return request.param
