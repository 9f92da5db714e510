"""Spike encodings: how real-valued images and signals become spike trains, and back.

All outputs are time-first, ``[T, ...]`` (add the batch axis where the input had one).

Rate coding (Poisson/Bernoulli). Each value x in [0, 1] is a firing probability per step:

    s[t, i] ~ Bernoulli(x[i]),  t = 0 .. T-1;       decode: x_hat[i] = mean_t s[t, i]

Information grows with T only as sqrt(T) (the binomial standard error sqrt(x (1 - x) / T)), and it
costs on average T * sum_i x[i] spikes.

Latency (time-to-first-spike) coding. Each value fires once, brighter earlier, linearly:

    t_i = round((1 - x[i]) (T - 1))   for x[i] > threshold, no spike otherwise;
    decode: x_hat[i] = 1 - t_i / (T - 1)   (0 without a spike)

At most one spike per value; the value is resolved to 1 / (T - 1).

Delta (send-on-delta) coding of a signal x[t], as an event camera's pixel does for log intensity:
a reference r starts at x[0]; at each step the signed number of whole thresholds between x[t] and
r is emitted and r moves by that many thresholds:

    n[t] = trunc((x[t] - r[t-1]) / theta),   r[t] = r[t-1] + theta n[t],   r[-1] = x[0]
    decode: x_hat[t] = x[0] + theta sum_{u <= t} n[u],   so |x[t] - x_hat[t]| < theta always

n[t] > 0 are ON events, n[t] < 0 OFF events (|n| > 1 when the signal jumps several thresholds in
one step). A constant signal costs nothing. snntorch's ``spikegen.delta`` instead compares each
sample with the previous *sample*, so a slow ramp that changes less than theta per step emits
nothing however far it goes; keeping the reference is what makes the code invertible.
"""

from __future__ import annotations

import torch

from snnlib.checks import positive_int, real


def _unit_interval(x) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    if x.numel() and (x.min() < 0 or x.max() > 1 or torch.isnan(x).any()):
        raise ValueError(f"values must lie in [0, 1] (got {x.min().item():g} .. {x.max().item():g}); "
                         "scale the data first, e.g. images / 255")
    return x


def rate_code(x, steps: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes ``[steps, *x.shape]`` with probability ``x`` (in [0, 1]) at every step."""
    x = _unit_interval(x)
    steps = positive_int("steps", steps)
    return torch.bernoulli(x.expand(steps, *x.shape), generator=generator)


def rate_decode(spikes: torch.Tensor) -> torch.Tensor:
    """The rate code's estimate of x: the mean over time (axis 0)."""
    return spikes.float().mean(dim=0)


def latency_code(x, steps: int, *, threshold: float = 0.01) -> torch.Tensor:
    """One spike per value above ``threshold`` at step round((1 - x) (steps - 1)); ``[steps, *x.shape]``."""
    x = _unit_interval(x)
    steps = positive_int("steps", steps)
    real("threshold", threshold, 0.0, 1.0, open_high=True)
    times = torch.round((1 - x) * (steps - 1)).long().reshape(1, -1)
    fires = (x > threshold).to(x.dtype).reshape(1, -1)
    spikes = torch.zeros(steps, times.shape[1], dtype=x.dtype).scatter_(0, times, fires)
    return spikes.reshape(steps, *x.shape)


def latency_decode(spikes: torch.Tensor) -> torch.Tensor:
    """The latency code's estimate of x from the first spike time (0 where a value never fired)."""
    steps = spikes.shape[0]
    fired = spikes.bool().any(dim=0)
    first = spikes.bool().float().argmax(dim=0).float()
    return torch.where(fired, 1 - first / max(steps - 1, 1), torch.zeros_like(first))


def delta_code(signal, threshold: float) -> torch.Tensor:
    """Signed send-on-delta event counts ``n[t]`` of a time-first ``signal`` ``[T, ...]`` (module docstring)."""
    signal = torch.as_tensor(signal, dtype=torch.get_default_dtype())
    if signal.dim() < 1 or signal.shape[0] < 1:
        raise ValueError("signal must be time-first [T, ...] with T >= 1")
    theta = real("threshold", threshold, 0.0, open_low=True)
    reference, counts = signal[0].clone(), torch.zeros_like(signal)
    for t in range(1, signal.shape[0]):
        n = torch.trunc((signal[t] - reference) / theta)
        counts[t] = n
        reference = reference + theta * n
    return counts


def delta_decode(counts: torch.Tensor, start, threshold: float) -> torch.Tensor:
    """The signal rebuilt from its event counts, its first value ``start`` and the ``threshold``."""
    return torch.as_tensor(start, dtype=counts.dtype) + threshold * torch.cumsum(counts, dim=0)
