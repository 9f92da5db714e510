"""Tests for snnlib.layers.TDBatchNorm (threshold-dependent batch norm, time-first [T, B, C, ...]).

References are independent: statistics computed here per channel in float64, torch's own
F.batch_norm on the flattened [T * B, C, ...] tensor with weight gamma * alpha * V_th, and the
running-statistics rule written out.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnlib.layers import TDBatchNorm


def randn(*shape, seed=0, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale + shift


def randomised(bn: TDBatchNorm, seed: int = 1) -> TDBatchNorm:
    """Give gamma and beta random values (gamma in [0.5, 2], beta in [-1, 1])."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(bn.num_features, generator=g) * 1.5 + 0.5)
        bn.bias.copy_(torch.rand(bn.num_features, generator=g) * 2 - 1)
    return bn


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 4, 5, 6, 7)])
@pytest.mark.parametrize("alpha, v_threshold", [(1.0, 0.5), (0.7071, 1.0)])
def test_training_output_is_the_definition(shape, alpha, v_threshold):
    bn = randomised(TDBatchNorm(5, alpha=alpha, v_threshold=v_threshold))
    x = randn(*shape, scale=3.0, shift=2.0)
    y = bn(x)
    xd = x.double().movedim(2, 0).reshape(5, -1)  # channel first, all other axes together
    mean, var = xd.mean(1), xd.var(1, unbiased=False)
    expected = (xd - mean[:, None]) / torch.sqrt(var[:, None] + 1e-5) * alpha * v_threshold
    expected = expected * bn.weight.double()[:, None] + bn.bias.double()[:, None]
    torch.testing.assert_close(y.double().movedim(2, 0).reshape(5, -1), expected, rtol=1e-5, atol=1e-5)


def test_output_per_channel_follows_n_beta_gamma_vth():
    bn = randomised(TDBatchNorm(4, v_threshold=0.5))
    y = bn(randn(4, 32, 4, 8, 8, scale=5.0, shift=-3.0)).detach().movedim(2, 0).reshape(4, -1)
    torch.testing.assert_close(y.mean(1), bn.bias.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(1, unbiased=False), bn.weight.detach() * 0.5, rtol=1e-4, atol=1e-5)


def test_equals_torch_batch_norm_with_scaled_gamma():
    bn = randomised(TDBatchNorm(3, alpha=1.0, v_threshold=0.25))
    x = randn(2, 5, 3, 4, 4, seed=3)
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    reference = F.batch_norm(x.flatten(0, 1), running_mean, running_var, bn.weight * 0.25, bn.bias,
                             training=True, momentum=0.1, eps=1e-5).view_as(x)
    torch.testing.assert_close(bn(x), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_mean, running_mean)
    torch.testing.assert_close(bn.running_var, running_var)


def test_running_statistics_rule_and_eval_mode():
    bn = randomised(TDBatchNorm(2, momentum=0.1))
    x = randn(3, 4, 2, 5, shift=1.0, scale=2.0)
    bn(x)
    xd = x.movedim(2, 0).reshape(2, -1)
    torch.testing.assert_close(bn.running_mean, 0.1 * xd.mean(1))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * xd.var(1, unbiased=True))
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    z = randn(3, 4, 2, 5, seed=7)
    expected = (z - bn.running_mean.view(1, 1, 2, 1)) / torch.sqrt(bn.running_var.view(1, 1, 2, 1) + 1e-5)
    expected = expected * 0.5 * bn.weight.view(1, 1, 2, 1) + bn.bias.view(1, 1, 2, 1)
    torch.testing.assert_close(bn(z), expected)
    assert bn.num_batches_tracked.item() == 1  # eval mode leaves the statistics alone


def test_cumulative_average_when_momentum_is_none():
    bn = TDBatchNorm(2, momentum=None)
    a, b = randn(2, 3, 2, seed=1), randn(2, 3, 2, seed=2, shift=4.0)
    bn(a)
    bn(b)
    means = [t.movedim(2, 0).reshape(2, -1).mean(1) for t in (a, b)]
    torch.testing.assert_close(bn.running_mean, (means[0] + means[1]) / 2)


def test_without_running_statistics_eval_uses_the_batch():
    bn = TDBatchNorm(2, track_running_stats=False).eval()
    x = randn(3, 4, 2, seed=5, shift=2.0)
    y = bn(x).movedim(2, 0).reshape(2, -1)
    torch.testing.assert_close(y.mean(1), torch.zeros(2), atol=1e-6, rtol=0)


def test_gradients_match_finite_differences():
    bn = randomised(TDBatchNorm(2)).double()
    x = randn(2, 3, 2, 3, seed=4).double().requires_grad_()
    w, b = bn.weight.detach().clone().requires_grad_(), bn.bias.detach().clone().requires_grad_()
    call = lambda x, w, b: torch.func.functional_call(bn, {"weight": w, "bias": b}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(call, (x, w, b))


def test_gamma_mean_is_the_detached_channel_mean():
    bn = randomised(TDBatchNorm(6))
    g = bn.gamma_mean()
    assert g.shape == () and not g.requires_grad
    assert g.item() == pytest.approx(bn.weight.detach().double().mean().item(), rel=1e-6)
    with torch.no_grad():
        bn.weight.fill_(3.0)
    assert g.item() != 3.0  # a copy, not a view
    assert TDBatchNorm(3, affine=False).gamma_mean().item() == 1.0


def test_state_dict_is_batch_norms():
    assert set(TDBatchNorm(4).state_dict()) == set(nn.BatchNorm2d(4).state_dict())
    bn = TDBatchNorm(4)
    bn.load_state_dict(nn.BatchNorm1d(4).state_dict())


@pytest.mark.parametrize("x, error", [
    (torch.zeros(3, 4), ValueError),            # no channel axis
    (torch.zeros(3, 4, 5, 2), ValueError),      # 5 channels, 3 expected
    (torch.zeros(2, 2, 3, dtype=torch.long), TypeError),
])
def test_bad_input_is_refused(x, error):
    with pytest.raises(error):
        TDBatchNorm(3)(x)


@pytest.mark.parametrize("kwargs", [{"num_features": 0}, {"num_features": 3, "alpha": 0.0},
                                    {"num_features": 3, "v_threshold": -1.0}, {"num_features": 3, "eps": 0.0},
                                    {"num_features": 2.0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        TDBatchNorm(**kwargs)
