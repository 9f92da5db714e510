"""Spike encodings: rate, latency and send-on-delta, checked on hand-made values."""

import pytest
import torch

from snnlib import encoding


def test_rate_code_fires_with_the_given_probability():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    spikes = encoding.rate_code(x, 4000, generator=torch.Generator().manual_seed(0))
    assert spikes.shape == (4000, 4) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    rates = encoding.rate_decode(spikes)
    assert rates[0] == 0 and rates[3] == 1
    assert torch.allclose(rates[1:3], x[1:3], atol=0.03)  # 4 standard errors of the binomial


def test_latency_code_by_hand():
    x = torch.tensor([[1.0, 0.5], [0.0, 0.2]])
    spikes = encoding.latency_code(x, 5)
    assert spikes.shape == (5, 2, 2) and spikes.sum() == 3  # one spike per value above threshold
    assert spikes[0, 0, 0] == 1 and spikes[2, 0, 1] == 1 and spikes[3, 1, 1] == 1  # round((1 - x) * 4)
    assert torch.allclose(encoding.latency_decode(spikes), torch.tensor([[1.0, 0.5], [0.0, 0.25]]))


def test_send_on_delta_by_hand_and_within_one_threshold():
    signal = torch.tensor([0.0, 0.05, 0.12, 0.35, 0.35, 0.0])
    counts = encoding.delta_code(signal, 0.1)
    # reference 0 -> 0 (0.05 < 0.1) -> 0.1 (one ON) -> 0.3 (two ON) -> 0.3 -> 0.0 (three OFF)
    assert counts.tolist() == [0, 0, 1, 2, 0, -3]
    rebuilt = encoding.delta_decode(counts, signal[0], 0.1)
    assert torch.all((signal - rebuilt).abs() < 0.1)
    slow = torch.linspace(0, 1, 101)  # a ramp of 0.01 per step: each step alone is below the threshold
    assert encoding.delta_code(slow, 0.1).sum() == pytest.approx(10, abs=1)  # ...but the reference keeps count


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\].*images / 255"):
        encoding.rate_code(torch.tensor([0.5, 3.0]), 10)
    with pytest.raises(ValueError, match="steps"):
        encoding.latency_code(torch.tensor([0.5]), 0)
    with pytest.raises(ValueError, match="threshold"):
        encoding.delta_code(torch.zeros(3), 0.0)
