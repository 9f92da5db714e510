"""The shared argument checks accept what they promise and name the argument when they refuse."""

import math

import numpy as np
import pytest

from snnlib.checks import positive_int, real


def test_positive_int_accepts_integers_and_refuses_the_rest():
    assert positive_int("n", 3) == 3
    assert type(positive_int("n", np.int64(4))) is int
    with pytest.raises(TypeError, match="n must be a positive int"):
        positive_int("n", 2.0)
    with pytest.raises(TypeError, match="n must be"):
        positive_int("n", True)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        positive_int("n", 0)


@pytest.mark.parametrize(
    "kwargs, inside, outside",
    [
        ({}, [-1e30, 0.0, 1e30], [math.inf, math.nan]),
        ({"low": 0.0, "high": 1.0}, [0.0, 0.5, 1.0], [-0.1, 1.1]),
        ({"low": 0.0, "high": 1.0, "open_low": True}, [1e-9, 1.0], [0.0]),
        ({"low": 0.0, "high": 1.0, "open_high": True}, [0.0, 0.999], [1.0]),
    ],
)
def test_real_honours_its_interval(kwargs, inside, outside):
    for value in inside:
        assert real("tau", value, **kwargs) == value
    for value in outside:
        with pytest.raises(ValueError, match="tau must be finite"):
            real("tau", value, **kwargs)


def test_real_refuses_non_numbers_and_bools():
    for value in ("1.0", None, False):
        with pytest.raises(TypeError, match="tau must be a real number"):
            real("tau", value)
    assert type(real("tau", np.float32(0.5))) is float
