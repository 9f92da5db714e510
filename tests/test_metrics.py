"""Tests for snnlib.metrics: every expected value is computed independently in the test."""

import itertools
import math

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnlib.metrics import (
    E_AC_PJ,
    E_MAC_PJ,
    FiringRateMonitor,
    SynapticOperationCounter,
    accuracy,
    count_parameters,
    energy_proxy,
    firing_rates,
    is_spike_tensor,
    parameter_table,
    synaptic_operations,
)


def spikes(shape, p, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < p).float()


# --------------------------------------------------------------------------- accuracy


def test_accuracy_on_scores_and_labels():
    output = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(output, torch.tensor([1, 0, 0, 0])) == pytest.approx(0.75)


def test_accuracy_sums_time_first_output():
    # per step the winners disagree; the spike counts over time decide: sample 0 -> class 2,
    # sample 1 -> class 0
    output = torch.tensor(
        [
            [[1.0, 0, 0], [0, 1, 0]],
            [[0, 0, 1.0], [1, 0, 0]],
            [[0, 0, 1.0], [1, 0, 0]],
        ]
    )
    assert accuracy(output, torch.tensor([2, 0])) == 1.0
    assert accuracy(output, torch.tensor([0, 1])) == 0.0


def test_accuracy_one_hot_target_matches_labels():
    output = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]])
    labels = torch.tensor([1, 2, 2])
    one_hot = nn.functional.one_hot(labels, 3).float()
    assert accuracy(output, one_hot) == accuracy(output, labels) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "output, target, error",
    [
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), ValueError),
        (torch.zeros(4), torch.zeros(4, dtype=torch.long), ValueError),
        (torch.zeros(4, 3), torch.zeros(4), TypeError),
        ([[0.0]], torch.zeros(1, dtype=torch.long), TypeError),
    ],
)
def test_accuracy_rejects_bad_input(output, target, error):
    with pytest.raises(error):
        accuracy(output, target)


# --------------------------------------------------------------------------- firing rates


def lif_reference(x, tau, threshold=1.0):
    """Plain LIF recurrence (decay_input, hard reset to 0) over a time-first input."""
    v = torch.zeros_like(x[0])
    out = []
    for xt in x:
        h = v + (xt - v) / tau
        s = (h >= threshold).float()
        v = h * (1 - s)
        out.append(s)
    return torch.stack(out)


class TwoPopulations(nn.Module):
    """Input 0.25 drives an IF neuron (fires every 4th step); six times the input drives a
    LIF neuron (its rate comes from the plain recurrence above)."""

    def __init__(self):
        super().__init__()
        self.if_layer = neuron.IFNode(step_mode="m")
        self.block = nn.Sequential(neuron.LIFNode(tau=2.0, step_mode="m"))

    def forward(self, x):
        return self.if_layer(x), self.block(6 * x)


def test_firing_rate_of_a_neuron_firing_every_kth_step():
    T, B, N = 8, 2, 3
    x = torch.full((T, B, N), 0.25)
    model = TwoPopulations()
    table = firing_rates(model, x).set_index("layer")
    assert table.loc["if_layer", "firing_rate"] == pytest.approx(1 / 4)
    expected_lif = lif_reference(6 * x, tau=2.0).mean().item()
    assert 0 < expected_lif < 1
    assert table.loc["block.0", "firing_rate"] == pytest.approx(expected_lif)
    assert table.loc["if_layer", "neurons"] == N
    per_step = firing_rates(model, x, per_step=True)
    if_steps = per_step[per_step.layer == "if_layer"].firing_rate.tolist()
    assert if_steps == [0, 0, 0, 1, 0, 0, 0, 1]


def test_firing_rate_monitor_accumulates_and_resets_and_removes_hooks():
    model = TwoPopulations()
    x = torch.full((8, 1, 2), 0.25)
    with FiringRateMonitor(model) as monitor:
        model(x)
        model(torch.zeros(8, 3, 2))  # state is not reset: the IF neuron continues from v=0 anyway
    # 2 spikes per neuron in the first call (16 slots), none in the second (48 slots)
    rates = monitor.table().set_index("layer").firing_rate
    assert rates["if_layer"] == pytest.approx(4 / 64)
    model(x)  # outside the block: not counted
    assert monitor.table().set_index("layer").firing_rate["if_layer"] == pytest.approx(4 / 64)
    monitor.reset()
    assert monitor.table().empty


def test_firing_rate_of_an_explicit_module_and_single_step_neuron():
    class Threshold(nn.Module):
        def forward(self, x):
            return (x > 0).float(), x  # a (spikes, state) tuple, as snntorch neurons return

    gate = Threshold()
    single = neuron.IFNode(step_mode="s")
    model = nn.Sequential()
    model.gate, model.single = gate, single
    x = torch.tensor([[[1.0, -1.0, 2.0, -3.0]]]).repeat(5, 2, 1)  # half the inputs positive

    with FiringRateMonitor(model, modules=[gate]) as monitor:
        gate(x)
        for xt in torch.full((4, 2, 3), 0.5):  # IF with 0.5: fires on every 2nd call
            single(xt)
    rates = monitor.table().set_index("layer")
    assert rates.loc["gate", "firing_rate"] == pytest.approx(0.5)
    assert rates.loc["single", "firing_rate"] == pytest.approx(0.5)
    assert rates.loc["single", "neurons"] == 3
    assert set(monitor.per_step_table().layer) == {"gate"}


# --------------------------------------------------------------------------- synaptic operations


def test_linear_on_spikes_counts_nonzero_inputs_times_fan_out():
    T, B, F_in, F_out = 4, 3, 6, 5
    fc = layer.Linear(F_in, F_out, step_mode="m")
    x = spikes((T, B, F_in), 0.3, seed=1)
    table = synaptic_operations(nn.Sequential(fc), x)
    row = table.iloc[0]
    assert row.effective_acs == pytest.approx(x.count_nonzero().item() * F_out / B)
    assert row.effective_macs == 0
    assert row.dense == pytest.approx(T * F_in * F_out)


def test_linear_skips_zero_weights():
    fc = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 0, 2, 0], [0, 0, 1, 1], [1, 0, 0, 1]]))
    x = torch.tensor([[[1.0, 1, 0, 1]], [[0.0, 1, 1, 1]]])  # [T=2, B=1, 4]
    expected = sum(
        1
        for t, i, o in itertools.product(range(2), range(4), range(3))
        if x[t, 0, i] != 0 and fc.weight[o, i] != 0
    )
    row = synaptic_operations(fc, x).iloc[0]
    assert row.effective_acs == expected
    assert row.dense == 2 * 4 * 3  # dense counts the zero weights too


def test_real_valued_input_counts_macs():
    T, B, F_in, F_out = 3, 2, 5, 4
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, F_in, generator=generator)
    x[0, 0, 0] = 0.0  # one zero input: effective MACs skip it, dense does not
    row = synaptic_operations(nn.Linear(F_in, F_out), x).iloc[0]
    assert row.effective_acs == 0
    assert row.dense == pytest.approx(T * F_in * F_out)
    assert row.effective_macs == pytest.approx((T * B * F_in - 1) * F_out / B)


def brute_force_conv_ops(x, weight, stride, padding, dilation, groups):
    """Count (nonzero input, nonzero weight) pairs that meet at an output position, and all
    in-bounds (input, weight) pairs, by looping over every output position and kernel tap.
    ``padding`` is an int or a (rows, columns) pair."""
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    n_batch, _, height, width = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    out_h = (height + 2 * pad_h - dilation * (kh - 1) - 1) // stride + 1
    out_w = (width + 2 * pad_w - dilation * (kw - 1) - 1) // stride + 1
    effective = dense = 0
    for n, co, oh, ow, ci, i, j in itertools.product(
        range(n_batch), range(c_out), range(out_h), range(out_w), range(c_per_group), range(kh), range(kw)
    ):
        row, col = oh * stride - pad_h + i * dilation, ow * stride - pad_w + j * dilation
        if not (0 <= row < height and 0 <= col < width):
            continue
        channel = (co // (c_out // groups)) * c_per_group + ci
        dense += 1
        effective += int(x[n, channel, row, col] != 0 and weight[co, ci, i, j] != 0)
    return effective, dense


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1)])
def test_conv2d_counts_match_brute_force(stride, padding, dilation, groups):
    T, B = 2, 2
    conv = layer.Conv2d(4, 4, 3, stride=stride, padding=padding, dilation=dilation, groups=groups,
                        step_mode="m")
    with torch.no_grad():
        conv.weight[0, 0, 1, 1] = 0.0  # a pruned synapse
    x = spikes((T, B, 4, 5, 6), 0.4, seed=2)
    row = synaptic_operations(nn.Sequential(conv), x).iloc[0]
    effective, dense = brute_force_conv_ops(x.flatten(0, 1), conv.weight, stride, padding, dilation, groups)
    assert row.effective_acs == pytest.approx(effective / B)
    assert row.dense == pytest.approx(dense / B)
    assert row.effective_macs == 0


def test_conv1d_inside_seq_to_ann_container_and_per_sample_normalisation():
    T, B = 3, 4
    conv = nn.Conv1d(2, 3, 3, padding=1)
    model = layer.SeqToANNContainer(conv)
    x = spikes((T, B, 2, 7), 0.5, seed=3)
    table = synaptic_operations(model, x)
    # a 1-d convolution is a 2-d one over a single row
    effective, dense = brute_force_conv_ops(
        x.flatten(0, 1).unsqueeze(2), conv.weight.unsqueeze(2), 1, (0, 1), 1, 1
    )
    assert table.layer.tolist() == ["0"]
    assert table.iloc[0].effective_acs == pytest.approx(effective / B)
    assert table.iloc[0].dense == pytest.approx(dense / B)


def test_spiking_network_counts_macs_at_input_and_acs_after_neurons():
    torch.manual_seed(0)  # the layers' initial weights: without it they depend on the tests run before
    T, B = 5, 3
    fc1, lif, fc2 = layer.Linear(4, 6, step_mode="m"), neuron.LIFNode(step_mode="m"), layer.Linear(6, 2, step_mode="m")
    model = nn.Sequential(fc1, lif, fc2)
    generator = torch.Generator().manual_seed(4)
    x = 2 * torch.rand(T, B, 4, generator=generator)
    table = synaptic_operations(model, x).set_index("layer")
    with torch.no_grad():
        hidden = lif_reference(fc1(x), tau=2.0)
    assert hidden.sum() > 0
    assert table.loc["0", "effective_macs"] == pytest.approx(T * 4 * 6)
    assert table.loc["0", "effective_acs"] == 0
    assert table.loc["2", "effective_acs"] == pytest.approx(hidden.sum().item() * 2 / B)
    assert table.loc["2", "effective_macs"] == 0


def test_counter_totals_and_layer_selection():
    fc1, fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
    model = nn.Sequential(fc1, nn.ReLU(), fc2)
    x = torch.ones(2, 5, 3)
    with SynapticOperationCounter(model, layers=[fc2]) as counter:
        model(x)
    table = counter.table(n_samples=5)
    assert table.layer.tolist() == ["2"]
    assert counter.totals(n_samples=5)["dense"] == pytest.approx(2 * 4 * 2)
    with pytest.raises(TypeError):
        SynapticOperationCounter(model, layers=[nn.ReLU()])
    with pytest.raises(ValueError):
        counter.table(n_samples=0)


def test_is_spike_tensor_follows_neurobench():
    assert is_spike_tensor(torch.tensor([0.0, 1.0, -1.0]))
    assert not is_spike_tensor(torch.tensor([0.0, 0.5]))


# --------------------------------------------------------------------------- energy


def test_energy_proxy_formula_and_constants():
    assert (E_AC_PJ, E_MAC_PJ) == (0.9, 4.6)
    assert energy_proxy(1000, 10) == pytest.approx(1000 * 0.9 + 10 * 4.6)
    assert energy_proxy(3, 2, e_ac=1.0, e_mac=10.0) == pytest.approx(23.0)
    with pytest.raises(ValueError):
        energy_proxy(-1, 0)


# --------------------------------------------------------------------------- parameters


def test_parameter_counts_against_closed_forms():
    mlp = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    assert count_parameters(mlp) == 10 * 20 + 20 + 20 * 5 + 5
    conv = nn.Conv2d(3, 8, kernel_size=5)
    assert count_parameters(conv) == 8 * 3 * 5 * 5 + 8
    mlp[0].requires_grad_(False)
    assert count_parameters(mlp) == 20 * 5 + 5
    assert count_parameters(mlp, trainable_only=False) == 10 * 20 + 20 + 20 * 5 + 5


def test_parameter_table_counts_shared_parameters_once():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    table = parameter_table(model)
    assert table.parameters.sum() == count_parameters(model) == 16 + 4 + 4
    assert table.set_index("layer").parameters.to_dict() == {"0": 20, "1": 4}


# --------------------------------------------------------------------------- detection mAP (COCO)

def test_coco_map_on_hand_made_boxes():
    from snnlib.metrics import coco_map

    # image 0, class 0: ground truth A = [0, 0, 10, 10] and B = [20, 20, 10, 10]; detections ranked
    # by score: exact A (IoU 1, TP), A shifted by 5 (IoU 50/150 = 1/3, FP), B cut to height 7.75
    # (IoU 0.775: TP for t <= 0.75, FP for t >= 0.8).
    # t <= 0.75 (6 thresholds): TP FP TP -> envelope 1 up to recall 0.5 (51 of 101 points), 2/3 after
    #   (50 points): AP = (51 + 50 * 2/3) / 101 = 253/303
    # t >= 0.8 (4 thresholds): TP FP FP -> recall stops at 0.5: AP = 51/101
    # image 1, class 1: one box found exactly: AP = 1 at every t. A class-1 detection on image 0
    # (no class-1 truth there) would be a FP for class 1, so it is left out; class 2 has no truth
    # anywhere: left out of the mean whatever its detections.
    true_boxes = [[[0, 0, 10, 10], [20, 20, 10, 10]], [[0, 0, 20, 20]]]
    true_labels = [[0, 0], [1]]
    pred_boxes = [[[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 10, 7.75]], [[0, 0, 20, 20], [3, 3, 4, 4]]]
    pred_scores = [[0.9, 0.8, 0.7], [0.5, 0.9]]
    pred_labels = [[0, 0, 0], [1, 2]]
    got = coco_map(pred_boxes, pred_scores, pred_labels, true_boxes, true_labels)
    ap50_c0 = 253 / 303
    ap5095_c0 = (6 * 253 / 303 + 4 * 51 / 101) / 10
    assert got["map_50"] == pytest.approx((ap50_c0 + 1) / 2, abs=1e-12)
    assert got["map_50_95"] == pytest.approx((ap5095_c0 + 1) / 2, abs=1e-12)


def test_coco_map_edge_cases_and_bad_input():
    from snnlib.metrics import coco_map

    assert coco_map([[]], [[]], [[]], [[[0, 0, 5, 5]]], [[0]]) == {"map_50": 0.0, "map_50_95": 0.0}
    assert math.isnan(coco_map([[[0, 0, 5, 5]]], [[1.0]], [[0]], [[]], [[]])["map_50"])
    with pytest.raises(ValueError, match="one per box"):
        coco_map([[[0, 0, 5, 5]]], [[1.0, 0.5]], [[0]], [[[0, 0, 5, 5]]], [[0]])
    with pytest.raises(ValueError, match="not corners"):
        coco_map([[[5, 5, 0, -1]]], [[1.0]], [[0]], [[[0, 0, 5, 5]]], [[0]])
