"""Tests for snnlib.surrogate: Heaviside forward, closed-form surrogate derivatives backward."""

import math

import pytest
import snntorch
import torch
from spikingjelly.activation_based import neuron
from spikingjelly.activation_based import surrogate as sj_surrogate

from snnlib import surrogate as sg


def expected_derivative(name: str, param: float, x: float) -> float:
    """The papers' surrogate derivatives, written per element with the math module."""
    if name == "Rectangle":
        return 1.0 / param if abs(x) < param / 2 else 0.0
    if name == "Triangle":
        half = param / 2
        return max(0.0, 1.0 - abs(x) / half) / half
    if name == "ArcTan":
        return param / (2 * (1 + (math.pi / 2 * param * x) ** 2))
    if name == "Sigmoid":
        s = 1 / (1 + math.exp(-param * x))
        return param * s * (1 - s)
    raise AssertionError(name)


# (class, a non-default parameter value); widths and their halves are exact binary fractions.
CASES = [(sg.Rectangle, 0.5), (sg.Triangle, 1.5), (sg.ArcTan, 3.0), (sg.Sigmoid, 5.0)]
IDS = [cls.__name__ for cls, _ in CASES]


def grid(param: float, dtype: torch.dtype) -> torch.Tensor:
    """Points across the support, exactly at +-param/2 and 0, and just inside/outside +-param/2."""
    half = param / 2
    eps = 1e-3
    special = [0.0, half, -half, half - eps, half + eps, -half + eps, -half - eps, 1e-7, -1e-7]
    return torch.cat([torch.linspace(-3 * param, 3 * param, 121, dtype=torch.float64), torch.tensor(special)]).to(dtype)


def surrogate_grad(surrogate, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_()
    surrogate(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_forward_is_heaviside_with_spike_at_zero(cls, param, dtype):
    x = grid(param, dtype)
    out = cls(param)(x)
    assert out.dtype == dtype
    assert torch.equal(out, (x >= 0).to(dtype))
    assert out[x == 0].eq(1).all() and out[x == -1e-7].eq(0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_backward_equals_analytic_derivative(cls, param, dtype):
    x = grid(param, dtype)
    grad = surrogate_grad(cls(param), x)
    expected = torch.tensor([expected_derivative(cls.__name__, param, v) for v in x.tolist()], dtype=dtype)
    assert grad.dtype == dtype
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_backward_scales_the_incoming_gradient(cls, param):
    x = grid(param, torch.float64).requires_grad_()
    upstream = torch.linspace(-2, 2, x.numel(), dtype=torch.float64)
    cls(param)(x).backward(upstream)
    torch.testing.assert_close(x.grad, upstream * cls.derivative(x.detach(), param))


def test_window_edges_are_exclusive():
    width = 0.5
    at_edges = torch.tensor([-0.25, 0.25, -0.2499, 0.2499, -0.2501, 0.2501], dtype=torch.float64)
    rect = surrogate_grad(sg.Rectangle(width), at_edges)
    assert rect.tolist() == [0.0, 0.0, 2.0, 2.0, 0.0, 0.0]
    tri = surrogate_grad(sg.Triangle(width), at_edges)
    assert tri[:2].eq(0).all() and tri[4:].eq(0).all() and (tri[2:4] > 0).all()
    assert surrogate_grad(sg.Triangle(width), torch.zeros(1)).item() == 4.0  # peak 2 / width


def test_paper_parametrisations():
    x = torch.linspace(-2, 2, 401, dtype=torch.float64)
    # ASRC-SNN triangle max(0, 1 - |x|) is the default Triangle.
    torch.testing.assert_close(surrogate_grad(sg.Triangle(), x), (1 - x.abs()).clamp(min=0))
    # He et al. 2020: height 1 / (2 lens) on |x| < lens, lens = 0.25.
    lens = 0.25
    torch.testing.assert_close(surrogate_grad(sg.Rectangle(2 * lens), x), (x.abs() < lens).double() / (2 * lens))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (sg.ArcTan(2.0), sj_surrogate.ATan(alpha=2.0)),
        (sg.ArcTan(3.0), sj_surrogate.ATan(alpha=3.0)),
        (sg.Sigmoid(4.0), sj_surrogate.Sigmoid(alpha=4.0)),
        (sg.Rectangle(0.5), sj_surrogate.Rect(alpha=2.0)),  # height alpha on |x| < 0.5 / alpha
        (sg.Triangle(2.0), sj_surrogate.PiecewiseQuadratic(alpha=1.0)),  # alpha (1 - alpha |x|)
        (sg.Triangle(0.5), sj_surrogate.PiecewiseQuadratic(alpha=4.0)),
    ],
    ids=["atan2", "atan3", "sigmoid4", "rect", "triangle2", "triangle05"],
)
def test_matches_spikingjelly_builtin_surrogates(ours, theirs):
    x = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64)
    torch.testing.assert_close(surrogate_grad(ours, x), surrogate_grad(theirs, x))


@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_derivative_integrates_to_one(cls, param):
    x = torch.sinh(torch.linspace(-14, 14, 400_001, dtype=torch.float64)) * param  # dense near 0, reaches +-1e6
    area = torch.trapezoid(cls.derivative(x, param), x).item()
    assert area == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_primitive_is_the_antiderivative(cls, param):
    x = grid(param, torch.float64)
    x = x[x.abs() != param / 2]  # the rectangle's primitive has kinks there: any one-sided slope is "right"
    smooth = cls(param, spiking=False)
    y = smooth(x.clone().requires_grad_())
    assert 0.0 <= y.min().item() and y.max().item() <= 1.0
    assert smooth(torch.tensor([0.0], dtype=torch.float64)).item() == pytest.approx(0.5)
    torch.testing.assert_close(surrogate_grad(smooth, x), surrogate_grad(cls(param), x))


@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_parameter_can_be_changed_after_construction(cls, param):
    x = grid(param, torch.float64)
    surrogate = cls(param)
    name = cls.param_name
    setattr(surrogate, name, 2 * param)
    assert getattr(surrogate, name) == 2 * param
    changed = surrogate_grad(surrogate, x)
    expected = torch.tensor([expected_derivative(cls.__name__, 2 * param, v) for v in x.tolist()], dtype=x.dtype)
    torch.testing.assert_close(changed, expected)
    assert not torch.allclose(changed, surrogate_grad(cls(param), x))


@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_backward_uses_the_parameter_of_its_forward(cls, param):
    """Per-step widths (MPD-AGL): changing the parameter between forward and backward must not matter."""
    x = grid(param, torch.float64).requires_grad_()
    surrogate = cls(param)
    first = surrogate(x)
    setattr(surrogate, cls.param_name, 3 * param)
    second = surrogate(x)
    (first.sum() + 0 * second.sum()).backward()
    expected = torch.tensor([expected_derivative(cls.__name__, param, v) for v in x.tolist()], dtype=x.dtype)
    torch.testing.assert_close(x.grad, expected)


def test_instances_do_not_share_parameters():
    a, b = sg.Rectangle(), sg.Rectangle()
    a.width = 0.25
    assert b.width == 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [sg.Rectangle, sg.Triangle, sg.ArcTan, sg.Sigmoid])
def test_rejects_non_positive_parameters(cls, bad):
    with pytest.raises(ValueError, match=cls.param_name):
        cls(bad)
    surrogate = cls()
    with pytest.raises(ValueError, match="> 0"):
        setattr(surrogate, cls.param_name, bad)


@pytest.mark.parametrize("bad", [torch.tensor(1.0), True, "1.0", None])
def test_rejects_non_numbers_as_parameters(bad):
    with pytest.raises(TypeError, match="width must be a real number"):
        sg.Rectangle(bad)


def test_rejects_non_float_input():
    with pytest.raises(TypeError, match="floating-point tensor"):
        sg.ArcTan()(torch.tensor([1, 0, -1]))
    with pytest.raises(TypeError, match="floating-point tensor"):
        sg.ArcTan()([0.5])


def test_is_a_spikingjelly_surrogate_with_spiking_mode():
    surrogate = sg.Sigmoid(4.0)
    assert isinstance(surrogate, sj_surrogate.SurrogateFunctionBase)
    assert "alpha=4.0" in repr(surrogate)
    surrogate.set_spiking_mode(False)
    x = torch.tensor([-1.0, 0.0, 1.0])
    torch.testing.assert_close(surrogate(x), torch.sigmoid(4.0 * x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cls", "param"), CASES, ids=IDS)
def test_strict_fires_only_above_zero_with_the_same_gradient(cls, param, dtype):
    x = grid(param, dtype)
    strict = cls(param, strict=True)
    assert torch.equal(strict(x), (x > 0).to(dtype))
    assert strict(torch.zeros(3, dtype=dtype)).eq(0).all()
    assert strict(torch.full((1,), 1e-7, dtype=dtype)).item() == 1.0
    torch.testing.assert_close(surrogate_grad(strict, x), surrogate_grad(cls(param), x), rtol=0, atol=0)


def test_strict_surrogate_makes_spikingjelly_and_snntorch_neurons_skip_the_threshold():
    at_threshold = torch.full((1, 3), 0.5)  # one step: H = 0 + 0.5 = threshold
    for strict, expected in [(False, 1.0), (True, 0.0)]:
        surrogate = sg.Rectangle(strict=strict)
        node = neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.5, surrogate_function=surrogate, step_mode="m")
        assert node(at_threshold).eq(expected).all()
        leaky = snntorch.Leaky(beta=0.5, threshold=0.5, spike_grad=sg.Rectangle(strict=strict))
        spike, _ = leaky(at_threshold[0], torch.zeros(3))
        assert spike.eq(expected).all()


def test_strict_must_be_a_bool_and_shows_in_repr():
    with pytest.raises(TypeError, match="strict must be True"):
        sg.Rectangle(0.5, strict=1)
    assert "strict=True" in repr(sg.Rectangle(0.5, strict=True))
    assert "strict=False" in repr(sg.ArcTan())


def test_surrogate_spike_is_a_step_forward_and_the_given_derivative_backward():
    x = torch.tensor([-0.3, 0.0, 0.2, 0.6], requires_grad=True)
    s = sg.surrogate_spike(x, sg.Rectangle.derivative, 1.0)
    s.sum().backward()
    assert torch.equal(s, torch.tensor([0.0, 1.0, 1.0, 1.0]))
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0, 1.0, 0.0]))
    strict = sg.surrogate_spike(x.detach(), sg.Rectangle.derivative, 1.0, strict=True)
    assert torch.equal(strict, torch.tensor([0.0, 0.0, 1.0, 1.0]))
