"""TeCoS-LVM (reconstruction) and its rate baselines: shapes, KL, generation, determinism, gradients."""

import pytest
import torch

from snnlib.methods.latent_variable import TeCoSLVM, fit_sequences, gaussian_kl
from snnlib.methods.rate_baselines import SpikeHistoryGLM, WindowCNN

T, B, D, N = 12, 3, 5, 4


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, D, generator=g), (torch.rand(T, B, N, generator=g) < 0.2).float()


def test_shapes_and_loss_parts():
    x, y = data()
    model = TeCoSLVM(D, N, hidden=8, latent=3)
    out = model(x, y)
    assert out["logits"].shape == (T, B, N) and out["kl"].shape == (T, B)
    assert (out["kl"] >= 0).all()
    loss, parts = model.loss(x, y)
    assert loss.dim() == 0 and parts["kl"] >= 0 and parts["nll"] > 0
    assert model.log_likelihood(x, y).shape == (T, B, N)
    with pytest.raises(ValueError, match="time-first"):
        model(x[0], y[0])
    with pytest.raises(ValueError, match="spikes must be"):
        model(x, y[..., :2])


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mq, lq, mp, lp = (torch.randn(6, 3, generator=g) for _ in range(4))
    q = torch.distributions.Normal(mq, (0.5 * lq).exp())
    p = torch.distributions.Normal(mp, (0.5 * lp).exp())
    assert torch.allclose(gaussian_kl(mq, lq, mp, lp), torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5)
    # hand case: N(1, 1) vs N(0, 1) -> 1/2
    assert float(gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))) == pytest.approx(0.5)


@pytest.mark.parametrize("cls", [TeCoSLVM, WindowCNN, SpikeHistoryGLM])
def test_generation_needs_no_data_and_is_deterministic_per_seed(cls):
    x, _ = data()
    torch.manual_seed(0)
    model = cls(D, N)
    a = model.generate(x, torch.Generator().manual_seed(5))
    b = model.generate(x, torch.Generator().manual_seed(5))
    c = model.generate(x, torch.Generator().manual_seed(6))
    assert a.shape == (T, B, N) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, b)
    assert not torch.equal(a, c) or a.sum() == 0


def test_gradients_reach_every_part():
    x, y = data()
    model = TeCoSLVM(D, N, hidden=8, latent=3)
    with torch.no_grad():  # make the memory spike, so its surrogate path is exercised
        model.memory_in.bias.fill_(1.0)
    model.loss(x, y)[0].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_glm_history_filter_is_causal_and_used():
    x, y = data()
    torch.manual_seed(0)
    glm = SpikeHistoryGLM(D, N, window=3, history=2)
    with torch.no_grad():
        glm.post_spike.fill_(-5.0)
    ll = glm._log_rate(x, y)
    y2 = y.clone()
    y2[-1] = 1 - y2[-1]  # changing the last bin changes nothing before it
    assert torch.equal(glm._log_rate(x, y2), ll)
    y3 = y.clone()
    y3[0] = 1.0
    y3[1:] = 0.0
    diff = glm._log_rate(x, y3) - glm._log_rate(x, torch.zeros_like(y))
    assert torch.allclose(diff[1], torch.full((B, N), -5.0)) and torch.allclose(diff[2], torch.full((B, N), -5.0))
    assert torch.allclose(diff[3], torch.zeros(B, N))


def test_training_lowers_the_loss():
    x, y = data()
    torch.manual_seed(0)
    for model in (TeCoSLVM(D, N, hidden=8, latent=3), WindowCNN(D, N, window=4), SpikeHistoryGLM(D, N, window=4)):
        hist = fit_sequences(model, x, y, epochs=30, lr=0.02, batch_size=B, seed=0)
        assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]


def test_validation_keeps_the_best_epoch():
    x, y = data()
    torch.manual_seed(0)
    model = WindowCNN(D, N, window=4)
    hist = fit_sequences(model, x, y, epochs=15, lr=0.05, batch_size=B, seed=0, validation=(x[:, :1], y[:, :1]))
    best = hist["val_loss"].min()
    assert float(model.loss(x[:, :1], y[:, :1])[0]) == pytest.approx(best, rel=1e-5)
