"""Surrogate spike functions: a Heaviside step forward, a smooth derivative backward.

A spiking neuron fires when its membrane potential v reaches the threshold. With
x = v - v_threshold the spike is

    forward:   S(x) = 1 if x >= 0 else 0        (spikingjelly's convention: fires AT threshold)
               S(x) = 1 if x > 0 else 0         with strict=True (snntorch's and He et al. 2020's)

whose true derivative is zero almost everywhere (the two forms differ only at x = 0 exactly).
Surrogate-gradient training keeps this forward and replaces dS/dx in the backward pass by a
surrogate derivative g'(x), the same for both forms:

    Rectangle(width=w):  g'(x) = 1/w                        if |x| < w/2, else 0
    Triangle(width=w):   g'(x) = (2/w) * max(0, 1 - 2|x|/w)  (peak 2/w at x = 0, zero for |x| >= w/2)
    ArcTan(alpha=a):     g'(x) = a / (2 * (1 + (pi/2 * a * x)^2))
    Sigmoid(alpha=a):    g'(x) = a * s(a x) * (1 - s(a x)),  s(z) = 1 / (1 + exp(-z))

Each g' integrates to exactly 1 over the real line (each is the derivative of a function g that
rises from 0 to 1), so the shape parameter changes the sharpness, not the total gradient mass.
For Rectangle and Triangle, `width` is the length of the "gradient-available interval"
|x| < width/2 outside of which the gradient is exactly zero. The papers' forms:

    He et al. 2020:  rectangle of half-width lens and height 1/(2 lens)   -> Rectangle(width=2 * lens, strict=True)
    MPD-AGL (2025):  rectangle of width w and height 1/w                   -> Rectangle(width=w), w set per step
    ASRC-SNN (2025): triangle max(0, 1 - |x|) (gamma = 1)                  -> Triangle(width=2.0) (the default);
                     gamma * max(0, 1 - |x|/gamma) / gamma^2 in general     -> Triangle(width=2 * gamma)
    ArcTan and Sigmoid equal spikingjelly's ATan/Sigmoid and snntorch's atan (same alpha).
    (snntorch's `triangular` is not a triangle: its backward is a constant +-threshold.)

The shape parameter is a plain attribute (`width` or `alpha`) that can be changed at any time,
e.g. per time step or per epoch. The value in effect when the forward pass ran is the one the
backward pass uses, so changing it between the forward and the backward of a sequence is safe.

These modules subclass spikingjelly's `SurrogateFunctionBase`, so they can be given as
`surrogate_function=` to spikingjelly 2.0 neurons (and to snnlib.neurons), and also as
`spike_grad=` to snntorch neurons (which then fire on >= as well, or on > with strict=True).
Non-spiking mode (`spiking=False`, `set_spiking_mode(False)`) evaluates the smooth primitive
g(x) instead.
"""

import math

import torch
from spikingjelly.activation_based.surrogate import SurrogateFunctionBase

from snnlib.checks import real

__all__ = ["ArcTan", "Rectangle", "Sigmoid", "SurrogateSpike", "Triangle", "heaviside", "surrogate_spike"]


def heaviside(x: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """Spike forward pass: 1 where x >= 0 (x > 0 if `strict`), else 0, in the dtype of `x`."""
    return (x > 0 if strict else x >= 0).to(x.dtype)


def _describe(x) -> str:
    return f"a tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


class _SpikeWithSurrogate(torch.autograd.Function):
    """Heaviside forward; backward multiplies by `derivative(x, param)` with `param` frozen at forward time."""

    @staticmethod
    def forward(ctx, x, derivative, param, strict):
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        ctx.param = param
        return heaviside(x, strict)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x, ctx.param), None, None, None


def surrogate_spike(x: torch.Tensor, derivative, param, strict: bool = False) -> torch.Tensor:
    """heaviside(x, strict) forward; backward, dS/dx = derivative(x, param).

    The functional form of the `SurrogateSpike` modules, for a shape parameter that changes from
    call to call (e.g. one width per time step): `derivative` is any g'(x, param), such as
    `Rectangle.derivative`; `param` is a float, or a tensor that is not changed in place before
    the backward pass (the backward reads it then).
    """
    return _SpikeWithSurrogate.apply(x, derivative, param, strict)


class _PositiveParameter:
    """Descriptor for a shape parameter: a finite real number > 0, stored as float, settable any time."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj, value):
        try:
            obj.__dict__[self.name] = real(self.name, value, 0.0, open_low=True)
        except TypeError as error:
            raise TypeError(f"{error}; convert a tensor with float(...) first") from None


class SurrogateSpike(SurrogateFunctionBase):
    """Base class: spike S(x) = (x >= 0) forward, `derivative(x, p)` backward, `primitive(x, p)` if not spiking.

    Subclasses declare their one shape parameter as a `_PositiveParameter` class attribute,
    name it in `param_name`, and give the closed forms `derivative` and `primitive`.
    `strict=True` fires on x > 0 instead (no spike exactly at threshold); the backward is the same.
    Input: a floating-point tensor of any shape (e.g. time-first `[T, B, ...]`); output has the same shape.
    """

    param_name: str

    def __init__(self, value: float, spiking: bool = True, strict: bool = False):
        if not isinstance(strict, bool):
            raise TypeError(f"strict must be True (fire on x > 0) or False (fire on x >= 0), got {strict!r}")
        super().__init__(spiking=spiking, **{self.param_name: value})
        self.strict = strict

    @staticmethod
    def derivative(x: torch.Tensor, param: float) -> torch.Tensor:
        """The surrogate derivative g'(x)."""
        raise NotImplementedError

    @staticmethod
    def primitive(x: torch.Tensor, param: float) -> torch.Tensor:
        """The smooth function g(x) whose derivative is g'(x), rising from 0 to 1."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
            raise TypeError(f"{type(self).__name__} expects a floating-point tensor, got {_describe(x)}")
        param = getattr(self, self.param_name)
        if self.spiking:
            return surrogate_spike(x, self.derivative, param, self.strict)
        return self.primitive(x, param)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, strict={self.strict}"


class Rectangle(SurrogateSpike):
    """Rectangular surrogate: g'(x) = 1/width for |x| < width/2, else 0 (also 0 exactly at the edges).

    He et al. 2020 (half-width `lens`, fires on >): Rectangle(width=2 * lens, strict=True).
    MPD-AGL: width = w, changed per time step.
    """

    param_name = "width"
    width = _PositiveParameter()

    def __init__(self, width: float = 1.0, spiking: bool = True, strict: bool = False):
        super().__init__(width, spiking, strict)

    @staticmethod
    def derivative(x, width):
        return (x.abs() < width / 2).to(x.dtype) / width

    @staticmethod
    def primitive(x, width):
        return (x / width + 0.5).clamp(0.0, 1.0)


class Triangle(SurrogateSpike):
    """Triangular surrogate: g'(x) = (2/width) * max(0, 1 - 2|x|/width); area 1, peak 2/width at x = 0.

    The default width=2.0 is ASRC-SNN's max(0, 1 - |x|); their gamma is width / 2.
    """

    param_name = "width"
    width = _PositiveParameter()

    def __init__(self, width: float = 2.0, spiking: bool = True, strict: bool = False):
        super().__init__(width, spiking, strict)

    @staticmethod
    def derivative(x, width):
        return (1 - x.abs() * (2 / width)).clamp(min=0.0) * (2 / width)

    @staticmethod
    def primitive(x, width):
        u = (x * (2 / width)).clamp(-1.0, 1.0)
        return 0.5 + u - 0.5 * u * u.abs()


class ArcTan(SurrogateSpike):
    """Arctangent surrogate: g'(x) = alpha / (2 (1 + (pi/2 alpha x)^2)); spikingjelly ATan, snntorch atan."""

    param_name = "alpha"
    alpha = _PositiveParameter()

    def __init__(self, alpha: float = 2.0, spiking: bool = True, strict: bool = False):
        super().__init__(alpha, spiking, strict)

    @staticmethod
    def derivative(x, alpha):
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x).square())

    @staticmethod
    def primitive(x, alpha):
        return torch.atan(math.pi / 2 * alpha * x) / math.pi + 0.5


class Sigmoid(SurrogateSpike):
    """Sigmoid surrogate: g'(x) = alpha s(alpha x) (1 - s(alpha x)); spikingjelly Sigmoid (same alpha)."""

    param_name = "alpha"
    alpha = _PositiveParameter()

    def __init__(self, alpha: float = 4.0, spiking: bool = True, strict: bool = False):
        super().__init__(alpha, spiking, strict)

    @staticmethod
    def derivative(x, alpha):
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1 - s)

    @staticmethod
    def primitive(x, alpha):
        return torch.sigmoid(alpha * x)
