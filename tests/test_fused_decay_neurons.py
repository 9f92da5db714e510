"""Tests for the fused decay-factor neurons: He et al. 2020's HeLIFNode and MPD-AGL's MPDLIFNode/MPDPLIFNode.

Both run multi-step calls through snnlib.neurons.fused_decay_lif (numba kernels, or PyTorch loops
when the fixture `backend` switches numba off). The reference is the authors' recurrence, written
here as a plain per-step loop whose autograd builds the graph step by step:

    u[t] = decay * u[t-1] * (1 - o[t-1]) + x[t],   u[-1] = 0, o[-1] = 0
    o[t] = u[t] > V_th (He)  or  u[t] >= V_th (MPD)
    do/du ~ (1 / w[t]) 1{|u[t] - V_th| < w[t] / 2}  (rectangle; He: w = 2 lens at every step)

Spikes and membranes must be bit-identical and the gradients w.r.t. the input, a weight in front
of the neuron and the learnable decay equal within 1e-6 of their largest entry.
"""

import pytest
import torch
from spikingjelly.activation_based import functional

from snnlib import neurons
from snnlib.methods import adaptive_surrogate as mpd
from snnlib.methods import snn_vs_rnn as he

T, B, N_IN, N = 10, 3, 7, 20
F32, F64 = torch.float32, torch.float64


class RectangleSpike(torch.autograd.Function):
    """Heaviside forward (strict: u > th, else u >= th); backward 1/width on |u - th| < width / 2."""

    @staticmethod
    def forward(ctx, u, threshold, width, strict):
        ctx.save_for_backward(u)
        ctx.threshold, ctx.width = threshold, width
        return (u > threshold if strict else u >= threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        inside = ((u - ctx.threshold).abs() < ctx.width / 2).to(u.dtype)
        return grad * inside / ctx.width, None, None, None


def reference(x, decay, threshold, widths, strict):
    """The authors' loop over x [T, B, N]: (spikes, membranes u, final post-reset state u (1 - o))."""
    u = o = torch.zeros_like(x[0])
    spikes, membranes = [], []
    for x_t, width in zip(x.unbind(0), widths, strict=True):
        u = decay * u * (1 - o) + x_t
        o = RectangleSpike.apply(u, threshold, float(width), strict)
        spikes.append(o)
        membranes.append(u)
    return torch.stack(spikes), torch.stack(membranes), u * (1 - o)


def problem(seed, dtype, threshold, steps=T):
    """Inputs [steps, B, N_IN], a weight [N, N_IN] (requires grad), a mask of currents set to exactly the threshold,
    and loss weights for spikes and membranes; the drive gives spike rates of roughly 0.2-0.5."""
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.rand(steps, B, N_IN, generator=gen, dtype=F64).to(dtype)
    weight = (torch.rand(N, N_IN, generator=gen, dtype=F64) * (2.5 * threshold / N_IN)).to(dtype).requires_grad_()
    at_threshold = torch.rand(steps, B, N, generator=gen) < 0.15
    w_spikes = torch.randn(steps, B, N, generator=gen, dtype=F64).to(dtype)
    w_membrane = torch.randn(steps, B, N, generator=gen, dtype=F64).to(dtype)
    return inputs, weight, at_threshold, w_spikes, w_membrane


def current(inputs, weight, at_threshold, threshold):
    """x = inputs W^T, with the masked entries exactly at the threshold (in x's dtype)."""
    return torch.where(at_threshold, torch.tensor(threshold, dtype=inputs.dtype), inputs @ weight.T)


def loss_of(spikes, membranes, v_final, w_spikes, w_membrane):
    loss = (w_spikes * spikes).sum() + 0.7 * v_final.sum()
    return loss if membranes is None else loss + 0.3 * (w_membrane * membranes).sum()


def assert_close_relative(ours, theirs, names, tolerance=1e-6):
    for g, r, name in zip(ours, theirs, names, strict=True):
        assert r.abs().max() > 0, f"d/d{name} is zero: the comparison would not bite"
        error = ((g - r).abs().max() / r.abs().max()).item()
        assert error <= tolerance, f"d/d{name}: relative error {error:.2e} > {tolerance:.0e}"


def assert_truncated_by_detach_net(node, x):
    """After functional.detach_net (truncated BPTT) the next call's gradient no longer reaches the earlier input."""
    x = x.detach().requires_grad_()
    functional.reset_net(node)
    node(x[:T])
    (g_kept,) = torch.autograd.grad(node(x[T:]).sum() + node.v.sum(), x)
    functional.reset_net(node)
    node(x[:T])
    functional.detach_net(node)  # detaches the memories in place: none may be a view
    (g_cut,) = torch.autograd.grad(node(x[T:]).sum() + node.v.sum(), x)
    assert g_kept[:T].abs().sum() > 0 and torch.all(g_cut[:T] == 0)
    torch.testing.assert_close(g_cut[T:], g_kept[T:], rtol=1e-12, atol=1e-12)


def assert_reset_starts_afresh(node, x, s_ref, memories):
    """After reset_net: V is 0 and the named memories None, the first T steps again give s_ref[:T],
    and functional.detach_net cuts the graph between calls (assert_truncated_by_detach_net)."""
    functional.reset_net(node)
    assert node.v == 0.0 and all(getattr(node, name) is None for name in memories)
    assert torch.equal(node(x[:T]), s_ref[:T])
    assert_truncated_by_detach_net(node, x)


def assert_paths_agree(monkeypatch, run, names):
    """run() -> (spikes, membranes, gradients) on the fused path and on the per-step code (SNNLIB_FUSED=0):
    each path is the one asked for, spikes and membranes are bit-identical, the gradients (named by
    `names`) agree within assert_close_relative's tolerance."""
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv("SNNLIB_FUSED", switch)
        results.append(run())
        assert ("Fused" in type(results[-1][0].grad_fn).__name__) == (switch == "1")
    (s_fused, u_fused, g_fused), (s_step, u_step, g_step) = results
    assert torch.equal(s_fused, s_step) and torch.equal(u_fused, u_step)
    assert_close_relative(g_fused, g_step, names)


# --------------------------------------------------------------------------- He et al. 2020


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_he_lif_equals_the_authors_loop(dtype, backend):
    decay, threshold, lens = 0.3, 0.3, 0.25
    inputs, weight, at_threshold, w_s, w_u = problem(1, dtype, threshold)
    node = he.HeLIFNode(decay, threshold, lens, store_u_seq=True).to(dtype)
    x = current(inputs, weight, at_threshold, threshold)
    spikes = node(x)
    assert "Fused" in type(spikes.grad_fn).__name__
    ours = torch.autograd.grad(loss_of(spikes, node.u_seq, node.v, w_s, w_u), [weight])

    x_ref = current(inputs, weight, at_threshold, threshold).requires_grad_()
    s_ref, u_ref, v_ref = reference(x_ref, decay, threshold, [2 * lens] * T, strict=True)
    theirs = torch.autograd.grad(loss_of(s_ref, u_ref, v_ref, w_s, w_u), [weight])
    assert 0.1 < s_ref.mean() < 0.7
    assert (u_ref == torch.tensor(threshold, dtype=dtype)).sum() > 5  # membranes exactly at threshold, not firing
    assert torch.equal(spikes, s_ref)
    assert torch.equal(node.u_seq, u_ref) and torch.equal(node.u, u_ref[-1]) and torch.equal(node.v, v_ref)
    assert_close_relative(ours, theirs, ["W"])

    x = x.detach().requires_grad_()  # the gradient w.r.t. the current itself
    functional.reset_net(node)
    (g_x,) = torch.autograd.grad(loss_of(node(x), node.u_seq, node.v, w_s, w_u), x)
    (g_ref,) = torch.autograd.grad(loss_of(*reference(x, decay, threshold, [2 * lens] * T, True), w_s, w_u), x)
    assert_close_relative([g_x], [g_ref], ["x"])


def test_he_lif_state_carries_over_calls_and_resets(backend):
    decay, threshold, lens = 0.3, 0.3, 0.5
    inputs, weight, at_threshold, w_s, _ = problem(2, F64, threshold, steps=2 * T)
    x = current(inputs, weight, at_threshold, threshold)
    node = he.HeLIFNode(decay, threshold, lens)
    spikes = torch.cat([node(x[:T]), node(x[T:])])  # the second call starts from the first's V, in the graph
    x_ref = current(inputs, weight, at_threshold, threshold)
    s_ref, u_ref, v_ref = reference(x_ref, decay, threshold, [2 * lens] * (2 * T), strict=True)
    assert torch.equal(spikes, s_ref) and torch.equal(node.u, u_ref[-1]) and torch.equal(node.v, v_ref)
    (g,) = torch.autograd.grad((w_s * spikes).sum() + node.v.sum(), weight)
    (g_ref,) = torch.autograd.grad((w_s * s_ref).sum() + v_ref.sum(), weight)
    assert_close_relative([g], [g_ref], ["W over two calls"])

    assert_reset_starts_afresh(node, x, s_ref, ["u", "u_seq"])


def test_he_lif_fused_and_per_step_paths_agree(monkeypatch):
    """The per-step code (what runs with SNNLIB_FUSED=0: benchmarks' "before") gives the same result."""
    inputs, weight, at_threshold, w_s, w_u = problem(3, F32, 0.3)

    def run():
        node = he.HeLIFNode(store_u_seq=True)
        spikes = node(current(inputs, weight, at_threshold, 0.3))
        grads = torch.autograd.grad(loss_of(spikes, node.u_seq, node.v, w_s, w_u), [weight])
        return spikes, node.u_seq.detach(), grads

    assert_paths_agree(monkeypatch, run, ["W"])


# --------------------------------------------------------------------------- MPD-AGL (Jiang et al. 2025)


def with_widths(node, widths):
    """Make node use these per-step surrogate widths [T] (instead of its adaptive or fixed rule)."""
    node.widths = lambda time_steps, gamma_mean: widths[:time_steps]
    return node


STEP_WIDTHS = torch.linspace(0.25, 1.6, T)  # float32, as the node's own widths


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_mpd_neuron_equals_the_authors_loop_with_per_step_widths(kind, dtype, backend):
    threshold = 0.5
    inputs, weight, at_threshold, w_s, _ = problem(4, dtype, threshold)
    node = mpd.make_neuron(kind, tau=0.3, v_threshold=threshold)()
    node.store_u_seq = True
    with_widths(node, STEP_WIDTHS)
    if kind == "plif":
        with torch.no_grad():
            node.w.fill_(0.4)  # tau = sigmoid(0.4), not the initial value
    params = [weight, *node.parameters()]
    x = current(inputs, weight, at_threshold, threshold)
    spikes = node(x)
    assert "Fused" in type(spikes.grad_fn).__name__
    ours = torch.autograd.grad(loss_of(spikes, None, node.v, w_s, None), params)

    decay = node.decay()
    x_ref = current(inputs, weight, at_threshold, threshold)
    s_ref, u_ref, v_ref = reference(x_ref, decay, threshold, STEP_WIDTHS, strict=False)
    theirs = torch.autograd.grad(loss_of(s_ref, None, v_ref, w_s, None), params)
    assert 0.1 < s_ref.mean() < 0.7
    assert (u_ref == torch.tensor(threshold, dtype=dtype)).sum() > 5  # membranes exactly at threshold, firing
    assert torch.equal(spikes, s_ref)
    assert torch.equal(node.u_seq, u_ref.detach()) and torch.equal(node.v, v_ref)
    assert torch.equal(node.width_seq, STEP_WIDTHS)
    assert_close_relative(ours, theirs, ["W", "w"][: len(params)])

    # The check bites on the step at which a width applies: widths shifted by one step give other gradients.
    x_shifted = current(inputs, weight, at_threshold, threshold)
    shifted = reference(x_shifted, decay, threshold, STEP_WIDTHS.roll(1), strict=False)
    (g_shifted,) = torch.autograd.grad(loss_of(shifted[0], None, shifted[2], w_s, None), [weight])
    assert not torch.allclose(g_shifted, ours[0], rtol=1e-3, atol=0)


def test_mpd_plif_state_carries_over_calls_and_resets(backend):
    threshold, width = 0.5, 0.8
    inputs, weight, at_threshold, w_s, _ = problem(5, F64, threshold, steps=2 * T)
    x = current(inputs, weight, at_threshold, threshold)
    node = mpd.MPDPLIFNode(init_tau=0.3, v_threshold=threshold, width=width, store_u_seq=True)
    spikes = torch.cat([node(x[:T]), node(x[T:])])
    x_ref = current(inputs, weight, at_threshold, threshold)
    s_ref, u_ref, v_ref = reference(x_ref, node.decay(), threshold, [width] * (2 * T), strict=False)
    assert torch.equal(spikes, s_ref) and torch.equal(node.u_seq, u_ref[T:].detach()) and torch.equal(node.v, v_ref)
    params = [weight, node.w]
    ours = torch.autograd.grad((w_s * spikes).sum() + node.v.sum(), params)
    theirs = torch.autograd.grad((w_s * s_ref).sum() + v_ref.sum(), params)
    assert_close_relative(ours, theirs, ["W over two calls", "w over two calls"])

    assert_reset_starts_afresh(node, x, s_ref, ["u_seq", "width_seq"])


def test_mpd_adaptive_width_reaches_the_fused_backward(monkeypatch):
    """With gamma_mean, the widths of MPD-AGL's rule; fused and per-step paths agree on spikes and gradients."""
    inputs, weight, at_threshold, w_s, _ = problem(6, F32, 0.5)

    def run():
        node = mpd.MPDPLIFNode(store_u_seq=True)
        spikes = node(current(inputs, weight, at_threshold, 0.5), gamma_mean=0.6)
        expected = mpd.width_schedule(0.6, node.decay().detach(), 0.5, T)
        assert torch.equal(node.width_seq, expected) and expected[0] != expected[1]
        grads = torch.autograd.grad((w_s * spikes).sum(), [weight, node.w])
        return spikes, node.u_seq, grads

    assert_paths_agree(monkeypatch, run, ["W", "w"])


def test_fused_decay_lif_rejects_bad_arguments():
    x = torch.rand(4, 2, 3)
    surrogate = he.Rectangle(0.5)
    with pytest.raises(ValueError, match="materialise"):
        neurons.fused_decay_lif(x, torch.zeros(3), 0.3, 0.5, surrogate)
    with pytest.raises(ValueError, match=r"shape \[T\]"):
        neurons.fused_decay_lif(x, torch.zeros(2, 3), 0.3, 0.5, surrogate, widths=torch.ones(3))
    with pytest.raises(ValueError, match="0-dim"):
        neurons.fused_decay_lif(x, torch.zeros(2, 3), torch.ones(3), 0.5, surrogate)
    with pytest.raises(TypeError, match="SurrogateSpike"):
        neurons.fused_decay_lif(x, torch.zeros(2, 3), 0.3, 0.5, lambda z: z)
