"""Cross-Modality Attention (zhou2024): shapes, gradients, switches, determinism, state."""

import pytest
import torch

from snnlib.methods.cross_modality_attention import VARIANTS, CrossModalityAttentionNet, rate_mse
from snnlib.training import seed_everything

T, B, H, W = 6, 3, 8, 12


def build(variant, seed=0):
    seed_everything(seed)
    return CrossModalityAttentionNet(variant, 5, height=H, width=W, time_steps=T, channels=(4, 6))


def sample(seed=1):
    g = torch.Generator().manual_seed(seed)
    events = (torch.rand(T, B, 2, H, W, generator=g) < 0.3).float() * 2
    frames = torch.rand(T, B, 1, H, W, generator=g) * 3
    return torch.cat([events, frames], dim=2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_is_time_first_spikes(variant):
    out = build(variant)(sample())
    assert out.shape == (T, B, 5)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_gradients_reach_both_branches_and_both_attentions():
    model = build("cma")
    out = model(sample())
    # rate_mse gives a gradient through the surrogate even when no output neuron fires
    rate_mse(out, torch.tensor([0, 1, 2])).backward()
    for name in ("event_branch", "frame_branch", "temporal_attention", "spatial_attention"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name


def test_attention_switched_off_equals_naive_fusion():
    x = sample()
    naive = build("naive")(x)
    cma = build("cma")
    cma.temporal = cma.spatial = False
    assert torch.equal(cma(x), naive)


def test_each_attention_changes_the_features():
    x = sample()
    model = build("cma")
    model(x)
    scores, maps = model.last_scores, model.last_maps
    assert scores.shape == (T, B) and maps.shape == (T, B, 1, H // 4, W // 4)
    assert ((scores > 0) & (scores < 1)).all() and ((maps > 0) & (maps < 1)).all()


def test_deterministic_for_a_seed_and_seed_matters():
    x = sample()
    a, b, c = build("cma", 3), build("cma", 3), build("cma", 4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(a(x), b(x))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_state_is_reset_between_calls():
    model = build("cma")
    x, other = sample(1), sample(2)
    first = model(x)
    model(other)
    assert torch.equal(model(x), first)
    assert torch.is_tensor(model.event_branch.lif1.v) and model.event_branch.lif1.v.abs().sum() > 0


def test_single_modality_ignores_the_other():
    x = sample()
    y = x.clone()
    y[:, :, 2:] = 0
    event = build("event")
    assert torch.equal(event(x), event(y))
    z = x.clone()
    z[:, :, :2] = 0
    frame = build("frame")
    assert torch.equal(frame(x), frame(z))


def test_bad_input_is_refused_by_name():
    model = build("cma")
    with pytest.raises(ValueError, match=r"\[T, B, 3, H, W\]"):
        model(torch.zeros(T, B, 2, H, W))
    with pytest.raises(ValueError, match="time_steps"):
        model(torch.zeros(T + 1, B, 3, H, W))
    with pytest.raises(ValueError, match="unknown variant"):
        CrossModalityAttentionNet("late", 5, height=H, width=W, time_steps=T)
    with pytest.raises(ValueError, match="multiple of 4"):
        CrossModalityAttentionNet("cma", 5, height=10, width=W, time_steps=T)
