"""SPAIC's `lif` against its snnlib twin (snnlib.methods.spaic_bridge): identical spikes and membranes.

Each equality test is paired with a check that the same input tells the mapping apart: a reference
loop with the decay, threshold rule or reset changed on one side gives different spikes, so the
equality would fail if one side's mapping moved.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("spaic")
from snnlib.methods import spaic_bridge as sb  # noqa: E402

T, B = 60, 3


def reference(current, beta, v_th, strict=True, soft=False):
    """Per-step loop H = beta V + I, fire, reset; returns spikes [T, B, n]."""
    v, out = torch.zeros_like(current[0]), []
    for i in current:
        h = beta * v + i
        s = (h > v_th if strict else h >= v_th).float()
        v = h - v_th * s if soft else h * (1 - s)
        out.append(s)
    return torch.stack(out)


def delayed(x, w):
    drive = x[:-1] @ w.T
    return torch.cat([drive.new_zeros((1, *drive.shape[1:])), drive])


def perturbed(current, spec):
    beta = sb.decay_factor(spec.tau_m, spec.dt)
    return {
        "decay": reference(current, beta * 0.97, spec.v_th),
        "threshold": reference(current, beta, spec.v_th * 1.05),
        "firing at threshold": reference(current, beta, spec.v_th, strict=False),
        "reset": reference(current, beta, spec.v_th, soft=True),
    }


def assert_equal_and_sensitive(spec, x, lands_on_threshold=False):
    """lands_on_threshold: the input puts some H exactly on v_th, so strict vs >= firing is tested too."""
    spaic_s, spaic_v = sb.run_spaic(sb.build_spaic(spec), x)
    twin_s, twin_v = sb.SnnlibTwin(spec)(x)
    for layer, (a, b, va, vb) in enumerate(zip(spaic_s, twin_s, spaic_v, twin_v)):
        assert a.shape == b.shape == va.shape == (T, B, spec.sizes[layer + 1])
        assert 0 < a.mean() < 0.9, "the test input must make some, not all, neurons spike"
        assert torch.equal(a, b), f"layer {layer + 1}: spikes differ"
        assert torch.allclose(va, vb, rtol=0, atol=1e-6), f"layer {layer + 1}: membranes differ"
    current = delayed(x, spec.weights[0])
    assert torch.equal(reference(current, sb.decay_factor(spec.tau_m, spec.dt), spec.v_th), spaic_s[0])
    for what, other in perturbed(current, spec).items():
        if what == "firing at threshold" and not lands_on_threshold:
            continue
        assert not torch.equal(other, spaic_s[0]), f"the input cannot tell a changed {what} apart"
    return spaic_s


def test_fixed_current_matches():
    # per-neuron constant currents; 1.0 lands exactly on v_th at the first step (strict vs >=)
    levels = torch.tensor([0.05, 0.13, 0.14, 0.16, 0.2, 0.35, 0.6, 1.0, 1.4])
    x = levels.expand(T, B, -1).clone()
    spec = sb.FeedForward((9, 9), (torch.eye(9),), tau_m=8.0, v_th=1.0, dt=1.0)
    spikes = assert_equal_and_sensitive(spec, x, lands_on_threshold=True)[0]
    assert spikes[:, :, 0].sum() == 0, "0.05 * 1 / (1 - beta) < v_th: the weakest neuron never fires"


def test_poisson_input_matches():
    g = torch.Generator().manual_seed(1)
    spec = sb.FeedForward.random((40, 25), 0.25, g, tau_m=10.0, v_th=0.9, dt=0.5)  # not SPAIC's defaults
    x = sb.poisson_spikes(torch.full((B, 40), 0.2), T, spec.dt, g)
    assert_equal_and_sensitive(spec, x)


def test_two_layer_network_matches():
    g = torch.Generator().manual_seed(2)
    spec = sb.FeedForward.random((30, 20, 8), 0.3, g, tau_m=8.0, v_th=1.0, dt=1.0)
    x = sb.poisson_spikes(torch.full((B, 30), 0.15), T, spec.dt, g)
    spikes = assert_equal_and_sensitive(spec, x)
    assert spikes[1].sum() > 0


def test_save_load_round_trip(tmp_path):
    g = torch.Generator().manual_seed(3)
    spec = sb.FeedForward.random((30, 20, 8), 0.3, g)
    net = sb.build_spaic(spec)
    x = sb.poisson_spikes(torch.full((B, 30), 0.15), T, spec.dt, g)
    before, _ = sb.run_spaic(net, x)
    sb.save_spaic(net, tmp_path)
    other = sb.FeedForward.random((30, 20, 8), 0.3, g)
    loaded = sb.load_spaic(other, tmp_path)
    for w, saved in zip(sb.spaic_weights(loaded), spec.weights):
        assert torch.equal(w, saved)
    after, _ = sb.run_spaic(loaded, x)
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_snnlib_tau_gives_spaic_decay():
    tau = sb.snnlib_tau(8.0, 1.0)
    assert abs((1 - 1 / tau) - sb.decay_factor(8.0, 1.0).item()) < 1e-7


def test_bad_description_is_refused():
    with pytest.raises(ValueError, match=r"weights\[0\] must be a tensor \[n_out, n_in\] = \[4, 3\]"):
        sb.FeedForward((3, 4), (torch.zeros(3, 4),))
    with pytest.raises(ValueError, match="time first"):
        sb.run_spaic(sb.build_spaic(sb.FeedForward((3, 4), (torch.zeros(4, 3),))), torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match=r"rate \* dt"):
        sb.poisson_spikes(torch.full((1, 2), 3.0), 5, 1.0, torch.Generator())


def test_conv_stca_trains_and_needs_square_images():
    rng = np.random.default_rng(5)
    x = (rng.random((12, 784)) < 0.3).astype(np.float32)
    y = np.arange(12) % 3
    kw = dict(epochs=1, batch=6, steps=8, dt=1.0, lr=0.01, seed=0)
    out = sb.train_stca(x, y, x[:6], y[:6], conv=True, **kw)
    assert 0 <= out["test_acc"] <= 1 and np.isfinite(out["loss"]).all()
    with pytest.raises(ValueError, match="square"):
        sb.train_stca(x[:, :780], y, x[:6, :780], y[:6], conv=True, **kw)
