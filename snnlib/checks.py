"""Argument checks shared by the library: each returns the cleaned value or raises an error naming the argument.

    positive_int(name, value)                      an int >= 1 (bool refused)
    real(name, value, low, high, *, open_low, open_high)
                                                   a finite float in [low, high]; an open end excludes it
    flag(name, value)                              True or False (nothing else, not even 0 or 1)
    time_first(x, features, hint)                  a floating-point tensor [T, B, features], T >= 1

Wrong types raise TypeError and values out of range raise ValueError, each message naming the
argument, what it must be and what it got.
"""

import math
import numbers

import torch

__all__ = ["flag", "positive_int", "real", "time_first"]


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or a TypeError (not an int, or a bool) / ValueError (< 1) naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def real(name: str, value, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
         open_high: bool = False) -> float:
    """`value` as a finite float in [low, high] (`open_low` / `open_high` exclude the ends),
    or an error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if not (math.isfinite(value) and above and below):
        raise ValueError(f"{name} must be finite{_interval(low, high, open_low, open_high)}, got {value}")
    return value


def _interval(low: float, high: float, open_low: bool, open_high: bool) -> str:
    """' and lie in [low, high)', ' and > low', ... for an error message; '' when unbounded."""
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" and {'>' if open_low else '>='} {low}"
    if math.isinf(low):
        return f" and {'<' if open_high else '<='} {high}"
    return f" and lie in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"


def flag(name: str, value) -> bool:
    """`value` if it is True or False, else a TypeError naming `name`."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def time_first(x, features: int, hint: str) -> None:
    """A TypeError unless `x` is a floating-point tensor, a ValueError (ending with `hint`, how to
    fix it) unless it is a time-first sequence [T, B, features] with T >= 1."""
    if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
        raise TypeError(f"expected a floating-point tensor [T, B, {features}], got {type(x).__name__}")
    if x.dim() != 3 or x.shape[2] != features or x.shape[0] == 0:
        raise ValueError(f"expected a time-first sequence [T, B, {features}] with T >= 1, got shape "
                         f"{tuple(x.shape)}; {hint}")
