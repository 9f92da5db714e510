"""Tests for snnlib.methods.gated_recurrent_neuron (Qin et al. 2025: GRSN, released GRSN, LIF, TAP / woTAP,
GRU, MLP).

References are written here independently: the GRSN, released GRSN and LIF recurrences as plain loops over
explicit weights, the arctan surrogate's analytic derivative, torch.nn.GRU for the GRU core, and
woTAP as K explicit sub-steps from a zero state.
"""

import math

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnlib.methods import gated_recurrent_neuron as grn

IN, HID = 5, 6


def _seq(steps=9, batch=3, scale=3.0, seed=0):
    return torch.randn(steps, batch, IN, generator=torch.Generator().manual_seed(seed)) * scale


def _grsn_reference(cell: grn.GRSNCell, x_seq):
    """Plain loop of the paper-aligned GRSN equations; returns spikes, h, c per step."""
    wf, bf = cell.forget_gate.weight, cell.forget_gate.bias
    wi, bi = cell.input_gate.weight, cell.input_gate.bias
    wx, bx = cell.input_proj.weight, cell.input_proj.bias
    beta = 1.0 / (1.0 + torch.exp(-cell.beta_raw))
    h = torch.zeros(x_seq.shape[1], HID)
    c, o = h.clone(), h.clone()
    spikes, hs, cs = [], [], []
    for x in x_seq:
        f = 1.0 / (1.0 + torch.exp(-(o @ wf.T + bf)))
        i = torch.clamp(o @ wi.T + bi, min=0.0)
        c = f * c + (1 - f) * i
        u = beta * h + (1 - beta) * (x @ wx.T + bx + c)
        o = (u >= 1.0).float()
        h = u - o
        spikes.append(o), hs.append(h), cs.append(c)
    return torch.stack(spikes), torch.stack(hs), torch.stack(cs)


def _cell_with_spread_weights(seed=1):
    torch.manual_seed(seed)
    cell = grn.GRSNCell(IN, HID)
    with torch.no_grad():  # larger recurrent weights and varied decays so that every term matters
        cell.forget_gate.weight.normal_(0, 1.5)
        cell.input_gate.weight.normal_(0, 1.5)
        cell.beta_raw.normal_(0, 1.0)
    return cell


# --------------------------------------------------------------------------- GRSN cell


def test_grsn_matches_plain_recurrence():
    cell = _cell_with_spread_weights()
    x = _seq()
    with torch.no_grad():
        spikes = cell(x)
        ref_spikes, ref_h, ref_c = _grsn_reference(cell, x)
    assert 0.05 < spikes.mean() < 0.95, "the test needs a mix of spikes and silence"
    torch.testing.assert_close(spikes, ref_spikes)
    torch.testing.assert_close(cell.h, ref_h[-1])
    torch.testing.assert_close(cell.c, ref_c[-1])
    torch.testing.assert_close(cell.o, ref_spikes[-1])


def test_grsn_gates_at_their_limits():
    cell = _cell_with_spread_weights()
    c_prev = torch.rand(4, HID) * 2
    o_prev = (torch.rand(4, HID) > 0.5).float()
    with torch.no_grad():
        cell.forget_gate.weight.zero_()
        cell.forget_gate.bias.fill_(100.0)  # F = 1: keep the current
        kept = cell.gated_current(c_prev, o_prev)
        cell.forget_gate.bias.fill_(-100.0)  # F = 0: replace it by I = relu(W_i o + b_i)
        replaced = cell.gated_current(c_prev, o_prev)
        expected = torch.relu(o_prev @ cell.input_gate.weight.T + cell.input_gate.bias)
    torch.testing.assert_close(kept, c_prev)
    torch.testing.assert_close(replaced, expected)
    assert (replaced - c_prev).abs().max() > 0.1


def test_grsn_gates_read_previous_spikes_not_the_input():
    cell = _cell_with_spread_weights()
    with torch.no_grad():
        cell(_seq(steps=1, seed=3))
        c_a = cell.c.clone()
        functional.reset_net(cell)
        cell(_seq(steps=1, seed=4))  # different input, same (zero) previous spikes
    torch.testing.assert_close(cell.c, c_a)


def test_grsn_beta_starts_at_one_half_and_gets_the_analytic_gradient():
    cell = grn.GRSNCell(IN, HID)
    torch.testing.assert_close(cell.beta, torch.full((HID,), 0.5))
    torch.manual_seed(2)
    with torch.no_grad():
        cell.beta_raw.normal_()
    h0 = torch.randn(2, HID)
    x = torch.randn(1, 2, IN)
    cell.h, cell.c, cell.o = h0, torch.zeros(2, HID), torch.zeros(2, HID)
    cell(x).sum().backward()
    # one step: u = b h0 + (1 - b)(W x + b_x + c1), c1 = (1 - F) I with o = 0
    with torch.no_grad():
        b = torch.sigmoid(cell.beta_raw)
        f = torch.sigmoid(cell.forget_gate.bias)
        c1 = (1 - f) * torch.relu(cell.input_gate.bias)
        drive = x[0] @ cell.input_proj.weight.T + cell.input_proj.bias + c1
        u = b * h0 + (1 - b) * drive
        g = 1.0 / (1.0 + (math.pi / 2 * 2.0 * (u - 1.0)) ** 2)  # arctan surrogate, alpha 2
        expected = (g * (h0 - drive)).sum(0) * b * (1 - b)
    torch.testing.assert_close(cell.beta_raw.grad, expected)


def test_grsn_soft_reset_subtracts_the_threshold():
    cell = grn.GRSNCell(IN, HID)
    with torch.no_grad():
        for layer in (cell.forget_gate, cell.input_gate, cell.input_proj):
            layer.weight.zero_()
            layer.bias.zero_()
        cell.input_proj.bias.fill_(10.0)
        spikes = cell(torch.zeros(1, 2, IN))
    assert torch.all(spikes == 1)
    torch.testing.assert_close(cell.h, torch.full((2, HID), 0.5 * 10.0 - 1.0))


# --------------------------------------------------------------------------- LIF and GRU cores


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_lif_cell_matches_plain_recurrence(v_reset):
    torch.manual_seed(0)
    cell = grn.LIFCell(IN, HID, v_reset=v_reset)
    x = _seq()
    with torch.no_grad():
        spikes = cell(x)
        w, b = cell.linear_ih.weight, cell.linear_ih.bias
        v = torch.zeros(x.shape[1], HID)
        ref = []
        for xt in x:
            u = v + (xt @ w.T + b - v) / 2
            o = (u >= 1.0).float()
            v = u * (1 - o) if v_reset == 0.0 else u - o
            ref.append(o)
    assert 0.05 < spikes.mean() < 0.95
    torch.testing.assert_close(spikes, torch.stack(ref))


def test_gru_core_equals_torch_gru():
    torch.manual_seed(0)
    core = grn.GRUCore(IN, HID)
    gru = nn.GRU(IN, HID)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(core.input_map.weight)
        gru.bias_ih_l0.copy_(core.input_map.bias)
        gru.weight_hh_l0.copy_(core.hidden_map.weight)
        gru.bias_hh_l0.copy_(core.hidden_map.bias)
        x = _seq()
        expected, _ = gru(x)
        torch.testing.assert_close(core(x), expected)


# --------------------------------------------------------------------------- released GRSN cell and MLP


def _released_reference(cell: grn.InputGatedGRSNCell, x_seq):
    """Plain loop of the released cell: input-driven gates, gated current into a tau-2 soft-reset LIF."""
    f_all = 1.0 / (1.0 + torch.exp(-(x_seq @ cell.forget_gate.weight.T + cell.forget_gate.bias)))
    cand_all = torch.clamp(x_seq @ cell.input_gate.weight.T + cell.input_gate.bias, min=0.0)
    c = torch.zeros(x_seq.shape[1], HID)
    v = c.clone()
    spikes, currents = [], []
    for f, cand in zip(f_all, cand_all):
        c = f * c + (1 - f) * cand
        v = v + (c - v) / 2
        o = (v >= 1.0).float()
        v = v - o
        spikes.append(o), currents.append(c)
    return torch.stack(spikes), torch.stack(currents), v


def test_released_grsn_matches_plain_recurrence_and_gates_read_the_input():
    torch.manual_seed(2)
    cell = grn.InputGatedGRSNCell(IN, HID)
    with torch.no_grad():
        cell.forget_gate.weight.normal_(0, 1.5)
        cell.input_gate.weight.normal_(0, 1.5)
    x = _seq(scale=2.0)
    with torch.no_grad():
        spikes = cell(x)
        ref_spikes, ref_c, ref_v = _released_reference(cell, x)
        currents = grn.InputGatedGRSNCell(IN, HID, output="current")
        currents.load_state_dict(cell.state_dict())
        passed_up = currents(x)
    assert 0.05 < spikes.mean() < 0.95, "the test needs a mix of spikes and silence"
    torch.testing.assert_close(spikes, ref_spikes)
    torch.testing.assert_close(cell.c, ref_c[-1])
    torch.testing.assert_close(cell.v, ref_v)
    torch.testing.assert_close(passed_up, ref_c)


def test_released_grsn_stack_passes_the_current_up_and_trains_with_two_layers():
    core = grn.SpikingCore(IN, HID, neuron="igrsn", num_layers=3)
    assert [cell.output for cell in core.cells] == ["current", "current", "spikes"]
    core(_seq(scale=5.0)).sum().backward()  # the authors' cells fail backward() with 2+ layers; this must not
    assert all(p.grad is not None for p in core.parameters())
    with pytest.raises(ValueError, match="output"):
        grn.InputGatedGRSNCell(IN, HID, output="rates")


def test_mlp_core_is_memoryless():
    torch.manual_seed(0)
    core = grn.make_core("mlp", IN, HID, num_layers=2)
    x = _seq(steps=6)
    with torch.no_grad():
        out = core(x)
        torch.testing.assert_close(core(x.flip(0)), out.flip(0))  # the order of steps does not matter
        torch.testing.assert_close(core(x[-1:]), out[-1:])       # nor what came before
    assert not list(core.buffers()) and not any(isinstance(m, grn.base.MemoryModule) for m in core.modules())


# --------------------------------------------------------------------------- TAP and woTAP


@pytest.mark.parametrize("kind", grn.CORE_KINDS)
def test_stepping_one_env_step_at_a_time_equals_the_whole_episode(kind):
    torch.manual_seed(0)
    core = grn.make_core(kind, IN, HID, num_layers=1 if kind == "gru" else 2)
    x = _seq()
    with torch.no_grad():
        whole = core(x)
        functional.reset_net(core)
        stepped = torch.cat([core(xt[None]) for xt in x])
    torch.testing.assert_close(stepped, whole)


@pytest.mark.parametrize("kind", ["gru", "lif-tap", "grsn-tap", "igrsn-tap"])
def test_tap_keeps_state_across_steps_and_reset_starts_an_episode(kind):
    torch.manual_seed(0)
    core = grn.make_core(kind, IN, HID)
    x = _seq(steps=6, batch=4)
    probe = x[-1:]
    with torch.no_grad():
        fresh = core(probe)
        functional.reset_net(core)
        core(x[:-1])
        after_history = core(probe)
        functional.reset_net(core)
        again = core(probe)
    assert not torch.equal(after_history, fresh), "TAP output must depend on earlier steps"
    torch.testing.assert_close(again, fresh)


@pytest.mark.parametrize("kind", ["gru", "lif-tap", "grsn-tap", "igrsn-tap"])
def test_reset_where_resets_only_finished_episodes(kind):
    torch.manual_seed(0)
    core = grn.make_core(kind, IN, HID)
    x = _seq(steps=6, batch=4)
    done = torch.tensor([True, False, True, False])
    with torch.no_grad():
        fresh = core(x[-1:])
        functional.reset_net(core)
        core(x[:-1])
        carried = core(x[-1:].clone())
        functional.reset_net(core)
        core(x[:-1])
        grn.reset_where(core, done)
        mixed = core(x[-1:])
    torch.testing.assert_close(mixed[:, done], fresh[:, done])
    torch.testing.assert_close(mixed[:, ~done], carried[:, ~done])


@pytest.mark.parametrize("neuron", ["lif", "grsn", "igrsn"])
def test_wotap_resets_every_step_and_rate_codes_k_substeps(neuron):
    torch.manual_seed(0)
    core = grn.SpikingCore(IN, HID, neuron=neuron, paradigm="wotap", substeps=4)
    layer = core.cells[0]
    x = _seq(steps=5)
    with torch.no_grad():
        out = core(x)
        reference = []
        for xt in x:  # K sub-steps from a zero state, mean spike count
            functional.reset_net(layer)
            reference.append(layer(xt[None].repeat(4, 1, 1)).mean(0))
        functional.reset_net(core)
        reversed_out = core(x.flip(0))
    torch.testing.assert_close(out, torch.stack(reference))
    torch.testing.assert_close(reversed_out, out.flip(0))  # no memory: the order of steps does not matter
    assert 0 < out.mean() < 1 and set(torch.unique(out * 4).tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_wotap_carrying_state_matches_a_continuous_substep_loop():
    torch.manual_seed(0)
    core = grn.SpikingCore(IN, HID, neuron="grsn", paradigm="wotap", substeps=3, reset_each_step=False,
                           readout="last")
    x = _seq(steps=4)
    with torch.no_grad():
        out = core(x)
        functional.reset_net(core)
        held = x.repeat_interleave(3, dim=0)  # the authors' wrapper: one long run, state never reset
        reference = core.cells[0](held)[2::3]
    torch.testing.assert_close(out, reference)


def test_gradients_reach_every_parameter_through_tap_and_wotap():
    for kind in grn.CORE_KINDS:
        torch.manual_seed(0)
        core = grn.make_core(kind, IN, HID)
        core(_seq(scale=5.0)).sum().backward()
        for name, p in core.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{kind}: {name}"


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_a_clear_message():
    core = grn.make_core("grsn-tap", IN, HID)
    with pytest.raises(ValueError, match=r"\[T, B, 5\]"):
        core(torch.zeros(3, IN))
    with pytest.raises(TypeError, match="floating-point"):
        core(torch.zeros(3, 2, IN, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown core"):
        grn.make_core("lstm", IN, HID)
    with pytest.raises(ValueError, match="paradigm"):
        grn.SpikingCore(IN, HID, paradigm="sometimes")
    with pytest.raises(ValueError, match="hidden_size"):
        grn.GRSNCell(IN, 0)
    with pytest.raises(TypeError, match="bool tensor"):
        grn.reset_where(core, torch.tensor([1, 0]))


def test_parameter_names_follow_the_authors_code():
    grsn = grn.SpikingCore(IN, HID, neuron="grsn", num_layers=2)
    lif = grn.SpikingCore(IN, HID, neuron="lif")
    expected = {f"cells.{i}.{name}" for i in (0, 1) for name in
                ("forget_gate.weight", "forget_gate.bias", "input_gate.weight", "input_gate.bias",
                 "input_proj.weight", "input_proj.bias", "beta_raw")}
    assert set(grsn.state_dict()) == expected
    assert set(lif.state_dict()) == {"cells.0.linear_ih.weight", "cells.0.linear_ih.bias"}
    released = grn.SpikingCore(IN, HID, neuron="igrsn")
    assert set(released.state_dict()) == {f"cells.0.{gate}.{p}" for gate in ("forget_gate", "input_gate")
                                          for p in ("weight", "bias")}
