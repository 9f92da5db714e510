"""The shared argument checks accept what they promise and name the argument when they refuse."""

import math

import numpy as np
import pytest
import torch

from snnlib.checks import flag, positive_int, real, time_first


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


@pytest.mark.parametrize(
    "kwargs, value, message",
    [
        ({}, math.nan, "tau must be finite, got nan"),
        ({"low": 0.0, "open_low": True}, 0.0, "tau must be finite and > 0.0, got 0.0"),
        ({"high": 1.0}, 2.0, "tau must be finite and <= 1.0, got 2.0"),
        ({"low": 0, "high": 4, "open_high": True}, 4, r"tau must be finite and lie in \[0, 4\), got 4.0"),
    ],
)
def test_real_states_the_interval_it_wanted(kwargs, value, message):
    with pytest.raises(ValueError, match=message):
        real("tau", value, **kwargs)


def test_flag_accepts_only_bools():
    assert flag("bias", True) is True and flag("bias", False) is False
    for value in (1, 0, "yes", None):
        with pytest.raises(TypeError, match="bias must be True or False"):
            flag("bias", value)


def test_time_first_accepts_t_b_features_and_ends_its_refusal_with_the_hint():
    time_first(torch.zeros(3, 2, 5), 5, "unused")
    for bad in (torch.zeros(3, 2, 4), torch.zeros(0, 2, 5), torch.zeros(3, 5)):
        with pytest.raises(ValueError, match=r"time-first sequence \[T, B, 5\] with T >= 1, got shape .*; swap axes$"):
            time_first(bad, 5, "swap axes")
    for bad in (torch.zeros(3, 2, 5, dtype=torch.long), np.zeros((3, 2, 5))):
        with pytest.raises(TypeError, match="floating-point tensor"):
            time_first(bad, 5, "swap axes")
