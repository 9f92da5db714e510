"""EAS-SNN samplers (snnlib.methods.adaptive_sampling): SAT, RPD, early stop, a hand-computed trajectory."""

import pytest
import torch

from snnlib.methods.adaptive_sampling import (
    ARSNNSampler, CountSampler, LIFSampler, RSNNSampler, build_sampler,
)


def one_pixel_sampler(Ts, spike_attach=False, write_zero=False):
    """1 channel, kernel 1, depth 1: gate sigmoid(0) = 0.5, current = f_t - 0.25 s_{t-1}."""
    m = ARSNNSampler(kernel_size=1, channels=1, depth=1, Ts=Ts, spike_attach=spike_attach, write_zero=write_zero)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.input_conv[0].weight[1, 0, 0, 0] = 1.0      # current channel <- f
        m.gate_conv[0].weight[1, 0, 0, 0] = -0.25     # current channel <- previous spike
    return m


# oldest bin first; walked most recent first: f = 0.25, 0.25, 1.25, 0.5
ONE_PIXEL = torch.tensor([0.5, 1.25, 0.25, 0.25]).view(4, 1, 1, 1, 1)


def test_one_pixel_trajectory_by_hand():
    # u0 = 0.25; u1 = 0.5*0.25 + 0.25 = 0.375; u2 = 0.5*0.375 + 1.25 = 1.4375 > 1: spike, sample 1 =
    # 0.25 + 0.375 + 1.4375 = 2.0625; reset to 0; u3 = 0.5*0 + 0.5 - 0.25 = 0.25: the residual.
    x = ONE_PIXEL.clone().requires_grad_()
    tr = one_pixel_sampler(Ts=1).trace(x)
    assert tr.samples.flatten().tolist() == [2.0625]
    assert tr.steps == 3 and tr.first_spike.item() == 2 and tr.closed.item() == 1
    tr.samples.sum().backward()
    # d/df(walk order) = 1.75, 1.5, 1 (each u feeds the next through the gate 0.5); the oldest bin is never read
    assert x.grad.flatten().tolist() == [0.0, 1.0, 1.5, 1.75]
    assert one_pixel_sampler(Ts=2).trace(ONE_PIXEL).samples.flatten().tolist() == [2.0625, 0.25]
    assert one_pixel_sampler(Ts=2, write_zero=True)(ONE_PIXEL).flatten().tolist() == [2.0625, 0.0]


def test_sat_gradient_by_hand():
    # with SAT the sample is s2 * (u0 + u1 + u2); ds2/du2 = 1 (|u2 - 1| = 0.4375 < 0.5), so
    # d/du2 = 1 + 2.0625 = 3.0625, d/du1 = 1 + 0.5 * 3.0625, d/du0 = 1 + 0.5 * d/du1
    x = ONE_PIXEL.clone().requires_grad_()
    one_pixel_sampler(Ts=1, spike_attach=True)(x).sum().backward()
    assert x.grad.flatten().tolist() == [0.0, 3.0625, 2.53125, 2.265625]


def test_strict_firing_at_threshold():
    m = one_pixel_sampler(Ts=1)
    exactly_one = torch.tensor([1.0]).view(1, 1, 1, 1, 1)
    tr = m.trace(exactly_one)          # u = 1 = theta: no spike, the residual 1 is written
    assert tr.closed.item() == 0 and tr.first_spike.item() == 1 and tr.samples.item() == 1.0


def random_bins(seed, Tm=6, B=2, H=9, W=7, rate=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((Tm, B, 2, H, W), rate), generator=g)


def pair(Ts, **flags):
    torch.manual_seed(3)
    base = ARSNNSampler(kernel_size=3, depth=2, Ts=Ts)
    other = ARSNNSampler(kernel_size=3, depth=2, Ts=Ts, **flags)
    other.load_state_dict(base.state_dict())
    return base, other


def input_grad(model, x, w):
    x = x.clone().requires_grad_()
    (model(x) * w).sum().backward()
    return x.grad


def test_sat_forward_bit_identical_and_gradients_change():
    x = random_bins(0)
    plain, sat = pair(Ts=2, spike_attach=True)
    a, b = plain(x), sat(x)
    assert torch.equal(a, b)
    w = torch.randn_like(a, generator=torch.Generator().manual_seed(1))
    ga, gb = input_grad(plain, x, w), input_grad(sat, x, w)
    assert not torch.allclose(ga, gb)


def test_rpd_zeroes_exactly_the_unclosed_residual():
    x = random_bins(1)
    plain, rpd = pair(Ts=3, write_zero=True)
    tr = plain.trace(x)
    out = rpd(x)
    k = torch.arange(3).view(3, 1, 1, 1, 1)
    closed_slot = k < tr.closed            # samples closed by a spike: identical
    residual_slot = k == tr.closed         # the one slot after the last spike: zeroed by RPD
    assert residual_slot.any() and closed_slot.any()
    assert torch.equal(out[closed_slot], tr.samples[closed_slot])
    assert (out[~closed_slot] == 0).all()
    assert (tr.samples[residual_slot] != 0).any()
    assert (tr.samples[~closed_slot & ~residual_slot] == 0).all()


def test_early_stop_when_every_element_has_ts_samples():
    m = one_pixel_sampler(Ts=1)
    with torch.no_grad():
        m.input_conv[0].bias[1] = 2.0        # every step fires
    x = torch.zeros(5, 3, 1, 2, 2)
    tr = m.trace(x)
    assert tr.steps == 1 and (tr.closed == 1).all()
    quiet = torch.zeros(5, 3, 1, 2, 2)
    assert one_pixel_sampler(Ts=1).trace(quiet).steps == 5    # nothing fires: the whole window is walked


def test_early_stop_does_not_change_the_output():
    m = one_pixel_sampler(Ts=1)
    x = torch.full((6, 2, 1, 3, 3), 0.625)
    x[-1, 0, 0, 1] = 1.5                 # these fire on the first (most recent) bin, the rest on the third
    tr = m.trace(x)
    assert tr.steps == 3 and (tr.first_spike[0, 0, 1] == 0).all() and (tr.closed == 1).all()
    garbage = x.clone()
    garbage[:3] = torch.rand(3, 2, 1, 3, 3) * 5      # older bins the walk never reaches
    assert torch.equal(m(garbage), tr.samples)


def test_gradients_reach_both_conv_stacks():
    m = pair(Ts=2, spike_attach=True, write_zero=True)[1]
    m(random_bins(3)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert any(n.startswith("gate_conv") for n, _ in m.named_parameters())


def test_batch_first_matches_time_first():
    x = random_bins(4)
    for kind in ("count", "snn", "rsnn", "arsnn"):
        torch.manual_seed(0)
        m = build_sampler(kind, kernel_size=3, depth=2)
        assert torch.equal(m(x), m(x.transpose(0, 1), batch_first=True)), kind


def test_fixed_window_samplers_shapes_and_count():
    x = random_bins(5)
    assert torch.equal(CountSampler()(x), x.sum(0, keepdim=True))
    for m in (LIFSampler(kernel_size=3), RSNNSampler(kernel_size=3)):
        assert m(x).shape == (1,) + x.shape[1:]


def test_bad_input_names_the_layout():
    with pytest.raises(ValueError, match=r"\[Tm, B, C, H, W\]"):
        ARSNNSampler()(torch.zeros(4, 2, 8, 8))
    with pytest.raises(TypeError):
        ARSNNSampler()(torch.zeros(4, 1, 2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown sampler"):
        build_sampler("voxel")


def test_window_lengths_count_bins_to_the_first_spike_and_censor_at_tm():
    from snnlib.methods.adaptive_sampling import window_lengths

    x = torch.cat([ONE_PIXEL, torch.zeros_like(ONE_PIXEL)], dim=1)   # pixel 0 fires on the 3rd bin, pixel 1 never
    tr = one_pixel_sampler(Ts=1).trace(x)
    assert window_lengths(tr, n_bins=4).flatten().tolist() == [3, 4]
