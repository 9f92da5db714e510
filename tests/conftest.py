"""Fixtures shared by several test files."""

import pytest

from snnlib import neurons


@pytest.fixture(params=["numba", "torch"])
def backend(request, monkeypatch):
    """Run the test on the numba kernels, or on the PyTorch loops (numba switched off)."""
    if request.param == "torch":
        monkeypatch.setattr(neurons, "_numba_kernels", lambda: None)
    else:
        assert neurons._numba_kernels() is not None, "numba is a dependency of snnlib"
    return request.param
