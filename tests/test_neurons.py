"""Tests for snnlib.neurons: snnlib, spikingjelly and snntorch neurons against a plain recurrence.

The recurrence below is written independently of all three libraries, in the decay-factor form
    H[t] = k V[t-1] + (1 - k) V_reset + a X[t],    S[t] = (H[t] >= V_th),
    V[t] = H[t] (1 - S[t]) + V_reset S[t]  (hard)  or  H[t] - V_th S[t]  (soft),
with k = 1 - 1/tau, a = 1/tau (decay_input=True) or 1; k = a = 1 for IF.
"""

import math

import pytest
import snntorch
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from snnlib import neurons
from snnlib.surrogate import ArcTan, Rectangle, Sigmoid, Triangle

T, B, N = 20, 4, 16
F64 = torch.float64


def recurrence(x, decay, input_scale, v_threshold, v_reset, spike_fn, detach_reset=False):
    """Plain LIF/IF loop over x [T, B, N]; returns spikes, pre-reset H and post-reset V, each [T, B, N]."""
    rest = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], rest)
    spikes, charged, voltages = [], [], []
    for x_t in x.unbind(0):
        h = decay * v + (1 - decay) * rest + input_scale * x_t
        s = spike_fn(h - v_threshold)
        s_reset = s.detach() if detach_reset else s
        v = h * (1 - s_reset) + rest * s_reset if v_reset is not None else h - v_threshold * s_reset
        spikes.append(s)
        charged.append(h)
        voltages.append(v)
    return torch.stack(spikes), torch.stack(charged), torch.stack(voltages)


def make_input(seed, v_threshold, input_scale, dtype=F64):
    """Seeded input whose per-step drive a * X lies in [0, 1) * v_threshold.

    With a decay k <= 0.75 this keeps H < 1.75 v_threshold, so after a soft reset V < v_threshold
    (the condition for snntorch's immediate subtract reset to match), and it gives moderate spike rates.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, N, generator=g, dtype=F64).mul(v_threshold / input_scale).to(dtype)


def weights(seed, like):
    return torch.randn(like.shape, generator=torch.Generator().manual_seed(seed + 1000), dtype=like.dtype)


def grad_of(fn, x, w, *params):
    """d(sum(w * spikes))/d(x, *params) for spikes = fn(x)."""
    x = x.clone().requires_grad_()
    spikes = fn(x)
    return torch.autograd.grad((w * spikes).sum(), (x, *params))


# (tau, decay_input, v_threshold, v_reset): generic settings plus the papers' (He et al. 2020, MPD-AGL, ASRC).
LIF_SETTINGS = [
    (2.0, True, 0.5, 0.0),
    (2.0, False, 0.5, None),
    (4.0, True, 1.0, None),
    (4.0, False, 1.0, 0.0),
    (1 / (1 - 0.3), False, 0.3, 0.0),
    (1 / (1 - 0.2), False, 0.5, 0.0),
    (2.0, False, 1.0, None),
    (2.0, True, 1.0, -0.2),
]
LIF_IDS = [
    f"tau{tau:.3g}-decay_input{int(di)}-th{th}-{'soft' if vr is None else f'hard{vr}'}"
    for tau, di, th, vr in LIF_SETTINGS
]


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize(("tau", "decay_input", "v_threshold", "v_reset"), LIF_SETTINGS, ids=LIF_IDS)
def test_lif_matches_recurrence(tau, decay_input, v_threshold, v_reset, detach_reset):
    input_scale = 1 / tau if decay_input else 1.0
    x = make_input(0, v_threshold, input_scale)
    w = weights(0, x)
    kwargs = dict(tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset)
    spike_fn = ArcTan()
    s_ref, _, v_ref = recurrence(x, 1 - 1 / tau, input_scale, v_threshold, v_reset, spike_fn, detach_reset)
    assert 0.05 < s_ref.mean().item() < 0.7  # spikes and resets happen, so decay and reset both matter
    g_ref = grad_of(
        lambda z: recurrence(z, 1 - 1 / tau, input_scale, v_threshold, v_reset, spike_fn, detach_reset)[0], x, w
    )

    nodes = [
        neurons.LIFNode(**kwargs, surrogate_function=spike_fn, store_v_seq=True),
        neuron.LIFNode(**kwargs, surrogate_function=spike_fn, step_mode="m", store_v_seq=True),
    ]
    for node in nodes:
        assert torch.equal(node(x), s_ref)
        torch.testing.assert_close(node.v_seq, v_ref, rtol=0, atol=1e-10)
        torch.testing.assert_close(node.v, v_ref[-1], rtol=0, atol=1e-10)
        functional.reset_net(node)
        torch.testing.assert_close(grad_of(node, x, w)[0], g_ref[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "surrogate", [Rectangle(0.5), Triangle(), ArcTan(3.0), Sigmoid()], ids=lambda s: type(s).__name__
)
@pytest.mark.parametrize("cls", [neurons.LIFNode, neuron.LIFNode], ids=["snnlib", "spikingjelly"])
def test_multistep_lif_backward_uses_the_given_surrogate(cls, surrogate):
    """spikingjelly 2.0 routes multi-step LIF through its own op; the snnlib surrogate's backward must still be used."""
    x = make_input(1, 0.5, 1.0)
    w = weights(1, x)
    node = cls(tau=2.0, decay_input=False, v_threshold=0.5, v_reset=0.0, surrogate_function=surrogate, step_mode="m")
    g_ref = grad_of(lambda z: recurrence(z, 0.5, 1.0, 0.5, 0.0, surrogate)[0], x, w)[0]
    g_other = grad_of(lambda z: recurrence(z, 0.5, 1.0, 0.5, 0.0, Rectangle(0.1))[0], x, w)[0]
    g = grad_of(node, x, w)[0]
    torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(g, g_other)


def test_lif_float32_default_path_matches_float64_recurrence():
    x = make_input(2, 1.0, 0.5, dtype=torch.float32)
    node = neurons.LIFNode(tau=2.0, v_threshold=1.0, store_v_seq=True)
    s_ref, _, v_ref = recurrence(x.double(), 0.5, 0.5, 1.0, 0.0, ArcTan())
    spikes = node(x)
    assert spikes.dtype == torch.float32
    assert torch.equal(spikes.double(), s_ref)
    torch.testing.assert_close(node.v_seq.double(), v_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize(("decay_input", "v_reset"), [(True, 0.0), (False, 0.0), (True, None), (False, None)])
def test_plif_matches_recurrence_and_learns_its_decay(decay_input, v_reset, detach_reset):
    init_tau, v_threshold = 1.6, 0.5
    node = neurons.PLIFNode(
        init_tau=init_tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset
    )
    assert isinstance(node.surrogate_function, ArcTan)
    assert node.w.item() == pytest.approx(-math.log(init_tau - 1))  # 1 / tau = sigmoid(w) starts at 1 / init_tau
    node.double()
    w_ref = node.w.detach().clone().requires_grad_()
    x = make_input(3, v_threshold, 1 / init_tau if decay_input else 1.0)
    wts = weights(3, x)

    def reference(z):
        q = torch.sigmoid(w_ref)  # 1 / tau
        return recurrence(z, 1 - q, q if decay_input else 1.0, v_threshold, v_reset, ArcTan(), detach_reset)[0]

    s_ref = reference(x)
    assert 0.05 < s_ref.mean().item() < 0.7
    assert torch.equal(node(x), s_ref.detach())
    functional.reset_net(node)
    gx, gw = grad_of(node, x, wts, node.w)
    gx_ref, gw_ref = grad_of(reference, x, wts, w_ref)
    assert gw.abs().item() > 1e-3  # the gradient reaches the learnable decay
    torch.testing.assert_close(gw, gw_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.3])
def test_if_matches_recurrence(v_reset, detach_reset):
    x = make_input(4, 1.0, 1.0) - 0.3  # no leak: bias the drive down so the rate stays moderate
    w = weights(4, x)
    kwargs = dict(v_threshold=1.0, v_reset=v_reset, detach_reset=detach_reset, surrogate_function=ArcTan())
    s_ref, _, v_ref = recurrence(x, 1.0, 1.0, 1.0, v_reset, ArcTan(), detach_reset)
    assert 0.05 < s_ref.mean().item() < 0.7
    g_ref = grad_of(lambda z: recurrence(z, 1.0, 1.0, 1.0, v_reset, ArcTan(), detach_reset)[0], x, w)[0]
    for node in [neurons.IFNode(**kwargs, store_v_seq=True), neuron.IFNode(**kwargs, step_mode="m", store_v_seq=True)]:
        assert torch.equal(node(x), s_ref)
        torch.testing.assert_close(node.v_seq, v_ref, rtol=0, atol=1e-10)
        functional.reset_net(node)
        torch.testing.assert_close(grad_of(node, x, w)[0], g_ref, rtol=1e-9, atol=1e-12)


# Every (v_reset, detach_reset) that snntorch's Leaky can reproduce: all but a detached soft reset.
MATCHABLE = [(0.0, False), (0.0, True), (None, False)]


@pytest.mark.parametrize(("v_reset", "detach_reset"), MATCHABLE)
@pytest.mark.parametrize(
    ("tau", "decay_input", "v_threshold"), [(2.0, True, 0.5), (4.0, False, 1.0), (1 / 0.7, False, 0.3)]
)
def test_snntorch_leaky_through_bridge_matches_recurrence(tau, decay_input, v_threshold, v_reset, detach_reset):
    eq = neurons.leaky_for_lif(tau, decay_input, v_threshold, v_reset, detach_reset)
    assert eq.lif_kwargs() == dict(
        tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset, detach_reset=detach_reset
    )
    assert eq.beta == pytest.approx(1 - 1 / tau)
    x = make_input(5, v_threshold, eq.input_scale)
    w = weights(5, x)
    # float64 beta/threshold tensors: snntorch would round plain floats to float32.
    kw = eq.leaky_kwargs()
    kw.update(beta=torch.tensor(kw["beta"], dtype=F64), threshold=torch.tensor(kw["threshold"], dtype=F64))
    bridge = neurons.LeakyMultiStep(snntorch.Leaky(**kw, spike_grad=ArcTan()), store_mem_seq=True)

    s_ref, h_ref, v_ref = recurrence(x, 1 - 1 / tau, eq.input_scale, v_threshold, v_reset, ArcTan(), detach_reset)
    assert 0.05 < s_ref.mean().item() < 0.7
    assert torch.equal(bridge(eq.input_scale * x), s_ref)
    torch.testing.assert_close(bridge.mem_seq, h_ref if eq.mem_is_pre_reset else v_ref, rtol=0, atol=1e-10)
    assert not torch.allclose(h_ref, v_ref)  # so the line above tells H from V

    def run_bridge(z):
        functional.reset_net(bridge)
        return bridge(eq.input_scale * z)

    g_ref = grad_of(
        lambda z: recurrence(z, 1 - 1 / tau, eq.input_scale, v_threshold, v_reset, ArcTan(), detach_reset)[0], x, w
    )[0]
    torch.testing.assert_close(grad_of(run_bridge, x, w)[0], g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("mechanism", "delay", "v_reset", "detach_reset"),
    [("zero", True, 0.0, True), ("zero", False, 0.0, False), ("subtract", False, None, False)],
)
def test_lif_for_leaky_inverts_leaky_for_lif(mechanism, delay, v_reset, detach_reset):
    eq = neurons.lif_for_leaky(0.3, 0.3, mechanism, delay)
    assert eq.lif_kwargs() == dict(
        tau=pytest.approx(1 / 0.7), decay_input=False, v_threshold=0.3, v_reset=v_reset, detach_reset=detach_reset
    )
    assert eq.leaky_kwargs() == dict(beta=0.3, threshold=0.3, reset_mechanism=mechanism, reset_delay=delay)
    back = neurons.leaky_for_lif(eq.tau, eq.decay_input, eq.threshold, eq.v_reset, eq.detach_reset)
    assert (back.reset_mechanism, back.reset_delay, back.mem_is_pre_reset) == (mechanism, delay, eq.mem_is_pre_reset)


def test_snntorch_subtract_with_delay_really_differs_from_soft_reset():
    """Why lif_for_leaky refuses ('subtract', reset_delay=True): it subtracts after the leak."""
    x = make_input(6, 1.0, 1.0)
    leaky = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract", reset_delay=True, spike_grad=ArcTan())
    s_ref, _, _ = recurrence(x.float(), 0.5, 1.0, 1.0, None, ArcTan())
    assert not torch.equal(neurons.LeakyMultiStep(leaky)(x.float()), s_ref)


def test_snntorch_immediate_subtract_diverges_once_a_reset_membrane_stays_above_threshold():
    """The documented limit of the soft-reset match: H >= 2 threshold makes snntorch subtract twice."""
    x = torch.tensor([2.5, 0.0, 0.0], dtype=F64).view(3, 1, 1)  # H = 2.5 -> V = 1.5 >= 1 after the reset
    s_ref, _, v_ref = recurrence(x, 0.5, 1.0, 1.0, None, ArcTan())
    leaky = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract", reset_delay=False, spike_grad=ArcTan())
    assert v_ref[0].item() >= 1.0
    assert s_ref.flatten().tolist() == [1.0, 0.0, 0.0]
    assert neurons.LeakyMultiStep(leaky)(x).flatten().tolist() == [1.0, 0.0, 0.0]  # still equal here ...
    x[1] = 0.5  # ... but spikingjelly fires at t=1 (H = 0.75 + 0.5), snntorch first subtracts again (H - 1 < 1)
    s_ref, _, _ = recurrence(x, 0.5, 1.0, 1.0, None, ArcTan())
    leaky = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract", reset_delay=False, spike_grad=ArcTan())
    assert s_ref.flatten().tolist() == [1.0, 1.0, 0.0]
    assert neurons.LeakyMultiStep(leaky)(x).flatten().tolist() == [1.0, 0.0, 0.0]


def test_firing_exactly_at_threshold():
    """spikingjelly/snnlib fire on H >= threshold, snntorch's own surrogates on mem > threshold."""
    x = torch.full((1, 1, 1), 0.5)  # first step: H = 0 + 0.5, exactly the threshold
    assert neurons.LIFNode(tau=2.0, decay_input=False, v_threshold=0.5)(x).item() == 1.0
    assert neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.5, step_mode="m")(x).item() == 1.0
    assert neurons.IFNode(v_threshold=0.5)(x).item() == 1.0
    assert neurons.LeakyMultiStep(snntorch.Leaky(beta=0.5, threshold=0.5))(x).item() == 0.0
    assert neurons.LeakyMultiStep(snntorch.Leaky(beta=0.5, threshold=0.5, spike_grad=ArcTan()))(x).item() == 1.0
    assert neurons.LIFNode(tau=2.0, decay_input=False, v_threshold=0.5)(x - 1e-6).item() == 0.0


def test_changing_decay_or_reset_changes_the_output():
    """The equivalence tests are sensitive: these inputs tell tau and the reset kind apart."""
    x = make_input(7, 1.0, 1.0)
    base_spikes = neurons.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0)(x)
    assert not torch.equal(neurons.LIFNode(tau=2.2, decay_input=False, v_threshold=1.0)(x), base_spikes)
    assert not torch.equal(neurons.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=None)(x), base_spikes)
    s_wrong_decay, _, _ = recurrence(x, 1 - 1 / 2.2, 1.0, 1.0, 0.0, ArcTan())
    s_wrong_reset, _, _ = recurrence(x, 0.5, 1.0, 1.0, None, ArcTan())
    assert not torch.equal(s_wrong_decay, base_spikes) and not torch.equal(s_wrong_reset, base_spikes)


def make_network():
    return nn.Sequential(
        neurons.LIFNode(tau=2.0, v_threshold=0.5),
        neurons.PLIFNode(init_tau=2.0, v_threshold=0.2),
        neurons.IFNode(v_threshold=0.3, v_reset=None),
        neurons.LeakyMultiStep(snntorch.Leaky(beta=0.5, threshold=0.2)),
    ).double()


def test_reset_net_restores_the_initial_state():
    net = make_network()
    x = make_input(8, 1.0, 0.5)
    first = net(x)
    carried = net(x)  # without a reset the state of the first call carries over
    functional.reset_net(net)
    again = net(x)
    assert first.sum() > 0
    assert torch.equal(first, again)
    assert not torch.equal(first, carried)


@pytest.mark.parametrize("index", range(4), ids=["LIF", "PLIF", "IF", "Leaky"])
def test_multi_step_equals_a_loop_of_single_steps(index):
    multi = make_network()[index]
    single = make_network()[index]
    single.step_mode = "s"
    x = make_input(9, 0.5, 0.5)
    expected = multi(x)
    assert torch.equal(torch.stack([single(x_t) for x_t in x.unbind(0)]), expected)
    assert expected.sum() > 0


def test_default_surrogate_is_a_fresh_arctan_per_neuron():
    a, b = neurons.LIFNode(), neurons.LIFNode()
    assert isinstance(a.surrogate_function, ArcTan) and a.surrogate_function.alpha == 2.0
    assert a.surrogate_function is not b.surrogate_function
    assert neurons.LIFNode().step_mode == "m"


def test_bridge_checks_its_input_and_state():
    with pytest.raises(TypeError, match="snntorch.Leaky"):
        neurons.LeakyMultiStep(neurons.LIFNode())
    with pytest.raises(ValueError, match="init_hidden=False"):
        neurons.LeakyMultiStep(snntorch.Leaky(beta=0.5, init_hidden=True))
    bridge = neurons.LeakyMultiStep(snntorch.Leaky(beta=0.5))
    with pytest.raises(ValueError, match=r"time-first input \[T, B, \.\.\.\]"):
        bridge(torch.ones(3))
    bridge(torch.ones(2, 4, 3))
    with pytest.raises(ValueError, match="reset_net"):
        bridge(torch.ones(2, 5, 3))
    functional.reset_net(bridge)
    assert bridge(torch.ones(2, 5, 3)).shape == (2, 5, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(tau=1.0), ValueError, "tau must be > 1"),
        (dict(tau="2"), TypeError, "tau must be a real number"),
        (dict(v_threshold=float("nan")), ValueError, "v_threshold must be finite"),
        (dict(v_reset="zero"), TypeError, "v_reset"),
        (dict(surrogate_function=0.5), TypeError, "surrogate_function must be callable"),
        (dict(step_mode="multi"), ValueError, "step_mode"),
        (dict(detach_reset=1), TypeError, "detach_reset must be True or False"),
    ],
)
def test_neurons_reject_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        neurons.LIFNode(**kwargs)


def test_plif_rejects_bad_init_tau():
    with pytest.raises(ValueError, match="init_tau must be > 1"):
        neurons.PLIFNode(init_tau=0.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: neurons.leaky_for_lif(2.0, v_reset=None, detach_reset=True), "soft reset with detach_reset=True"),
        (lambda: neurons.leaky_for_lif(2.0, v_reset=0.3), "v_reset=0.3 has no match"),
        (lambda: neurons.leaky_for_lif(2.0, v_threshold=-1.0), "positive threshold"),
        (lambda: neurons.lif_for_leaky(0.5, reset_mechanism="subtract", reset_delay=True), "after the leak"),
        (lambda: neurons.lif_for_leaky(0.5, reset_mechanism="none", reset_delay=False), "never"),
        (lambda: neurons.lif_for_leaky(1.0, reset_mechanism="zero"), "IFNode"),
    ],
)
def test_mapping_refuses_settings_that_cannot_match(call, match):
    with pytest.raises(ValueError, match=match):
        call()
