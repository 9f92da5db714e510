"""Tests for snnlib.methods.skip_recurrent (Xu et al. 2025, SRC / ASRC-SNN).

The reference is a plain recurrence written here, independently of the module: an explicit list
of past spikes indexed by t - k, the LIF update v = 0.5 v + I with soft reset, and a triangle
surrogate as its own autograd function. The equivalences the paper's method rests on (SRC with
k = 1 is the vanilla RSNN, ASRC with a one-hot alpha is SRC, inference takes the argmax span)
are checked against it, so an off-by-one in the spike buffer fails them.
"""

import math

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from snnlib.methods import skip_recurrent as sr

T, B, D, H, C = 12, 5, 3, 7, 4


class RefTriangle(torch.autograd.Function):
    """Spike s = (x >= 0), surrogate ds/dx = max(0, 1 - |x|)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).float()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (1 - x.abs()).clamp(min=0)


def reference_layer(x, w_in, b_in, w_rec, weights_of_lag, decay=0.5, theta=1.0):
    """Plain loop: r[t] = sum_j weights_of_lag[j-1] s[t-j] (s[t'] = 0 for t' < 0), LIF, soft reset."""
    v = torch.zeros(x.shape[1], w_in.shape[0])
    spikes = []
    for t in range(x.shape[0]):
        r = torch.zeros_like(v)
        for j, w in enumerate(weights_of_lag, start=1):
            if t - j >= 0:
                r = r + w * spikes[t - j]
        v = decay * v + (x[t] @ w_in.T + b_in + (r @ w_rec.T if w_rec is not None else 0))
        s = RefTriangle.apply(v - theta)
        v = v - theta * s
        spikes.append(s)
    return torch.stack(spikes)


def one_hot(k, size):
    return [1.0 if j == k else 0.0 for j in range(1, size + 1)]


def inputs(seed=0, scale=1.5):
    return torch.rand(T, B, D, generator=torch.Generator().manual_seed(seed)) * scale


def make_layer(recurrence, span, seed=0, **kw):
    torch.manual_seed(seed)
    layer = sr.SkipRecurrentLayer(D, H, recurrence=recurrence, span=span, bias=True, **kw)
    with torch.no_grad():  # strong enough input and recurrence that the layer fires
        layer.input.weight.mul_(2.0)
        if recurrence:
            layer.recurrent.weight.mul_(1.5)
    return layer


def run(module, x):
    functional.reset_net(module)
    return module(x)


def reference_of(layer, x, weights_of_lag):
    w_rec = layer.recurrent.weight if layer.recurrence else None
    return reference_layer(x, layer.input.weight, layer.input.bias, w_rec, weights_of_lag)


# --------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_src_matches_plain_recurrence_with_lag_k(k):
    layer, x = make_layer("src", k), inputs()
    out = run(layer, x)
    ref = reference_of(layer, x, one_hot(k, k))
    assert 0 < out.mean() < 1, "the test layer must fire sometimes"
    torch.testing.assert_close(out, ref)
    # and it is not the recurrence of a neighbouring lag
    for other in {k - 1, k + 1} - {0}:
        assert not torch.equal(out, reference_of(layer, x, one_hot(other, other)))


def test_src_with_span_1_is_the_vanilla_rsnn():
    layer, x = make_layer("src", 1), inputs(1)
    w_in, b_in, w_rec = layer.input.weight, layer.input.bias, layer.recurrent.weight
    v, s, outs = torch.zeros(B, H), torch.zeros(B, H), []
    for t in range(T):  # the textbook RSNN: I[t] = W_in x[t] + b + W_rec s[t-1]
        v = 0.5 * v + x[t] @ w_in.T + b_in + s @ w_rec.T
        s = (v >= 1.0).float()
        v = v - s
        outs.append(s)
    torch.testing.assert_close(run(layer, x), torch.stack(outs))


def test_feed_forward_layer_has_no_recurrence():
    layer, x = make_layer(None, 1), inputs(2)
    assert not hasattr(layer, "recurrent")
    torch.testing.assert_close(run(layer, x), reference_of(layer, x, []))


@pytest.mark.parametrize("k", [1, 3, 6])
def test_asrc_with_one_hot_alpha_equals_src_with_that_span(k):
    asrc, x = make_layer("asrc", 6), inputs(3)
    src = make_layer("src", k)
    src.load_state_dict({n: p for n, p in asrc.state_dict().items() if n not in ("alpha", "tau")})
    with torch.no_grad():
        asrc.alpha.fill_(-1e4)
        asrc.alpha[k - 1] = 0.0  # softmax is exactly one-hot in float32
    asrc.train()
    torch.testing.assert_close(asrc.span_probabilities(), torch.tensor(one_hot(k, 6)))
    torch.testing.assert_close(run(asrc, x), run(src, x))


def test_asrc_training_mixture_matches_plain_weighted_recurrence():
    layer, x = make_layer("asrc", 4), inputs(4)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.3, -1.0, 2.0, 0.5]))
        layer.tau.fill_(0.7)
    p = torch.softmax(torch.tensor([0.3, -1.0, 2.0, 0.5]) / 0.7, dim=0)
    layer.train()
    out = run(layer, x)
    torch.testing.assert_close(out, reference_of(layer, x, p.tolist()))


def test_inference_uses_the_argmax_span():
    layer, x = make_layer("asrc", 5), inputs(5)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.1, 0.2, 0.9, 0.4, 0.0]))  # argmax: span 3
    layer.eval()
    assert layer.chosen_span() == 3 and sr.chosen_spans(layer) == [3]
    with torch.no_grad():
        torch.testing.assert_close(run(layer, x), reference_of(layer, x, one_hot(3, 5)))
        layer.train()
        soft = run(layer, x)
    assert not torch.equal(soft, reference_of(layer, x, one_hot(3, 5)).detach())


def test_ties_at_initialisation_choose_span_1_like_torch_argmax():
    layer = make_layer("asrc", 4)
    assert layer.chosen_span() == 1
    torch.testing.assert_close(layer.span_probabilities(), torch.full((4,), 0.25))


def test_span_mode_overrides_train_eval_mode():
    layer, x = make_layer("asrc", 3), inputs(6)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.0, 1.0, 0.5]))
    layer.train()
    with torch.no_grad(), sr.use_span_mode(layer, "hard"):
        hard = run(layer, x)
    assert layer.span_mode == "auto"
    torch.testing.assert_close(hard, reference_of(layer, x, one_hot(2, 3)).detach())
    layer.eval()
    with torch.no_grad(), sr.use_span_mode(layer, "soft"):
        soft = run(layer, x)
    torch.testing.assert_close(soft, reference_of(layer, x, layer.span_probabilities().tolist()).detach())


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("recurrence,span", [("src", 3), ("asrc", 4)])
def test_buffer_resets_between_sequences_and_carries_within_one(recurrence, span):
    layer, x1, x2 = make_layer(recurrence, span), inputs(7), inputs(8)
    fresh = run(layer, x2)
    run(layer, x1)
    continued = layer(x2)  # no reset: history and membrane carry over
    assert not torch.equal(continued, fresh)
    functional.reset_net(layer)
    assert layer.history is None
    torch.testing.assert_close(layer(x2), fresh)
    # feeding one sequence in two pieces equals feeding it whole
    whole = run(layer, torch.cat([x1, x2]))
    functional.reset_net(layer)
    pieces = torch.cat([layer(x1[:5]), layer(torch.cat([x1[5:], x2]))])
    torch.testing.assert_close(pieces, whole)


def test_batch_change_without_reset_is_refused():
    layer = make_layer("src", 2)
    run(layer, inputs(0))
    with pytest.raises(ValueError, match="reset_net"):
        layer(torch.rand(T, B + 1, D))


# --------------------------------------------------------------------------- gradients


def test_gradients_flow_to_alpha_and_match_the_plain_recurrence():
    x = inputs(9)
    layer = make_layer("asrc", 4)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.5, 0.0, -0.5, 1.0]))
    layer.train()
    target = torch.rand(T, B, H, generator=torch.Generator().manual_seed(1))
    ((run(layer, x) - target) ** 2).sum().backward()
    ours = layer.alpha.grad.clone()
    alpha = layer.alpha.detach().clone().requires_grad_(True)
    p = torch.softmax(alpha / layer.tau, dim=0)
    ref = reference_layer(x, layer.input.weight.detach(), layer.input.bias.detach(),
                          layer.recurrent.weight.detach(), list(p))
    ((ref - target) ** 2).sum().backward()
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, alpha.grad)


def test_span_mixture_gradcheck():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(3, dtype=torch.double, generator=g).requires_grad_(True)
    hist = [torch.rand(2, 4, dtype=torch.double, generator=g).requires_grad_(True) for _ in range(3)]
    assert torch.autograd.gradcheck(lambda w, *h: sr.span_mixture(w, h), (w, *hist))
    torch.testing.assert_close(sr.span_mixture(w, hist), (w[:, None, None] * torch.stack(hist)).sum(0))


def test_surrogate_is_the_triangle_max_0_1_minus_abs():
    node = sr.SkipLIFNode()
    x = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.5, -0.2], requires_grad=True)  # v = x after one charge
    s = node(x)
    s.sum().backward()
    torch.testing.assert_close(s, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0]))
    torch.testing.assert_close(x.grad, (1 - (x.detach() - 1).abs()).clamp(min=0))


def test_input_gradient_norms_equal_autograd():
    torch.manual_seed(0)
    model = sr.SkipRecurrentSNN(D, [H], C, recurrence="src", spans=2)
    x, y = inputs(10), torch.tensor([0, 1, 2, 3, 0])
    norms = sr.input_gradient_norms(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    xr = x.clone().requires_grad_(True)
    functional.reset_net(model)
    sr.summed_cross_entropy(model(xr), y).backward()
    torch.testing.assert_close(norms, xr.grad.pow(2).sum(dim=(1, 2)).sqrt())


# --------------------------------------------------------------------------- network, optimiser, annealing


def test_network_output_is_the_readout_of_the_last_layer_every_step():
    torch.manual_seed(0)
    model = sr.SkipRecurrentSNN(D, [H, 6], C, recurrence="asrc", spans=[3, 4])
    x = inputs(11)
    out = run(model, x)
    functional.reset_net(model)
    hidden = model.layers[1](model.layers[0](x))
    torch.testing.assert_close(out, model.readout(hidden))
    assert out.shape == (T, B, C)


def test_network_wise_alpha_is_shared_and_in_its_own_optimizer_group():
    model = sr.SkipRecurrentSNN(D, [H, H], C, recurrence="asrc", spans=5, network_wise=True)
    assert model.layers[0].alpha is model.layers[1].alpha is model.alpha
    opt = sr.make_optimizer(model, kind="adamw", lr=1e-3, weight_decay=0.01, lr_skip=0.1)
    weights, spans = opt.param_groups
    assert spans["params"] == [model.alpha] and spans["lr"] == 0.1 and spans["weight_decay"] == 0.0
    assert weights["weight_decay"] == 0.01 and len(weights["params"]) == sum(1 for _ in model.parameters()) - 1
    with pytest.raises(ValueError, match="same maximum span"):
        sr.SkipRecurrentSNN(D, [H, H], C, recurrence="asrc", spans=[3, 4], network_wise=True)


def test_annealing_multiplies_tau_and_sharpens_the_span_distribution():
    model = sr.SkipRecurrentSNN(D, [H, H], C, recurrence="asrc", spans=3, de_tau=0.5)
    with torch.no_grad():
        model.layers[0].alpha.copy_(torch.tensor([0.0, 1.0, 0.0]))
    before = sr.span_distributions(model)[0]
    assert sr.anneal_temperature(model) == [0.5, 0.5]
    after = sr.span_distributions(model)[0]
    expected = torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0).numpy()
    assert after[1] > before[1]
    assert abs(after[1] - expected[1]) < 1e-6


@pytest.mark.parametrize("epochs", [1, 14, 40, 200])
def test_epoch_decay_anneals_a_run_of_any_length_as_far_as_the_authors_200_epochs(epochs):
    de_tau = sr.epoch_decay(epochs)
    model = sr.SkipRecurrentSNN(D, [H], C, recurrence="asrc", spans=3, de_tau=de_tau)
    for _ in range(epochs):
        taus = sr.anneal_temperature(model)
    assert taus[0] == pytest.approx(0.96**200, rel=1e-4)  # float32 buffer
    assert de_tau == pytest.approx(0.96 ** (200 / epochs))


def test_epoch_decay_is_the_authors_value_over_their_schedule_and_checks_its_arguments():
    assert sr.epoch_decay(200) == pytest.approx(0.96)
    assert sr.epoch_decay(50, reference_decay=0.5, reference_epochs=100) == pytest.approx(0.25)
    assert sr.epoch_decay(10) < sr.epoch_decay(100) < 0.96 < sr.epoch_decay(400)
    with pytest.raises(ValueError, match="epochs"):
        sr.epoch_decay(0)
    with pytest.raises(ValueError, match="reference_decay"):
        sr.epoch_decay(10, reference_decay=1.0)


def test_onecycle_scheduler_uses_each_group_lr_as_maximum():
    model = sr.SkipRecurrentSNN(D, [H], C, recurrence="asrc", spans=3)
    opt = sr.make_optimizer(model, lr=1e-3, lr_skip=0.2)
    sched = sr.make_scheduler(opt, "onecycle", epochs=10)
    peak = [0.0, 0.0]
    for _ in range(10):
        peak = [max(a, g["lr"]) for a, g in zip(peak, opt.param_groups)]
        opt.step()
        sched.step()
    assert math.isclose(peak[0], 1e-3, rel_tol=0.05) and math.isclose(peak[1], 0.2, rel_tol=0.05)


def test_convert_authors_state_dict_maps_their_layout():
    torch.manual_seed(0)
    model = sr.SkipRecurrentSNN(D, [H, 6], C, recurrence="asrc", spans=[3, 4])
    theirs = {}
    for i, lyr in enumerate(model.layers):  # the authors' MODEL: [Linear, Dropout, container] per layer
        theirs[f"features.{3 * i}.weight"] = torch.randn_like(lyr.input.weight)
        theirs[f"features.{3 * i}.bias"] = torch.randn_like(lyr.input.bias)
        theirs[f"features.{3 * i + 2}.mlp.weight"] = torch.randn_like(lyr.recurrent.weight)
        theirs[f"features.{3 * i + 2}.skip_para"] = torch.randn(lyr.span, 1, 1)
        theirs[f"features.{3 * i + 2}.tau"] = torch.tensor([0.5])
    theirs["features.6.weight"] = torch.randn(C, 6)
    theirs["features.6.bias"] = torch.randn(C)
    model.load_state_dict(sr.convert_authors_state_dict(theirs, model))
    torch.testing.assert_close(model.layers[1].alpha, theirs["features.5.skip_para"].flatten())
    torch.testing.assert_close(model.readout.weight, theirs["features.6.weight"])
    assert float(model.layers[0].tau) == 0.5
    with pytest.raises(ValueError, match="does not have"):
        sr.convert_authors_state_dict({**theirs, "features.9.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="lacks"):
        sr.convert_authors_state_dict({k: v for k, v in theirs.items() if "tau" not in k}, model)


# --------------------------------------------------------------------------- losses, data, noise


def test_summed_loss_and_accuracy_use_the_last_steps_when_asked():
    out = torch.zeros(4, 2, 3)
    out[0, 0, 2] = 5.0  # early evidence for class 2
    out[3, 0, 1] = 1.0  # late evidence for class 1
    out[:, 1, 0] = 1.0
    labels = torch.tensor([1, 0])
    assert sr.summed_accuracy(out, labels) == 0.5
    assert sr.summed_accuracy(out, labels, last=1) == 1.0
    torch.testing.assert_close(sr.summed_cross_entropy(out, labels, last=2),
                               nn.functional.cross_entropy(out[2:].sum(0), labels))


def test_delayed_cue_task_layout():
    x, y = sr.delayed_cue_task(40, delay=15, classes=4, cue_steps=5, recall_steps=3, channels_per_class=2,
                               cue_rate=1.0, noise_rate=0.0, seed=3)
    assert x.shape == (40, 5 + 15 + 3, 10) and torch.bincount(y).tolist() == [10] * 4
    for i in range(40):
        cue = x[i, :5].sum(0)
        assert cue[2 * y[i] : 2 * y[i] + 2].tolist() == [5.0, 5.0] and cue.sum() == 10
    assert x[:, 5:20].sum() == 0 and (x[:, 20:, 8:] == 1).all() and x[:, 20:, :8].sum() == 0
    x2, y2 = sr.delayed_cue_task(40, delay=15, classes=4, cue_steps=5, recall_steps=3, channels_per_class=2, seed=3)
    x3, _ = sr.delayed_cue_task(40, delay=15, classes=4, cue_steps=5, recall_steps=3, channels_per_class=2, seed=3)
    assert torch.equal(x2, x3) and 0 < x2[:, 5:20].mean() < 0.1


def test_sequential_mnist_row_major_and_permuted():
    images = torch.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    seq = sr.sequential_mnist(images.to(torch.uint8))
    assert seq.shape == (2, 784, 1)
    torch.testing.assert_close(seq[1, 29, 0], images[1, 1, 1].float() / 255)
    perm = sr.pixel_permutation(0)
    assert torch.equal(perm, sr.pixel_permutation(0)) and not torch.equal(perm, torch.arange(784))
    torch.testing.assert_close(sr.sequential_mnist(images.to(torch.uint8), perm)[:, :, 0], seq[:, perm, 0])
    with pytest.raises(ValueError, match="exactly once"):
        sr.sequential_mnist(images.to(torch.uint8), torch.zeros(784, dtype=torch.long))


def test_accuracy_under_noise_is_exact_at_zero_noise_and_restores_mode():
    torch.manual_seed(0)
    model = sr.SkipRecurrentSNN(D, [H], C, recurrence="src", spans=2).train()
    x, y = inputs(12, scale=3.0), torch.tensor([0, 1, 2, 3, 0])
    clean, noisy = sr.accuracy_under_noise(model, x, y, [0.0, 5.0], seed=1, batch_size=2)
    assert model.training
    model.eval()
    with torch.no_grad():
        assert clean == pytest.approx(sr.summed_accuracy(run(model, x), y))
    assert 0.0 <= noisy <= 1.0


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="recurrence"):
        sr.SkipRecurrentLayer(D, H, recurrence="lstm")
    with pytest.raises(TypeError, match="span"):
        sr.SkipRecurrentLayer(D, H, recurrence="src", span=1.5)
    with pytest.raises(ValueError, match="span_mode"):
        sr.SkipRecurrentLayer(D, H).span_mode = "medium"
    with pytest.raises(ValueError, match="one int per layer"):
        sr.SkipRecurrentSNN(D, [H, H], C, spans=[1, 2, 3])
    with pytest.raises(ValueError, match="time-first"):
        sr.SkipRecurrentSNN(D, [H], C)(torch.rand(B, D))
    with pytest.raises(ValueError, match="asrc"):
        sr.SkipRecurrentLayer(D, H, recurrence="src").span_probabilities()
    with pytest.raises(ValueError, match="kind"):
        sr.make_optimizer(sr.SkipRecurrentSNN(D, [H], C), kind="lbfgs")
