"""Baselines for TeCoS-LVM (ma2023): a fixed-window CNN predicting rates and an LN-Poisson GLM with spike history.

Facts: shared/research/papers.md §8.4 (the paper compares against CNNs with temporal filters over a
stimulus window, "deep retina", McIntosh et al. 2016). Both models read a fixed window of the last
`window` stimulus frames; neither keeps a state beyond it. Shapes as in
`snnlib.methods.latent_variable`: stimulus x [T, B, D], spikes y [T, B, N], time first; frames
before the sequence start are zeros.

WindowCNN (deep-retina style, reduced to what fits a 2-core budget):
    c[t]      = ReLU(sum_{k<window} W1[k] x[t-k] + b1)         temporal convolution, `channels` filters
    lambda[t] = softplus(W2 c[t] + b2)                         rate per neuron and bin
    P(y[t, n] = 1) = 1 - exp(-lambda[t, n])                    Poisson count > 0; trials are
                                                               generated bin by bin, independently
    loss: Poisson negative log-likelihood sum_n (lambda - y log lambda), per bin

SpikeHistoryGLM (LN-Poisson with a post-spike filter, Pillow et al. 2008 style, one per neuron):
    lambda[t, n] = exp(b_n + sum_{k<window} k_n[k] . x[t-k] + sum_{j=1..history} g_n[j] y[t-j, n])
    (log lambda clipped at 3, P(spike) <= 0.95: the exp link overflowed at lr 1e-2 otherwise)
    P(y[t, n] = 1) = 1 - exp(-lambda[t, n]); loss as above with the recorded history (teacher forcing);
    `generate` samples step by step, feeding its own spikes back through g_n.
The deep retina's spatial convolutions are left out: the stimuli here are small (a 1-D envelope or
an 8 x 8 patch), so the first layer filters the whole frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from snnlib.checks import positive_int, time_first

MAX_LOG_RATE = 3.0  # GLM: log lambda clipped (P(spike) <= 0.95) so that an exp link cannot overflow
_HINT = "pass the stimulus time-first [T, B, D] (one step per frame)"


def _windowed(conv: nn.Conv1d, x: torch.Tensor, window: int) -> torch.Tensor:
    """Causal 1-D convolution over time: x [T, B, D] -> [T, B, C] (zeros before the start)."""
    seq = F.pad(x.permute(1, 2, 0), (window - 1, 0))  # [B, D, T + window - 1]
    return conv(seq).permute(2, 0, 1)


def _poisson_loss(log_rate: torch.Tensor, y: torch.Tensor, burn_in: int) -> torch.Tensor:
    """Poisson NLL summed over neurons, averaged over the bins t >= burn_in and the batch."""
    return F.poisson_nll_loss(log_rate, y, log_input=True, full=False, reduction="none").sum(-1)[burn_in:].mean()


def _bernoulli_log_likelihood(log_rate: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log P(y) per bin with P(y = 1) = 1 - exp(-lambda), lambda = exp(log_rate)."""
    rate = log_rate.exp().clamp(min=1e-8)
    return y * torch.log(-torch.expm1(-rate)) - (1 - y) * rate  # log(1 - p) = -lambda


class WindowCNN(nn.Module):
    """Fixed-window CNN predicting rates (see the module docstring)."""

    def __init__(self, n_inputs: int, n_neurons: int, window: int = 20, channels: int = 16):
        super().__init__()
        self.n_inputs, self.n_neurons = positive_int("n_inputs", n_inputs), positive_int("n_neurons", n_neurons)
        self.window = positive_int("window", window)
        self.temporal = nn.Conv1d(n_inputs, positive_int("channels", channels), window)
        self.readout = nn.Linear(channels, n_neurons)

    def log_rate(self, x: torch.Tensor) -> torch.Tensor:
        """log lambda [T, B, N]."""
        time_first(x, self.n_inputs, _HINT)
        return torch.log(F.softplus(self.readout(F.relu(_windowed(self.temporal, x, self.window)))) + 1e-6)

    def loss(self, x: torch.Tensor, y: torch.Tensor, burn_in: int = 0) -> tuple[torch.Tensor, dict]:
        loss = _poisson_loss(self.log_rate(x), y, burn_in)
        return loss, {"nll": float(loss.detach())}

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _bernoulli_log_likelihood(self.log_rate(x), y)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        p = -torch.expm1(-self.log_rate(x).exp())
        return (torch.rand(p.shape, generator=generator, device=x.device) < p).float()


class SpikeHistoryGLM(nn.Module):
    """LN-Poisson GLM with a stimulus filter over a fixed window and a spike-history filter."""

    def __init__(self, n_inputs: int, n_neurons: int, window: int = 20, history: int = 10):
        super().__init__()
        self.n_inputs, self.n_neurons = positive_int("n_inputs", n_inputs), positive_int("n_neurons", n_neurons)
        self.window, self.history = positive_int("window", window), positive_int("history", history)
        self.stimulus = nn.Conv1d(n_inputs, n_neurons, window)
        self.post_spike = nn.Parameter(torch.zeros(n_neurons, history))  # g_n[j], j = 1..history
        with torch.no_grad():  # start near a flat, low rate: an exp link with default init overflows the loss
            self.stimulus.weight.mul_(0.1)
            self.stimulus.bias.fill_(-3.0)

    def _drive(self, x: torch.Tensor) -> torch.Tensor:
        time_first(x, self.n_inputs, _HINT)
        return _windowed(self.stimulus, x, self.window)

    def _log_rate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log lambda [T, B, N] with the recorded history y."""
        past = F.pad(y.permute(1, 2, 0), (self.history, 0))[..., :-1]  # y[t-1] at t; [B, N, T + history - 1]
        hist = F.conv1d(past, self.post_spike.flip(-1).unsqueeze(1), groups=self.n_neurons)
        return (self._drive(x) + hist.permute(2, 0, 1)).clamp(max=MAX_LOG_RATE)

    def loss(self, x: torch.Tensor, y: torch.Tensor, burn_in: int = 0) -> tuple[torch.Tensor, dict]:
        loss = _poisson_loss(self._log_rate(x, y), y, burn_in)
        return loss, {"nll": float(loss.detach())}

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _bernoulli_log_likelihood(self._log_rate(x, y), y)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        drive = self._drive(x)
        T, B, N = drive.shape
        past = x.new_zeros(B, N, self.history)  # most recent last
        out = []
        for t in range(T):
            log_rate = (drive[t] + (past * self.post_spike.flip(-1)).sum(-1)).clamp(max=MAX_LOG_RATE)
            p = -torch.expm1(-log_rate.exp())
            s = (torch.rand(p.shape, generator=generator, device=x.device) < p).float()
            out.append(s)
            past = torch.cat([past[..., 1:], s.unsqueeze(-1)], -1)
        return torch.stack(out)
