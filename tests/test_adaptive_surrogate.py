"""Tests for snnlib.methods.adaptive_surrogate (MPD-AGL, Jiang et al. 2025).

References are written here independently of the module: the width rule from the paper's formula
with math.sqrt, the neuron as a plain batch-first loop (u = tau u (1 - s) + I, fire on u >= V_th,
hard reset in the graph) with its own autograd function for the rectangle, window fractions and
membrane statistics counted by hand, and cross-entropy of the time-averaged logits.
"""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnlib.layers import TDBatchNorm
from snnlib.methods import adaptive_surrogate as mpd

VTH = 0.5


def randn(*shape, seed=0, scale=1.0, shift=0.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale + shift


# --------------------------------------------------------------------------- the width rule


@pytest.mark.parametrize("gamma, tau, v_threshold",
                         [(1.0, 0.2, 0.5), (1.3, 0.6, 0.5), (0.4, 0.9, 1.0), (2.5, 0.05, 0.3)])
def test_width_rule_is_the_papers_formula(gamma, tau, v_threshold):
    widths = mpd.width_schedule(gamma, tau, v_threshold, 4)
    first = 2 * gamma * v_threshold
    later = 2 * math.sqrt(1 + tau**2) * gamma * v_threshold
    torch.testing.assert_close(widths, torch.tensor([first, later, later, later]), rtol=1e-6, atol=0)
    from_tensors = mpd.mpd_width(torch.tensor(gamma), torch.tensor(tau), v_threshold, 3)
    assert from_tensors.item() == pytest.approx(later, rel=1e-6)


def test_width_rule_tells_gamma_and_tau_apart():
    # a rule with tau and gamma swapped, tau missing or tau not squared gives other numbers here
    w = mpd.width_schedule(1.5, 0.5, 0.5, 2)
    assert w[0].item() == pytest.approx(1.5, rel=1e-6)
    assert w[1].item() == pytest.approx(1.5 * math.sqrt(1.25), rel=1e-6)
    for wrong in (0.5 * math.sqrt(1 + 1.5**2), 1.5, 1.5 * math.sqrt(1.5), 1.5 * 1.25):
        assert w[1].item() != pytest.approx(wrong, rel=1e-3)


@pytest.mark.parametrize("args", [(1.0, 0.2, 0.5, -1), (1.0, 0.2, 0.5, 1.5), (1.0, 0.2, -0.5, 0),
                                  (1.0, 1.2, 0.5, 1), (torch.ones(3), 0.2, 0.5, 0), ("1", 0.2, 0.5, 0)])
def test_width_rule_refuses_bad_arguments(args):
    with pytest.raises((ValueError, TypeError)):
        mpd.mpd_width(*args)


# --------------------------------------------------------------------------- the neuron


class _Rect(torch.autograd.Function):
    """Heaviside (>= 0) forward, (1/w) 1{|x| < w/2} backward; written here for the reference loop."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x)
        ctx.w = w
        return (x >= 0).float()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < ctx.w / 2).float() / ctx.w, None


def reference_neuron(x_bt, tau, widths):
    """Batch-first [B, T, N] loop: u = tau u (1 - s) + I, s = H(u - V_th); returns spikes [B, T, N] and u."""
    mem, spikes, us = 0.0, [], []
    for t in range(x_bt.shape[1]):
        mem = tau * mem + x_bt[:, t]
        s = _Rect.apply(mem - VTH, widths[t])
        us.append(mem.detach())
        spikes.append(s)
        mem = mem * (1 - s)
    return torch.stack(spikes, 1), torch.stack(us, 1)


def formula_widths(gamma, tau, steps):
    return [2 * gamma * VTH] + [2 * math.sqrt(1 + tau**2) * gamma * VTH] * (steps - 1)


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_neuron_matches_a_plain_loop_forward_and_backward(kind):
    gamma, steps = 1.37, 5
    x = randn(6, steps, 40, scale=0.6, shift=0.3).requires_grad_()
    node = mpd.MPDLIFNode(tau=0.2) if kind == "lif" else mpd.MPDPLIFNode(init_tau=0.2)
    if kind == "plif":
        with torch.no_grad():
            node.w.fill_(-0.4)  # tau = sigmoid(-0.4)
    tau_value = 0.2 if kind == "lif" else 1 / (1 + math.exp(0.4))
    tau_ref = torch.tensor(-0.4, requires_grad=True)
    tau_graph = torch.tensor(0.2) if kind == "lif" else tau_ref.sigmoid()
    ref_spikes, _ = reference_neuron(x, tau_graph, formula_widths(gamma, tau_value, steps))
    ours = node(x.transpose(0, 1), gamma_mean=torch.tensor(gamma)).transpose(0, 1)
    assert torch.equal(ours, ref_spikes)
    assert 0 < ours.mean() < 1
    weights = randn(*ours.shape, seed=9)
    grads_ref = torch.autograd.grad((ref_spikes * weights).sum(), [x] + ([tau_ref] if kind == "plif" else []))
    grads = torch.autograd.grad((ours * weights).sum(), [x] + list(node.parameters()))
    for g, r in zip(grads, grads_ref):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("t, expected_width", [(0, 2 * 1.2 * VTH), (1, 2 * math.sqrt(1.04) * 1.2 * VTH)])
def test_surrogate_is_one_over_w_inside_the_window_and_zero_outside(t, expected_width):
    """d s[t] / d I[t] over a grid of membrane values u[t] around the threshold."""
    u = torch.linspace(VTH - 1.5, VTH + 1.5, 301)
    x = torch.full((2, u.numel()), -5.0)  # step 0 far below threshold: no spike, no reset
    x[t] = u if t == 0 else u - 0.2 * (-5.0)  # so that u[1] = 0.2 * (-5) + x[1] = u
    x.requires_grad_()
    spikes = mpd.MPDLIFNode(tau=0.2)(x[:, None, :], gamma_mean=1.2)
    (grad,) = torch.autograd.grad(spikes[t].sum(), x)
    inside = (u - VTH).abs() < expected_width / 2
    torch.testing.assert_close(grad[t][inside], torch.full((int(inside.sum()),), 1 / expected_width))
    assert torch.all(grad[t][~inside] == 0)
    assert 0 < inside.sum() < u.numel()


def test_fixed_width_and_fallback_width():
    u = torch.linspace(-1.0, 2.0, 121)[None, None, :].requires_grad_()
    for node, gamma, width in [(mpd.MPDLIFNode(width=0.3), 2.0, 0.3), (mpd.MPDLIFNode(), None, 1.0)]:
        (grad,) = torch.autograd.grad(node(u, gamma_mean=gamma).sum(), u)
        inside = (u.detach() - VTH).abs() < width / 2
        torch.testing.assert_close(grad, inside.float() / width)


def test_frozen_width_is_the_rules_start_and_a_pair_fixes_each_step():
    first, later = mpd.frozen_width(1.0, 0.2, VTH)
    assert (first, later) == (pytest.approx(1.0, rel=1e-6), pytest.approx(math.sqrt(1.04), rel=1e-6))
    node = mpd.MPDLIFNode(width=(0.4, 1.6), store_u_seq=True)
    torch.testing.assert_close(node.widths(3, 3.0), torch.tensor([0.4, 1.6, 1.6]))  # gamma ignored when fixed
    for steps, width in [(1, 0.4), (3, 1.6)]:  # the last step's own window (no later step feeds back into it)
        u = torch.linspace(-1.0, 2.0, 121)[None, None, :].repeat(steps, 1, 1).requires_grad_()
        functional.reset_net(node)
        (grad,) = torch.autograd.grad(node(u, gamma_mean=3.0)[-1].sum(), u)
        inside = (node.u_seq[-1] - VTH).abs() < width / 2
        assert 0 < inside.sum() < inside.numel()
        torch.testing.assert_close(grad[-1], inside.float() / width)
    for bad in [(1.0,), (1.0, 0.0), (1.0, 2.0, 3.0), (-1.0, 1.0)]:
        with pytest.raises(ValueError, match="width"):
            mpd.MPDLIFNode(width=bad)


def test_gamma_init_sets_every_tdbn_and_so_the_adaptive_width():
    model = tiny_resnet(gamma_init=2.0)
    bns = [m for m in model.modules() if isinstance(m, TDBatchNorm)]
    assert bns and all(torch.all(bn.weight == 2.0) for bn in bns)
    state = mpd.surrogate_state(model, 2)
    units = [m for m in model.modules() if isinstance(m, mpd.SpikingUnit)]
    assert len(state) == 2 * len(units) and state.depth.max() == len(units) - 1
    assert state.gamma_mean.eq(2.0).all() and state.tau.sub(0.2).abs().lt(1e-6).all()
    expected = [2 * 2.0 * VTH, 2 * math.sqrt(1 + 0.2**2) * 2.0 * VTH]
    for t in (0, 1):
        assert state[state.t == t].width.sub(expected[t]).abs().lt(1e-5).all()
    fixed = mpd.surrogate_state(tiny_resnet(gamma_init=0.5, width=(1.0, 1.02)), 3)
    assert fixed.gamma_mean.eq(0.5).all()
    assert fixed.groupby("t").width.first().round(6).tolist() == [1.0, 1.02, 1.02]
    with pytest.raises(ValueError, match="gamma_init"):
        tiny_resnet(gamma_init=0.0)


def test_depth_ratio_is_log10_of_first_over_last_layer_per_probe():
    table = pd.DataFrame({"layer": ["a", "b", "c"] * 2, "depth": [0, 1, 2] * 2, "epoch": [0] * 3 + [1] * 3,
                          "grad_norm": [1.0, 5.0, 10.0, 0.02, 7.0, 0.002]})
    ratio = mpd.depth_ratio(table)
    assert ratio.epoch.tolist() == [0, 1]
    np.testing.assert_allclose(ratio.log10_ratio, [-1.0, 1.0])
    with pytest.raises(ValueError, match="grad_norm"):
        mpd.depth_ratio(table.drop(columns="grad_norm"))


def test_width_follows_the_preceding_tdbn_and_the_learned_tau():
    unit = mpd.SpikingUnit(nn.Linear(3, 4), TDBatchNorm(4), mpd.MPDPLIFNode(store_u_seq=True))
    with torch.no_grad():
        unit.bn.weight.copy_(torch.tensor([0.5, 1.0, 1.5, 3.0]))
        unit.neuron.w.fill_(0.3)
    unit(randn(3, 2, 3))
    tau = 1 / (1 + math.exp(-0.3))
    torch.testing.assert_close(unit.neuron.width_seq, torch.tensor(formula_widths(1.5, tau, 3)), rtol=1e-6, atol=0)
    assert unit.neuron.u_seq.shape == (3, 2, 4)


def test_forward_ignores_the_width_and_reset_net_restores_the_start():
    x = randn(3, 4, 10, scale=0.8, shift=0.4)
    adaptive, fixed = mpd.MPDPLIFNode(), mpd.MPDPLIFNode(width=0.25)
    first = adaptive(x, gamma_mean=1.0)
    assert torch.equal(first, fixed(x, gamma_mean=1.0))
    assert not torch.equal(adaptive(x, gamma_mean=1.0), first)  # the membrane carried over
    functional.reset_net(adaptive)
    assert torch.equal(adaptive(x, gamma_mean=1.0), first)
    with pytest.raises(ValueError, match="reset_net"):
        adaptive(randn(3, 5, 10))


@pytest.mark.parametrize("make", [lambda: mpd.MPDLIFNode(tau=1.0), lambda: mpd.MPDLIFNode(tau=0.0),
                                  lambda: mpd.MPDPLIFNode(init_tau=1.5), lambda: mpd.MPDLIFNode(width=0.0),
                                  lambda: mpd.MPDLIFNode(v_threshold=-1.0), lambda: mpd.make_neuron("alif")])
def test_bad_neuron_arguments_are_refused(make):
    with pytest.raises(ValueError):
        make()


def test_bad_neuron_input_is_refused():
    node = mpd.MPDLIFNode()
    for x in (torch.zeros(5), torch.zeros(2, 3, dtype=torch.long)):
        with pytest.raises(ValueError, match=r"\[T, B"):
            node(x)


# --------------------------------------------------------------------------- the theory check


@pytest.mark.parametrize("gamma, tau", [(1.0, 0.2), (2.0, 0.7)])
def test_membrane_std_follows_the_prediction(gamma, tau):
    table = mpd.membrane_std_table([gamma], [tau], beta=0.3, n_neurons=200_000, time_steps=3, seed=1)
    sigma = gamma * VTH
    for t, predicted in [(0, sigma), (1, math.sqrt(1 + tau**2) * sigma)]:
        row = table[table.t == t].iloc[0]
        assert row.predicted == pytest.approx(predicted)
        assert abs(row.empirical - predicted) < 4 * row.std_error
    late = table[table.t == 2].iloc[0]  # no reset: the variance keeps growing past the paper's t >= 1 value
    assert late.exact == pytest.approx(sigma * math.sqrt(1 + tau**2 + tau**4))
    assert abs(late.empirical - late.exact) < 4 * late.std_error


def test_membrane_std_with_reset_is_narrower():
    free = mpd.membrane_std_table([2.0], [0.5], n_neurons=50_000, time_steps=3)
    reset = mpd.membrane_std_table([2.0], [0.5], n_neurons=50_000, time_steps=3, reset=True)
    assert reset.empirical.iloc[0] == pytest.approx(free.empirical.iloc[0])  # same draws, nothing reset yet
    assert reset.empirical.iloc[2] < free.empirical.iloc[2]


# --------------------------------------------------------------------------- models and measurements


def tiny_resnet(**kwargs):
    torch.manual_seed(0)
    return mpd.ResNet19(in_channels=1, num_classes=3, time_steps=2, channels=(4, 6, 8), blocks=(1, 1, 1),
                        fc_hidden=6, **kwargs)


def test_resnet_direct_encoding_and_shapes():
    model = tiny_resnet()
    x = torch.rand(5, 1, 8, 8)
    out = model(x)
    assert out.shape == (2, 5, 3)
    functional.reset_net(model)
    assert torch.equal(model(x.unsqueeze(0).repeat(2, 1, 1, 1, 1)), out)
    blocks = list(model.blocks)
    assert blocks[0].downsample is None and blocks[1].downsample is not None


def test_adaptive_and_fixed_models_share_the_forward_but_not_the_gradient():
    adaptive, fixed = tiny_resnet(), tiny_resnet(width=0.1)
    fixed.load_state_dict(adaptive.state_dict())
    x, y = torch.rand(6, 1, 8, 8) * 3, torch.tensor([0, 1, 2, 0, 1, 2])
    outs = [model(x) for model in (adaptive, fixed)]
    assert torch.equal(*outs)
    for model, out in zip((adaptive, fixed), outs):
        mpd.mean_cross_entropy(out, y).backward()
    assert not torch.allclose(adaptive.encode.synapse.weight.grad, fixed.encode.synapse.weight.grad)


def test_vggsnn_shapes_and_input_check():
    model = mpd.VGGSNN(in_channels=2, num_classes=4, input_size=16, channels=(2, 3, 4, 4))
    assert model(torch.rand(3, 2, 2, 16, 16)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match="input_size"):
        model(torch.rand(3, 2, 2, 20, 20))
    with pytest.raises(ValueError):
        mpd.VGGSNN(input_size=8)


def test_mean_cross_entropy_averages_logits_over_time():
    out, y = randn(4, 3, 5), torch.tensor([0, 4, 2])
    manual = -torch.log_softmax(sum(out) / 4, dim=1)[torch.arange(3), y].mean()
    torch.testing.assert_close(mpd.mean_cross_entropy(out, y), manual)
    with pytest.raises(ValueError):
        mpd.mean_cross_entropy(out[0], y)


class _LoneNeuron(nn.Module):
    def __init__(self, gamma):
        super().__init__()
        self.gamma = gamma
        self.neuron = mpd.MPDLIFNode()

    def forward(self, x):
        return self.neuron(x, gamma_mean=self.gamma)


def test_window_monitor_counts_membranes_inside_the_window():
    model, x = _LoneNeuron(0.8), randn(3, 4, 50, scale=0.5, shift=0.4)
    widths = formula_widths(0.8, 0.2, 3)
    _, u = reference_neuron(x.transpose(0, 1), torch.tensor(0.2), widths)
    expected = [((u[:, t] - VTH).abs() < widths[t] / 2).float().mean().item() for t in range(3)]
    with mpd.GradientWindowMonitor(model) as monitor:
        model(x)
        functional.reset_net(model)
        model(x)
        model.eval()
        model(x * 10)  # eval calls are not counted
    table = monitor.table()
    assert list(table.t) == [0, 1, 2] and list(table["count"]) == [400, 400, 400]
    assert table.fraction.tolist() == pytest.approx(expected)
    assert not model.neuron.store_u_seq  # switched back off
    monitor.reset()
    assert monitor.table().empty


def test_layer_gradient_norms_leave_the_model_alone():
    model = tiny_resnet()
    x, y = torch.rand(4, 1, 8, 8) * 3, torch.tensor([0, 1, 2, 0])
    before = copy.deepcopy(model.state_dict())
    table = mpd.layer_gradient_norms(model, x, y)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    functional.reset_net(model)
    mpd.mean_cross_entropy(model(x), y).backward()
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert table.grad_norm.tolist() == pytest.approx([m.weight.grad.norm().item() for m in convs], rel=1e-5)
    assert table.layer.iloc[0] == "encode" and table.layer.iloc[-1] == "classifier"
    assert list(table.depth) == list(range(len(convs)))


def test_convert_authors_state_dict_pairs_entries_in_order():
    model = tiny_resnet()
    renamed = {f"module.x{i}.{key.rsplit('.', 1)[-1]}": value.clone() + (1 if value.is_floating_point() else 0)
               for i, (key, value) in enumerate(model.state_dict().items())}
    model.load_state_dict(mpd.convert_authors_state_dict(renamed, model))
    assert torch.equal(model.encode.synapse.weight, renamed["module.x0.weight"])
    with pytest.raises(ValueError, match="entries"):
        mpd.convert_authors_state_dict(dict(list(renamed.items())[:-1]), model)
    with pytest.raises(ValueError, match="does not match"):
        mpd.convert_authors_state_dict({**renamed, "module.x0.weight": torch.zeros(1)}, model)


def test_make_neuron_builds_fresh_neurons_of_the_kind():
    new = mpd.make_neuron("plif", width=0.5, tau=0.3)
    a, b = new(), new()
    assert a is not b and isinstance(a, mpd.MPDPLIFNode) and a.width == (0.5, 0.5)
    assert a.decay().item() == pytest.approx(0.3, rel=1e-6)
    assert isinstance(mpd.make_neuron("lif")(), mpd.MPDLIFNode)


def test_train_and_record_is_reproducible_and_records_every_epoch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 8, 8, generator=g) * 3, torch.randint(0, 3, (8,), generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    make = lambda: mpd.ResNet19(in_channels=1, num_classes=3, channels=(4, 4, 4), blocks=(1, 1, 1),  # noqa: E731
                                fc_hidden=4)
    runs = [mpd.train_and_record(make, data, data, epochs=2, batch_size=4, seed=3, probe_size=4) for _ in range(2)]
    first = runs[0]
    assert first["history"].drop(columns="seconds").equals(runs[1]["history"].drop(columns="seconds"))
    assert sorted(first["gradients"].epoch.unique()) == [0, 1, 2]
    assert sorted(first["window"].epoch.unique()) == [1, 2]
    assert sorted(first["surrogate"].epoch.unique()) == [0, 1, 2]
    assert first["surrogate"][first["surrogate"].epoch == 0].gamma_mean.eq(1.0).all()
    assert first["window"].fraction.between(0, 1).all()
    n_neurons = sum(isinstance(m, mpd.MPDPLIFNode) for m in make().modules())
    assert first["window"].groupby("epoch").size().tolist() == [2 * n_neurons] * 2  # every layer, both steps
    fc = first["window"][first["window"].layer == "fc.neuron"]
    assert fc["count"].tolist() == [8 * 4] * 4  # each epoch's 8 training samples x 4 neurons, no probe batch
