"""Argument checks shared by the library: each returns the cleaned value or raises an error naming the argument.

    positive_int(name, value)                      an int >= 1 (bool refused)
    real(name, value, low, high, *, open_low, open_high)
                                                   a finite float in [low, high]; an open end excludes it

Wrong types raise TypeError and values out of range raise ValueError, each message naming the
argument, what it must be and what it got.
"""

import math
import numbers

__all__ = ["positive_int", "real"]


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or a TypeError (not an int, or a bool) / ValueError (< 1) naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def real(name: str, value, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
         open_high: bool = False) -> float:
    """`value` as a finite float in [low, high] (`open_low` / `open_high` exclude the ends), or an error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    above = value > low if open_low else value >= low
    below = value < high if open_high else value <= high
    if not (math.isfinite(value) and above and below):
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise ValueError(f"{name} must be finite and lie in {interval}, got {value}")
    return value
