"""Tests for the fused whole-sequence paths of snnlib.methods.gated_recurrent_neuron's GRSNCell and
InputGatedGRSNCell (the released cell).

The reference is the same cell's per-step path (SNNLIB_FUSED=0: one autograd graph per step, the
gradients by PyTorch's autograd), run on a copy with the same weights. Spikes must be bit-identical
and gradients equal to rounding: float64 to 1e-10 of the largest entry, float32 to 2e-6 (the
reverse pass sums in another order than autograd). Weights are spread so that gates, decays and
resets all shape the spikes: a change of any of them in one path only fails these tests.
"""

import copy

import pytest
import torch
from spikingjelly.activation_based import functional

from snnlib.methods import gated_recurrent_neuron as grn
from snnlib.surrogate import ArcTan

IN, HID = 5, 16
TOLERANCE = {torch.float32: 2e-6, torch.float64: 1e-10}


def _seq(steps, batch=3, dtype=torch.float64, seed=0):
    return (torch.randn(steps, batch, IN, generator=torch.Generator().manual_seed(seed)) * 3.0).to(dtype)


def _spread(module: torch.nn.Module, dtype=torch.float64, seed=1) -> torch.nn.Module:
    """Larger recurrent weights and varied decays, in `dtype`, so that every term matters."""
    torch.manual_seed(seed)
    module = module.to(dtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight"):
                p.normal_(0, 1.5 if "gate" in name else 1.0)
            elif "beta_raw" in name:
                p.normal_(0, 1.0)
    return module


def _loss(outputs, *states):
    """A loss that weighs every output differently and reads the final states."""
    weights = torch.linspace(-1.0, 1.0, outputs.numel(), dtype=outputs.dtype).view_as(outputs)
    return (outputs * weights).sum() + sum(0.3 * s.square().sum() for s in states)


def _run(module, calls, fused: bool, monkeypatch, between=None):
    """Outputs of `module` over the sequences `calls` (state carried), then the gradients of `_loss`
    w.r.t. the inputs and parameters; `between(module)` runs between calls."""
    monkeypatch.setenv("SNNLIB_FUSED", "1" if fused else "0")
    functional.reset_net(module)
    inputs = [x.clone().requires_grad_() for x in calls]
    outputs = []
    for k, x in enumerate(inputs):
        if k and between is not None:
            between(module)
        outputs.append(module(x))
    cells = (grn.GRSNCell, grn.InputGatedGRSNCell)
    states = [s for m in module.modules() if isinstance(m, cells) for s in m._memories.values()]
    states = [s for s in states if isinstance(s, torch.Tensor)]  # woTAP resets them to floats after a call
    out = torch.cat(outputs)
    _loss(out, *states).backward()
    grads = [x.grad for x in inputs] + [p.grad for p in module.parameters()]
    return out.detach(), [s.detach() for s in states], grads


def _assert_same(module, calls, monkeypatch, between=None):
    """The fused and the per-step path of `module` (copies) agree; returns the fused outputs."""
    dtype = calls[0].dtype
    fused = _run(copy.deepcopy(module), calls, True, monkeypatch, between)
    per_step = _run(copy.deepcopy(module), calls, False, monkeypatch, between)
    assert torch.equal(fused[0], per_step[0]), "spikes differ"
    for state_fused, state_per_step in zip(fused[1], per_step[1], strict=True):
        torch.testing.assert_close(state_fused, state_per_step, rtol=TOLERANCE[dtype], atol=0)
    for g_fused, g_per_step in zip(fused[2], per_step[2], strict=True):  # zero for W_f, W_i at T = 1 from rest
        assert (g_fused - g_per_step).abs().max() <= TOLERANCE[dtype] * g_per_step.abs().max()
    assert max(g.abs().max() for g in fused[2]) > 0
    return fused[0]


def _counting(monkeypatch) -> list:
    """Records every call of the fused routines (the name of the routine)."""
    calls = []
    for name in ("_run_fused", "_run_fused_released"):
        original = getattr(grn, name)
        def counting(*args, name=name, original=original):
            calls.append(name)
            return original(*args)

        monkeypatch.setattr(grn, name, counting)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("steps", [1, 2, 9, 60])
def test_fused_equals_per_step_spikes_states_and_gradients(dtype, steps, monkeypatch):
    cell = _spread(grn.GRSNCell(IN, HID), dtype)
    calls = _counting(monkeypatch)
    spikes = _assert_same(cell, [_seq(steps, dtype=dtype)], monkeypatch)
    assert calls == ["_run_fused"], "the fused path was not taken"
    if steps > 2:
        assert 0.1 < spikes.mean() < 0.9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_carried_across_calls_equals_one_call(dtype, monkeypatch):
    cell = _spread(grn.GRSNCell(IN, HID), dtype)
    x = _seq(30, dtype=dtype)
    whole = _run(copy.deepcopy(cell), [x], True, monkeypatch)
    split = _run(copy.deepcopy(cell), [x[:11], x[11:]], True, monkeypatch)
    assert torch.equal(split[0], whole[0])
    for a, b in zip(split[1], whole[1], strict=True):  # W_x x over 11 + 19 or 30 steps: BLAS may round differently
        torch.testing.assert_close(a, b, rtol=TOLERANCE[dtype], atol=0)
    torch.testing.assert_close(torch.cat(split[2][:2]), whole[2][0], rtol=TOLERANCE[dtype], atol=0)
    for g_split, g_whole in zip(split[2][2:], whole[2][1:], strict=True):
        assert (g_split - g_whole).abs().max() <= TOLERANCE[dtype] * g_whole.abs().max()
    _assert_same(cell, [x[:11], x[11:]], monkeypatch)  # the gradient through the carried state too


def test_stepping_one_step_at_a_time_and_reset_where(monkeypatch):
    cell = _spread(grn.GRSNCell(IN, HID))
    x = _seq(12, batch=4)
    done = torch.tensor([True, False, False, True])
    _assert_same(cell, list(x[:, None]), monkeypatch)
    _assert_same(cell, [x[:5], x[5:]], monkeypatch, between=lambda m: grn.reset_where(m, done))


@pytest.mark.parametrize("paradigm, extra", [("tap", {}), ("wotap", {}),
                                              ("wotap", dict(reset_each_step=False, readout="last"))])
@pytest.mark.parametrize("neuron", ["grsn", "igrsn"])
def test_tap_and_wotap_cores(neuron, paradigm, extra, monkeypatch):
    core = _spread(grn.SpikingCore(IN, HID, neuron=neuron, num_layers=2, paradigm=paradigm, substeps=3, **extra))
    calls = _counting(monkeypatch)
    out = _assert_same(core, [_seq(8), _seq(5, seed=2)], monkeypatch)
    assert calls and 0.05 < out.mean() < 0.95


def test_without_gradient_the_forward_loop_alone_gives_the_same(monkeypatch):
    cell = _spread(grn.GRSNCell(IN, HID))
    x = _seq(20)
    with_grad = _run(copy.deepcopy(cell), [x], True, monkeypatch)
    with torch.no_grad():
        assert torch.equal(cell(x), with_grad[0])
    assert all(torch.equal(a, b) for a, b in zip((cell.h, cell.c, cell.o), with_grad[1], strict=True))


@pytest.mark.parametrize("case", ["switched off", "non-spiking surrogate", "other surrogate"])
def test_per_step_path_where_the_fused_one_does_not_apply(case, monkeypatch):
    surrogate = {"non-spiking surrogate": ArcTan(spiking=False), "other surrogate": torch.sigmoid}.get(case)
    cell = _spread(grn.GRSNCell(IN, HID, surrogate_function=surrogate))
    monkeypatch.setenv("SNNLIB_FUSED", "0" if case == "switched off" else "1")
    calls = _counting(monkeypatch)
    cell(_seq(4)).sum().backward()
    assert not calls
    assert cell.beta_raw.grad is not None


@pytest.mark.parametrize("strict", [False, True])
def test_strict_surrogate_fires_above_threshold_only_in_both_paths(strict, monkeypatch):
    cell = _spread(grn.GRSNCell(IN, HID, surrogate_function=ArcTan(strict=strict)))
    with torch.no_grad():  # the membrane lands exactly on the threshold: u = (1 - beta) * 2 = 1 with beta = 1/2
        cell.beta_raw.zero_()
        for gate in (cell.forget_gate, cell.input_gate):
            gate.weight.zero_()
            gate.bias.fill_(-1e4)  # F = 0, I = 0: c = 0
        cell.input_proj.weight.zero_()
        cell.input_proj.bias.fill_(2.0)
    spikes = _assert_same(cell, [_seq(1)], monkeypatch)
    assert torch.all(spikes == (0.0 if strict else 1.0))


@pytest.mark.parametrize("output", ["spikes", "current"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("steps", [1, 9, 60])
def test_released_cell_fused_equals_per_step(output, dtype, steps, monkeypatch):
    cell = _spread(grn.InputGatedGRSNCell(IN, HID, output=output), dtype)
    calls = _counting(monkeypatch)
    x = _seq(steps, dtype=dtype)
    out = _assert_same(cell, [x], monkeypatch)
    assert calls == ["_run_fused_released"]
    assert steps == 1 or output == "current" or 0.1 < out.mean() < 0.9
    if steps > 1:  # carried state, and reset_where between the calls
        _assert_same(cell, [x[:3], x[3:]], monkeypatch)
        done = torch.tensor([True, False, True])
        _assert_same(cell, [x[:3], x[3:]], monkeypatch, between=lambda m: grn.reset_where(m, done))


def test_hooked_gates_run_per_step_so_synaptic_operations_are_counted(monkeypatch):
    from snnlib.metrics import synaptic_operations

    core = _spread(grn.SpikingCore(IN, HID, neuron="grsn"), torch.float32)
    x = _seq(12, dtype=torch.float32)
    counts = {}
    for switch in "01":
        monkeypatch.setenv("SNNLIB_FUSED", switch)
        counts[switch] = synaptic_operations(core, x).set_index("layer")
    assert (counts["1"].loc["cells.0.forget_gate", "dense"]) > 0
    assert counts["1"].equals(counts["0"])
    calls = _counting(monkeypatch)
    with torch.no_grad():
        core(x)
    assert calls == ["_run_fused"]  # the hooks are gone again, the fused path is back
