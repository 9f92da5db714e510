"""The fused skip-recurrent layer (`_SkipRecurrence`) against the per-step path (SNNLIB_FUSED=0).

Every case runs one layer twice on the same input and seed, once per path, over two calls
(membrane and spike history carried from the first into the second, in the graph), and
compares the spikes bit for bit and every gradient (input, W_in, W_rec, alpha; the loss also
reads the final membrane). A reset, decay, surrogate or span changed in one path only changes
spikes or gradients here.
"""

import pytest
import torch
from spikingjelly.activation_based import functional

from snnlib.methods import skip_recurrent as sr

T, B, D, H = 40, 4, 2, 16  # B H = 64: the ASRC mixture is fused for rows of a multiple of 64

CASES = {  # name: (recurrence, span, span_mode)
    "feed-forward": (None, 1, "auto"),
    "src1": ("src", 1, "auto"),
    "src3": ("src", 3, "auto"),
    "asrc-soft": ("asrc", 4, "soft"),
    "asrc-soft-41": ("asrc", 41, "soft"),  # a mixture over more than two blocks of 16 (torch.sum's order)
    "asrc-hard": ("asrc", 4, "hard"),
}


def run(monkeypatch, fused, case, dtype, hard_reset=False, dropout=0.0, train=True, calls=2):
    """(spikes of all calls, gradients, number of fused layer calls) of one layer on a fixed input."""
    monkeypatch.setenv("SNNLIB_FUSED", "1" if fused else "0")
    recurrence, span, mode = CASES[case]
    torch.manual_seed(0)
    layer = sr.SkipRecurrentLayer(D, H, recurrence=recurrence, span=span, hard_reset=hard_reset,
                                  dropout=dropout).to(dtype)
    if recurrence == "asrc":
        with torch.no_grad():
            layer.alpha.copy_(torch.randn(span, dtype=dtype))
    layer.span_mode = mode
    layer.train(train)
    x = (torch.rand(T, B, D, generator=torch.Generator().manual_seed(1), dtype=dtype) * 3).requires_grad_()
    count = []
    original = sr._run_layer
    monkeypatch.setattr(sr, "_run_layer", lambda *a: count.append(1) or original(*a))
    torch.manual_seed(5)  # the dropout mask
    outs = [layer(x[: T // 2]), layer(x[T // 2 :])][:calls]
    weights = torch.linspace(-1, 2, T // 2, dtype=dtype)[:, None, None]
    loss = sum((o * weights * (k + 1)).sum() for k, o in enumerate(outs)) + (layer.neuron.v ** 2).sum()
    if not loss.requires_grad:
        return torch.cat(outs), {}, len(count)
    loss.backward()
    grads = {"x": x.grad, **{n: p.grad for n, p in layer.named_parameters() if p.grad is not None}}
    return torch.cat(outs), grads, len(count)


def assert_same(monkeypatch, case, dtype, **kw):
    ref, ref_grads, none = run(monkeypatch, False, case, dtype, **kw)
    out, grads, fused_calls = run(monkeypatch, True, case, dtype, **kw)
    assert none == 0 and fused_calls == 2
    assert 0.02 < ref.mean() < 0.6, "the test needs spikes and silence"
    assert torch.equal(out, ref)
    assert grads.keys() == ref_grads.keys()
    for name, g in ref_grads.items():
        tol = 1e-12 if dtype == torch.float64 else (1e-5 if name == "alpha" else 1e-6)  # alpha: softmax cancels
        assert g.norm() > 0, name
        assert (grads[name] - g).norm() <= tol * g.norm(), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hard_reset", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_fused_matches_per_step(monkeypatch, case, hard_reset, dtype):
    assert_same(monkeypatch, case, dtype, hard_reset=hard_reset)


@pytest.mark.parametrize("case", ["src3", "asrc-soft"])
def test_fused_matches_with_dropout(monkeypatch, case):
    assert_same(monkeypatch, case, torch.float32, dropout=0.3)


@pytest.mark.parametrize("case", ["feed-forward", "src3", "asrc-soft"])
def test_eval_mode_without_grad(monkeypatch, case):
    """Eval mode (ASRC: argmax span) under no_grad: the forward loop alone, same spikes."""
    with torch.no_grad():
        ref, _, _ = run(monkeypatch, False, case, torch.float32, train=False)
        out, _, fused_calls = run(monkeypatch, True, case, torch.float32, train=False)
    assert fused_calls == 2 and torch.equal(out, ref) and ref.sum() > 0


def test_mixture_in_torch_sum_order():
    """The numba mixture equals (w[:, None] * stack).sum(0) bit for bit for every span and row length
    (a multiple of 64) the fused path takes, and the fused path leaves the other rows to the per-step path."""
    mix = pytest.importorskip("snnlib.methods._skip_loops").mix
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for span in [1, 2, 15, 16, 17, 31, 32, 33, 41, 100, 255]:
            weights = torch.softmax(torch.randn(span, generator=generator, dtype=dtype) * 3, 0)
            rows = (torch.rand(span + 3, 192, generator=generator) < 0.5).to(dtype)  # S[-K], ..., S[2]
            out, block = torch.empty(192, dtype=dtype), torch.empty(192, dtype=dtype)
            mix(weights.numpy(), rows[span:].numpy(), rows[:span].numpy(), 2, out.numpy(), block.numpy())
            history = rows[2 : span + 2].flip(0)  # S[1], S[0], ..., S[2 - K]: most recent first
            assert torch.equal(out, (weights[:, None] * history).sum(0)), (dtype, span)
    layer = sr.SkipRecurrentLayer(D, 7, recurrence="asrc", span=4)
    assert layer._fused(torch.zeros(T, 64, 7)) and not layer._fused(torch.zeros(T, 5, 7))
    layer.eval()
    assert layer._fused(torch.zeros(T, 5, 7))  # the argmax span: no sum


def test_saved_memory_per_neuron_step():
    """The fused layer saves H (4 bytes per neuron-step in float32) plus its small inputs; the per-step path more."""
    torch.manual_seed(0)
    layer = sr.SkipRecurrentLayer(D, H, recurrence="asrc", span=4)
    current = torch.rand(T, B, H, requires_grad=True)
    totals = {}
    for forward in (layer._forward_fused, layer._forward_per_step):
        functional.reset_net(layer)
        seen = {}

        def pack(t):
            seen[(t.data_ptr(), t.dtype, tuple(t.shape), t.stride())] = t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            forward(current)
        totals[forward.__name__] = sum(seen.values())
    small = (H * H + 4 + 4 * B * H + 1) * 4  # W_rec, p, the past spikes, tau (saved by alpha / tau)
    assert totals["_forward_fused"] == 4 * T * B * H + small
    assert totals["_forward_per_step"] > 2 * totals["_forward_fused"]  # ~11.6 B per neuron-step here
