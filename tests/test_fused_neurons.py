"""Tests for the fused multi-step path of snnlib.neurons (LIFNode, PLIFNode, IFNode).

The fused neurons run a whole [T, B, ...] sequence in one autograd Function, on CPU through numba
kernels, on CUDA through Triton kernels and elsewhere through PyTorch calls; all three back ends
are tested (the fixture `backend` switches numba off for "torch", and for "triton" runs the Triton
kernels under Triton's interpreter on CPU, see conftest.py). References, all independent of snnlib's code:
- spikingjelly 2.0's LIFNode / ParametricLIFNode / IFNode with the same surrogate, whose autograd
  runs step by step: spikes, V and v_seq must be bit-identical, gradients equal to rounding;
- snntorch's Leaky through LeakyMultiStep, where the conventions match (neurons.leaky_for_lif);
- torch.autograd.gradcheck in float64 where the neuron is smooth: a surrogate in non-spiking
  mode (S = primitive(H - V_th)), or spiking with a surrogate whose support no H comes near.
"""

import math
import multiprocessing
import os

import numpy as np
import pytest
import snntorch
import torch
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based import surrogate as sj_surrogate

from snnlib import neurons
from snnlib.surrogate import ArcTan, Rectangle, Sigmoid, Triangle

T, B, N = 16, 3, 24
F32, F64 = torch.float32, torch.float64


def seeded(seed, *shape, dtype=F64):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def gaussian(seed, *shape, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


# (kind, constructor arguments) covering decay_input, non-zero v_reset, soft reset and thresholds.
CASES = [
    ("LIF", dict(tau=2.0, decay_input=True, v_threshold=0.5, v_reset=0.0)),
    ("LIF", dict(tau=1 / (1 - 0.3), decay_input=False, v_threshold=0.3, v_reset=0.0)),
    ("LIF", dict(tau=3.0, decay_input=True, v_threshold=0.4, v_reset=None)),
    ("LIF", dict(tau=1.7, decay_input=False, v_threshold=0.6, v_reset=-0.2)),
    ("PLIF", dict(init_tau=1.6, decay_input=True, v_threshold=0.5, v_reset=0.0)),
    ("PLIF", dict(init_tau=2.5, decay_input=False, v_threshold=0.4, v_reset=None)),
    ("PLIF", dict(init_tau=1.8, decay_input=True, v_threshold=0.45, v_reset=-0.1)),
    ("IF", dict(v_threshold=0.8, v_reset=0.0)),
    ("IF", dict(v_threshold=0.7, v_reset=None)),
]
CLASSES = {
    "LIF": (neurons.LIFNode, neuron.LIFNode),
    "PLIF": (neurons.PLIFNode, neuron.ParametricLIFNode),
    "IF": (neurons.IFNode, neuron.IFNode),
}
SURROGATES = [lambda: ArcTan(2.0), lambda: Sigmoid(4.0), lambda: Rectangle(0.6), lambda: Triangle(0.8)]


def case_id(case):
    kind, kw = case
    reset = "soft" if kw["v_reset"] is None else f"hard{kw['v_reset']}"
    return f"{kind}-{reset}-decay_input{int(kw.get('decay_input', False))}"


def drive(seed, kind, kw, dtype, steps=T, batch=B, size=N):
    """Input [steps, batch, size] whose per-step drive gives spike rates of roughly 0.1-0.5."""
    x = seeded(seed, steps, batch, size) * (1.4 * kw["v_threshold"])
    if kind == "IF":
        x = x - 0.25 * kw["v_threshold"]
    elif kw.get("decay_input", False):
        x = x * (kw.get("tau") or kw["init_tau"])
    return x.to(dtype)


def make_pair(kind, kw, surrogate, detach_reset, dtype):
    """The snnlib neuron and spikingjelly's, same arguments, same surrogate object, v_seq stored."""
    ours, theirs = CLASSES[kind]
    common = dict(kw, surrogate_function=surrogate, detach_reset=detach_reset, store_v_seq=True)
    return ours(**common).to(dtype), theirs(**common, step_mode="m").to(dtype)


def loss_grads(node, x, weights, v0=None):
    """Gradients of a loss using spikes, v_seq and the final v, w.r.t. x, the initial v and the parameters."""
    x = x.clone().requires_grad_()
    functional.reset_net(node)
    inputs = [x]
    if v0 is not None:
        node.v = v0.clone().requires_grad_()
        inputs.append(node.v)
    spikes = node(x)
    loss = (weights * spikes).sum() + 0.3 * (weights * node.v_seq).sum() + 0.7 * node.v.sum()
    params = list(node.parameters())
    return spikes.detach(), node.v_seq.detach(), torch.autograd.grad(loss, inputs + params)


def assert_grads_close(ours, theirs, dtype, names):
    """float64: within 1e-12 of the largest entry; float32: 1e-6 for x and v, 1e-5 for w (a sum of T*B*N terms)."""
    for g, r, name in zip(ours, theirs, names, strict=True):
        tolerance = 1e-12 if dtype == F64 else 1e-5 if name == "w" else 1e-6
        error = (g - r).abs().max().item() / r.abs().max().item()
        assert error <= tolerance, f"d/d{name}: relative error {error:.2e} > {tolerance:.0e}"


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("detach_reset", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_neuron_equals_spikingjelly(case, detach_reset, dtype, backend):
    kind, kw = case
    index = CASES.index(case)
    surrogate = SURROGATES[(index + detach_reset) % len(SURROGATES)]()
    ours, theirs = make_pair(kind, kw, surrogate, detach_reset, dtype)
    if kind == "PLIF":  # a learnt decay other than the initial one
        with torch.no_grad():
            ours.w.add_(0.3)
            theirs.w.add_(0.3)
    x = drive(index, kind, kw, dtype)
    weights = gaussian(100 + index, T, B, N, dtype=dtype)
    v0 = seeded(200 + index, B, N, dtype=dtype) * kw["v_threshold"]  # a carried, differentiable state

    s_ours, vseq_ours, g_ours = loss_grads(ours, x, weights, v0)
    s_ref, vseq_ref, g_ref = loss_grads(theirs, x, weights, v0)
    assert 0.05 < s_ref.mean().item() < 0.6  # spikes and resets both happen
    assert torch.equal(s_ours, s_ref)
    assert torch.equal(vseq_ours, vseq_ref)
    assert torch.equal(ours.v.detach(), theirs.v.detach())
    assert_grads_close(g_ours, g_ref, dtype, ["x", "v0", "w"][: len(g_ref)])


def random_setting(seed):
    """A seeded draw of neuron kind, constructor arguments, surrogate, detach_reset and dtype."""
    rng = np.random.default_rng(seed)
    kind = ["LIF", "PLIF", "IF"][seed % 3]
    kw = dict(
        v_threshold=float(rng.uniform(0.2, 1.5)), v_reset=[0.0, None, float(rng.uniform(-0.5, 0.0))][rng.integers(3)]
    )
    if kind != "IF":
        kw["decay_input"] = bool(rng.integers(2))
        kw["tau" if kind == "LIF" else "init_tau"] = float(rng.uniform(1.2, 5.0))
    surrogate = [ArcTan, Sigmoid, Rectangle, Triangle][rng.integers(4)](float(rng.uniform(0.5, 3.0)))
    return kind, kw, surrogate, bool(rng.integers(2)), [F32, F64][rng.integers(2)]


@pytest.mark.parametrize("seed", range(12))
def test_random_settings_equal_spikingjelly(seed, backend):
    kind, kw, surrogate, detach_reset, dtype = random_setting(seed)
    ours, theirs = make_pair(kind, kw, surrogate, detach_reset, dtype)
    x = drive(300 + seed, kind, kw, dtype)
    weights = gaussian(400 + seed, T, B, N, dtype=dtype)
    s_ours, vseq_ours, g_ours = loss_grads(ours, x, weights)
    s_ref, vseq_ref, g_ref = loss_grads(theirs, x, weights)
    assert s_ref.sum() > 0
    assert torch.equal(s_ours, s_ref) and torch.equal(vseq_ours, vseq_ref)
    assert_grads_close(g_ours, g_ref, dtype, ["x", "w"][: len(g_ref)])


@pytest.mark.parametrize(
    ("change", "field"),
    [("surrogate", "grad"), ("tau", "spikes"), ("reset", "spikes"), ("detach_reset", "grad")],
)
def test_the_reference_comparison_detects_a_change_in_one_implementation(change, field):
    """The data above are sensitive: changing one setting in one neuron only breaks the comparison."""
    kind, kw = CASES[0]
    x = drive(0, kind, kw, F64)
    weights = gaussian(100, T, B, N)
    ours, _ = make_pair(kind, kw, ArcTan(2.0), False, F64)
    changed = dict(kw)
    surrogate, detach_reset = ArcTan(2.0), False
    if change == "surrogate":
        surrogate = ArcTan(2.5)
    elif change == "tau":
        changed["tau"] = kw["tau"] * 1.05
    elif change == "reset":
        changed["v_reset"] = None
    else:
        detach_reset = True
    _, theirs = make_pair(kind, changed, surrogate, detach_reset, F64)
    s_ours, _, g_ours = loss_grads(ours, x, weights)
    s_ref, _, g_ref = loss_grads(theirs, x, weights)
    if field == "spikes":
        assert not torch.equal(s_ours, s_ref)
    else:
        assert torch.equal(s_ours, s_ref) and not torch.allclose(g_ours[0], g_ref[0], rtol=1e-3, atol=0)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize(("v_reset", "detach_reset"), [(0.0, False), (0.0, True), (None, False)])
def test_fused_lif_equals_snntorch_leaky_where_the_conventions_match(v_reset, detach_reset, dtype, backend):
    """The three spikingjelly/snntorch matches of neurons.leaky_for_lif, with one snnlib surrogate for both."""
    eq = neurons.leaky_for_lif(
        1 / (1 - 0.6), decay_input=False, v_threshold=0.5, v_reset=v_reset, detach_reset=detach_reset
    )
    kw = eq.leaky_kwargs()
    kw.update(beta=torch.tensor(kw["beta"], dtype=dtype), threshold=torch.tensor(kw["threshold"], dtype=dtype))
    leaky = neurons.LeakyMultiStep(snntorch.Leaky(**kw, spike_grad=Triangle(0.8)))
    lif = neurons.LIFNode(**eq.lif_kwargs(), surrogate_function=Triangle(0.8)).to(dtype)
    # drive < 0.4 * threshold: a soft-reset membrane stays below threshold (the match's condition)
    x = seeded(7, T, B, N, dtype=dtype) * 0.4
    x[::3] += 0.3  # bursts, so that neurons fire
    weights = gaussian(8, T, B, N, dtype=dtype)
    grads = []
    for node in (lif, leaky):
        xx = x.clone().requires_grad_()
        spikes = node(xx)
        grads.append((spikes.detach(), torch.autograd.grad((weights * spikes).sum(), xx)[0]))
    assert 0.05 < grads[1][0].mean().item() < 0.6
    assert torch.equal(grads[0][0], grads[1][0])
    assert_grads_close([grads[0][1]], [grads[1][1]], dtype, ["x"])


def smooth_run(kind, kw, surrogate, x, v0, w):
    """Spikes, final v and v_seq of a fused neuron as a function of (x, v0, w), for gradcheck."""
    ours = CLASSES[kind][0](**kw, surrogate_function=surrogate, store_v_seq=True).double()
    ours.v = v0
    params = {"w": w} if kind == "PLIF" else {}
    spikes = torch.func.functional_call(ours, params, (x,))
    return spikes, ours.v, ours.v_seq


def gradcheck(fn, inputs, fast_mode=True):
    """torch.autograd.gradcheck; its fast mode compares v^T J u for random u, v drawn from the global generator."""
    torch.manual_seed(0)
    return torch.autograd.gradcheck(fn, inputs, fast_mode=fast_mode)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradcheck_with_a_smooth_spike(case):
    """Non-spiking surrogate: S = primitive(H - V_th) is smooth, so the backward pass must equal finite differences.

    Fast mode for all cases; the full Jacobian for one PLIF case (every path: x, v0, w, v_seq, v).
    """
    kind, kw = case
    x = drive(3, kind, kw, F64, steps=5)[:, :2, :3].clone().requires_grad_()
    v0 = (seeded(4, 2, 3) * kw["v_threshold"]).requires_grad_()
    w = torch.tensor(0.4, dtype=F64, requires_grad=True)
    surrogate = Sigmoid(3.0, spiking=False) if CASES.index(case) % 2 else ArcTan(1.5, spiking=False)
    assert gradcheck(lambda *a: smooth_run(kind, kw, surrogate, *a), (x, v0, w), fast_mode=CASES.index(case) != 6)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_gradcheck_of_reset_and_decay_paths_while_spiking(case):
    """Spiking (so on the numba kernels), with a surrogate of support |H - V_th| < 1e-4 that no H comes
    near: the neuron is then piecewise smooth, and its true derivative (through charge, reset, decay,
    w and v0) is what backward must give. The smooth test above covers the PyTorch back end."""
    kind, kw = case
    x = drive(5, kind, kw, F64, steps=6)[:, :2, :4].clone().requires_grad_()
    v0 = (seeded(6, 2, 4) * kw["v_threshold"]).requires_grad_()
    w = torch.tensor(0.2, dtype=F64, requires_grad=True)
    narrow = Rectangle(2e-4)
    spikes, _, _ = smooth_run(kind, kw, narrow, x, v0, w)
    assert 0 < spikes.sum() < spikes.numel()
    # Were an H within the support, backward would give 1/width = 5000 where finite differences see 0.
    assert gradcheck(lambda *a: smooth_run(kind, kw, narrow, *a), (x, v0, w), fast_mode=CASES.index(case) != 6)


def test_numba_and_torch_back_ends_agree(monkeypatch):
    kind, kw = CASES[6]
    x = drive(9, kind, kw, F64)
    weights = gaussian(10, T, B, N)
    v0 = seeded(11, B, N)
    results = []
    for switch_off in (False, True):
        if switch_off:
            monkeypatch.setattr(neurons, "_numba_kernels", lambda: None)
        node = neurons.PLIFNode(**kw, surrogate_function=Sigmoid(), store_v_seq=True).double()
        results.append(loss_grads(node, x, weights, v0))
    (s_a, v_a, g_a), (s_b, v_b, g_b) = results
    assert torch.equal(s_a, s_b) and torch.equal(v_a, v_b)
    assert_grads_close(g_a, g_b, F64, ["x", "v0", "w"])


def test_splitting_the_neurons_over_threads_changes_nothing(monkeypatch):
    """Large layers run the numba kernels in torch.get_num_threads() slices of neurons; force it on a small one."""
    kind, kw = CASES[6]
    x = drive(22, kind, kw, F32, batch=4, size=100)
    weights = gaussian(24, T, 4, 100, dtype=F32)
    results = []
    threads = torch.get_num_threads()
    try:
        for split in (False, True):
            torch.set_num_threads(2)
            monkeypatch.setattr(neurons, "_PARALLEL_ELEMENTS", 1 if split else 2**62)
            node = neurons.PLIFNode(**kw, surrogate_function=ArcTan(), store_v_seq=True)
            results.append(loss_grads(node, x, weights, seeded(25, 4, 100, dtype=F32)))
    finally:
        torch.set_num_threads(threads)
    (s_a, v_a, g_a), (s_b, v_b, g_b) = results
    assert 0.05 < s_a.mean().item() < 0.6
    assert torch.equal(s_a, s_b) and torch.equal(v_a, v_b)
    assert torch.equal(g_a[0], g_b[0]) and torch.equal(g_a[1], g_b[1])
    torch.testing.assert_close(g_a[2], g_b[2], rtol=1e-6, atol=0)  # w: the same terms, summed in another order



def _split_spikes(x):
    """Spikes of a LIF layer on x, its neurons split over two threads (module-level: also runs in a forked child)."""
    neurons._PARALLEL_ELEMENTS = 1
    torch.set_num_threads(2)
    with torch.no_grad():
        return neurons.LIFNode(tau=2.0, v_threshold=0.5)(x)


@pytest.mark.skipif(not hasattr(os, "fork") or neurons._numba_kernels() is None, reason="needs fork and numba")
def test_a_forked_process_splits_over_threads_of_its_own(monkeypatch):
    """The kernels' worker threads are kept per process: a child forked after the parent used them
    (the threads do not survive the fork) must start its own instead of waiting forever."""
    monkeypatch.setattr(neurons, "_PARALLEL_ELEMENTS", neurons._PARALLEL_ELEMENTS)  # restored afterwards
    x = drive(26, "LIF", dict(tau=2.0, v_threshold=0.5, v_reset=0.0), F32, batch=4, size=128)
    threads = torch.get_num_threads()
    try:
        expected = _split_spikes(x)  # the parent's worker threads now exist
    finally:
        torch.set_num_threads(threads)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_split_spikes, (x,)).get(timeout=60)
    assert torch.equal(got, expected) and expected.any()


def saved_bytes(node, x):
    """Bytes of the tensors autograd saves for backward during node(x) (inputs x and parameters excluded)."""
    saved = []

    def pack(t):
        if t.data_ptr() != x.data_ptr() and not isinstance(t, torch.nn.Parameter):
            saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        node(x)
    return sum(saved)


@pytest.mark.parametrize("kind", ["LIF", "PLIF", "IF"])
def test_fused_neurons_save_one_sequence_tensor_for_backward(kind, backend):
    """H [T, B, N] only (plus V[-1], [B, N], for PLIF); spikingjelly's step-by-step autograd saves more."""
    kw = dict(v_threshold=0.5, v_reset=0.0)
    ours, theirs = make_pair(kind, kw, ArcTan(), False, F32)
    x = drive(12, kind, kw, F32).requires_grad_()
    expected = T * B * N * 4 + (B * N * 4 if kind == "PLIF" else 0)
    assert saved_bytes(ours, x) == expected
    assert saved_bytes(theirs, x) > 1.5 * expected


def test_state_carries_over_calls_like_one_long_call(backend):
    """Truncated BPTT: two calls of T steps give one call of 2T steps, gradients through the carried v."""
    kw = dict(tau=2.0, decay_input=True, v_threshold=0.5, v_reset=0.0)
    x = drive(13, "LIF", kw, F64, steps=2 * T).requires_grad_()
    weights = gaussian(14, 2 * T, B, N)
    node = neurons.LIFNode(**kw)
    once = node(x)
    (g_once,) = torch.autograd.grad((weights * once).sum(), x)
    functional.reset_net(node)
    twice = torch.cat([node(x[:T]), node(x[T:])])
    (g_twice,) = torch.autograd.grad((weights * twice).sum(), x)
    assert torch.equal(once, twice)
    torch.testing.assert_close(g_twice, g_once, rtol=1e-12, atol=1e-12)
    assert g_once[:T].abs().sum() > 0
    functional.reset_net(node)
    node(x[:T])
    functional.detach_net(node)  # cut the graph: the second call no longer reaches the first input
    (g_cut,) = torch.autograd.grad((weights[T:] * node(x[T:])).sum(), x)
    assert torch.all(g_cut[:T] == 0)
    torch.testing.assert_close(g_cut[T:], g_once[T:], rtol=1e-12, atol=1e-12)  # x[T:] acts on later steps only


def test_inference_and_functional_forms_give_the_same_spikes(backend):
    kw = dict(tau=2.0, v_threshold=0.5, v_reset=None)
    x = drive(15, "LIF", kw, F32)
    node = neurons.LIFNode(**kw, store_v_seq=True)
    with torch.no_grad():
        spikes = node(x)
        v_seq, v = node.v_seq, node.v
    functional.reset_net(node)
    with_grad = node(x.clone().requires_grad_())
    assert not spikes.requires_grad and with_grad.requires_grad
    assert torch.equal(spikes, with_grad.detach()) and torch.equal(v_seq, node.v_seq.detach())
    (out,), (v_functional,) = node.multi_step_functional_forward((x,), (torch.zeros(B, N),))
    assert torch.equal(out, spikes) and torch.equal(v_functional, v)
    strided = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, non-contiguous layout
    functional.reset_net(node)
    assert torch.equal(node(strided), spikes)


def test_surrogate_width_is_read_per_call_and_frozen_for_its_backward(backend):
    kw = dict(tau=2.0, decay_input=False, v_threshold=0.5, v_reset=0.0)
    x = drive(16, "LIF", kw, F64).requires_grad_()
    weights = gaussian(17, T, B, N)
    surrogate = Rectangle(0.4)
    node = neurons.LIFNode(**kw, surrogate_function=surrogate)
    reference = neuron.LIFNode(**kw, surrogate_function=Rectangle(0.4), step_mode="m").double()
    spikes = node(x)
    surrogate.width = 0.9  # changed between forward and backward: this backward still uses 0.4
    (g,) = torch.autograd.grad((weights * spikes).sum(), x)
    (g_ref,) = torch.autograd.grad((weights * reference(x)).sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    functional.reset_net(node)
    (g_wide,) = torch.autograd.grad((weights * node(x)).sum(), x)  # the next call uses 0.9
    assert not torch.allclose(g_wide, g)


def test_strict_surrogate_fires_above_threshold_only(backend):
    x = torch.full((2, 1, 3), 0.5)
    assert neurons.IFNode(v_threshold=0.5, surrogate_function=ArcTan(strict=True))(x)[0].sum() == 0
    assert neurons.IFNode(v_threshold=0.5, surrogate_function=ArcTan())(x)[0].sum() == 3


class HalfArcTan(ArcTan):
    """A user's surrogate: a subclass of ArcTan (so not one the numba kernel evaluates itself) with half its slope."""

    @staticmethod
    def derivative(x, alpha):
        return ArcTan.derivative(x, alpha) / 2


def test_a_user_surrogate_uses_its_own_derivative(backend):
    kind, kw = CASES[3]
    x = drive(20, kind, kw, F64)
    weights = gaussian(21, T, B, N)
    ours, theirs = make_pair(kind, kw, HalfArcTan(), False, F64)
    s_ours, _, g_ours = loss_grads(ours, x, weights)
    s_ref, _, g_ref = loss_grads(theirs, x, weights)
    assert torch.equal(s_ours, s_ref)
    assert_grads_close(g_ours, g_ref, F64, ["x"])
    _, _, g_arctan = loss_grads(make_pair(kind, kw, ArcTan(), False, F64)[0], x, weights)
    assert not torch.allclose(g_ours[0], g_arctan[0], rtol=1e-3, atol=0)


def test_other_surrogates_fall_back_to_spikingjelly():
    kw = dict(tau=2.0, v_threshold=0.5, v_reset=0.0)
    x = drive(18, "LIF", kw, F32).requires_grad_()
    ours = neurons.LIFNode(**kw, surrogate_function=sj_surrogate.ATan())
    theirs = neuron.LIFNode(**kw, surrogate_function=sj_surrogate.ATan(), step_mode="m")
    s = ours(x)
    assert torch.equal(s, theirs(x))
    assert s.grad_fn is not None and "Fused" not in type(s.grad_fn).__name__


def test_snnlib_fused_0_runs_the_per_step_code_with_the_same_spikes(monkeypatch):
    kw = dict(tau=2.0, v_threshold=0.5, v_reset=0.0)
    x = drive(19, "LIF", kw, F32).requires_grad_()
    fused = neurons.LIFNode(**kw)(x)
    monkeypatch.setenv("SNNLIB_FUSED", "0")
    per_step = neurons.LIFNode(**kw)(x)
    assert "Fused" in type(fused.grad_fn).__name__
    assert "Fused" not in type(per_step.grad_fn).__name__
    assert torch.equal(per_step, fused)


def test_a_bad_snnlib_fused_value_names_the_allowed_ones(monkeypatch):
    monkeypatch.setenv("SNNLIB_FUSED", "off")
    with pytest.raises(ValueError, match=r"SNNLIB_FUSED must be 0 .* or 1 .*got 'off'"):
        neurons.LIFNode()(torch.ones(3, 2, 4))


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.ones(5), ValueError, r"time-first input \[T, B, \.\.\.\]"),
        (torch.ones(0, 2, 3), ValueError, "T >= 1"),
        (torch.ones(3, 2, dtype=torch.int64), TypeError, "floating-point"),
    ],
)
def test_multi_step_rejects_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        neurons.LIFNode()(x)


def test_plif_learns_its_decay_through_the_fused_path(backend):
    """A few SGD steps on w move the PLIF's tau in the direction that lowers the loss."""
    node = neurons.PLIFNode(init_tau=2.0, v_threshold=0.5)
    x = drive(19, "PLIF", dict(init_tau=2.0, v_threshold=0.5, decay_input=True), F32)
    target = 0.05
    losses = []
    for _ in range(5):
        functional.reset_net(node)
        loss = (node(x).mean() - target) ** 2
        (grad,) = torch.autograd.grad(loss, node.w)
        assert math.isfinite(grad.item()) and grad.item() != 0
        with torch.no_grad():
            node.w -= 20.0 * grad
        losses.append(loss.item())
    assert losses[-1] < losses[0]
