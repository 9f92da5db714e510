"""Ma et al. 2023: TeCoS-LVM, a temporal-conditioning spiking latent variable model of neural responses.

Paper: G. Ma, R. Jiang, R. Yan, H. Tang, "Temporal Conditioning Spiking Latent Variable Models of the
Neural Response to Natural Visual Scenes", NeurIPS 2023 (arXiv 2306.12045). Facts:
shared/research/papers.md §8.

THIS IS A RECONSTRUCTION. The authors released no code (genema/TECOS-LVM holds a README and a
licence only) and the text available to us is the abstract and the caption of Fig. 1: the model
has a prior, an encoder (inference), a decoder (generation) and a hidden-state update that acts as
sensory memory; it has no temporal filter window over the stimulus ("we exclude the temporal
dimension from the model parameter space") and runs one step per stimulus frame, so prior,
encoder and decoder are conditioned on the whole stimulus history x[1..t] through the hidden
state. Everything below that goes beyond those sentences is our choice, named as such.

Shapes: stimulus x [T, B, D] (one step per frame), spikes y [T, B, N] in {0, 1}, time first.

One step t (h[-1] = 0, s[-1] = 0, u[-1] = 0, y[-1] = 0):

    prior    r(z[t] | h[t-1])       = Normal(mu_r, sigma_r),  [mu_r, log sigma_r^2] = W_r h[t-1] + b_r
    encoder  q(z[t] | x[t], h[t-1]) = Normal(mu_q, sigma_q),  [mu_q, log sigma_q^2] = W_q [x[t], h[t-1]] + b_q
    latent   z[t] = mu_q + sigma_q * eps,  eps ~ Normal(0, I)            (reparameterised sample)
    memory   v[t] = a_h * v[t-1] * (1 - s[t-1]) + W_h [x[t], z[t]] + U_h s[t-1] + b_h
             s[t] = H(v[t] - 1)          (spiking LIF, arctan surrogate, hard reset), h[t] = s[t]
    decoder  u[t] = a_o * u[t-1] * (1 - y[t-1]) + W_d [z[t], h[t-1]] + b_d
             P(y[t] = 1) = sigmoid(u[t] - 1)      noisy LIF output neuron: escape noise with a
                                                  logistic distribution (a neuron fires when
                                                  u + noise crosses the threshold 1), reset after a spike
    a_h, a_o in (0, 1): per-neuron membrane decays, sigmoid of learned parameters

Objective (an information-bottleneck / VRNN-style ELBO per bin, averaged over T, B):

    L = sum_n BCE(sigmoid(u[t, n] - 1), y[t, n]) + beta * KL(q(z[t] | x[t], h[t-1]) || r(z[t] | h[t-1]))
    KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2   (per latent dim)

Generation (`generate`) needs the stimulus only: z[t] is drawn from the encoder q(z | x[t], h[t-1]),
which reads the stimulus and the memory, never the recorded spikes; y[t] is drawn from the noisy
LIF output and resets its own membrane. The learned prior r(z | h) is the information
bottleneck's marginal: it regularises the latent (the KL term) and is not needed to generate.

Choices we made where the abstract and caption are silent (each could differ in the paper):
  * Gaussian latent with the reparameterisation trick (the KL is then closed form, as above);
  * the encoder reads the stimulus and the memory, not the recorded spikes: the model is a
    conditional model of responses given stimuli, and the information bottleneck compresses the
    stimulus into z (so generation is possible for a new stimulus);
  * the memory is one recurrent layer of spiking LIF neurons (spikes are the hidden state h[t]);
    the decays start spread over (0.5, 0.98) so some units integrate over tens of frames;
  * output neurons are noisy LIF neurons with a Bernoulli likelihood; during training their reset
    follows the recorded spikes (teacher forcing, as a GLM's spike-history term), in generation
    their own samples;
  * beta (the KL weight) is a setting, default 1 (the plain ELBO);
  * optimiser: Adam with gradient clipping (`fit_sequences`), trained on short clips whose first
    `burn_in` bins warm up the memory and are not scored (the baselines get the same bins as the
    stimulus window they read), so no model is scored on a state it could not have; given validation
    clips, the weights of the epoch with the lowest validation loss are kept (the same for every model).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from snnlib.checks import positive_int, real, time_first
from snnlib.surrogate import ArcTan

_HINT = "pass the stimulus time-first [T, B, D] (one step per frame)"


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) summed over the last dimension (closed form)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).square()) / logvar_p.exp() - 1).sum(-1)


def _logit(p: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32)


class TeCoSLVM(nn.Module):
    """TeCoS-LVM (reconstruction, see the module docstring): stimulus [T, B, D] -> spikes [T, B, N]."""

    def __init__(self, n_inputs: int, n_neurons: int, hidden: int = 64, latent: int = 16, beta: float = 1.0):
        super().__init__()
        self.n_inputs, self.n_neurons = positive_int("n_inputs", n_inputs), positive_int("n_neurons", n_neurons)
        self.hidden, self.latent = positive_int("hidden", hidden), positive_int("latent", latent)
        self.beta = real("beta", beta, 0.0)
        self.prior = nn.Linear(hidden, 2 * latent)
        self.encoder = nn.Linear(n_inputs + hidden, 2 * latent)
        self.memory_in = nn.Linear(n_inputs + latent, hidden)
        self.memory_rec = nn.Linear(hidden, hidden, bias=False)
        self.decoder = nn.Linear(latent + hidden, n_neurons)
        self.memory_decay = nn.Parameter(_logit(np.linspace(0.5, 0.98, hidden)))
        self.output_decay = nn.Parameter(_logit(np.full(n_neurons, 0.5)))
        self.spike = ArcTan(2.0)

    def _run(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None,
             sample_latent: bool = True) -> dict:
        """Step through the sequence; y given: teacher-forced resets; y None: the model's own spikes."""
        time_first(x, self.n_inputs, _HINT)
        if y is not None and y.shape != (*x.shape[:2], self.n_neurons):
            raise ValueError(f"spikes must be [T, B, N] = {(*x.shape[:2], self.n_neurons)}, got {tuple(y.shape)}")
        T, B = x.shape[:2]
        h = x.new_zeros(B, self.hidden)
        v = torch.zeros_like(h)
        u = x.new_zeros(B, self.n_neurons)
        last = torch.zeros_like(u)
        a_h, a_o = torch.sigmoid(self.memory_decay), torch.sigmoid(self.output_decay)
        logits, kls, spikes = [], [], []
        for t in range(T):
            mu_r, logvar_r = self.prior(h).chunk(2, -1)
            mu_q, logvar_q = self.encoder(torch.cat([x[t], h], -1)).chunk(2, -1)
            kls.append(gaussian_kl(mu_q, logvar_q, mu_r, logvar_r))
            eps = torch.randn(mu_q.shape, generator=generator, device=x.device) if sample_latent else 0.0
            z = mu_q + (0.5 * logvar_q).exp() * eps
            u = a_o * u * (1 - last) + self.decoder(torch.cat([z, h], -1))
            logit = u - 1.0
            logits.append(logit)
            if y is None:
                last = (torch.rand(logit.shape, generator=generator, device=x.device) < torch.sigmoid(logit)).float()
            else:
                last = y[t]
            spikes.append(last)
            v = a_h * v * (1 - h) + self.memory_in(torch.cat([x[t], z], -1)) + self.memory_rec(h)
            h = self.spike(v - 1.0)
        return {"logits": torch.stack(logits), "kl": torch.stack(kls), "spikes": torch.stack(spikes)}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Teacher-forced pass: {'logits': [T, B, N] (u - 1), 'kl': [T, B], 'spikes': y}."""
        return self._run(x, y, None)

    def loss(self, x: torch.Tensor, y: torch.Tensor, burn_in: int = 0) -> tuple[torch.Tensor, dict]:
        """Negative ELBO per bin and sequence: Bernoulli NLL summed over neurons + beta * KL, over the
        bins t >= burn_in (the earlier ones only warm up the state)."""
        out = self(x, y)
        nll = F.binary_cross_entropy_with_logits(out["logits"], y, reduction="none").sum(-1)[burn_in:].mean()
        kl = out["kl"][burn_in:].mean()
        return nll + self.beta * kl, {"nll": float(nll.detach()), "kl": float(kl.detach())}

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log P(y[t, n] | past) per bin [T, B, N], teacher-forced, latent at the encoder's mean."""
        logits = self._run(x, y, None, sample_latent=False)["logits"]
        return -F.binary_cross_entropy_with_logits(logits, y, reduction="none")

    @torch.no_grad()
    def generate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample spike trains [T, B, N] for the stimulus x [T, B, D]; no recorded spikes needed."""
        return self._run(x, None, generator)["spikes"]


def fit_sequences(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, batch_size: int,
                  seed: int, burn_in: int = 0, grad_clip: float = 1.0,
                  validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> pd.DataFrame:
    """Train any model with a `loss(x, y, burn_in) -> (loss, parts)` method on clips x [T, M, D],
    y [T, M, N] with Adam, the loss counted from bin `burn_in` on (the earlier bins give every model
    the stimulus history it reads: a window or a warmed-up state); the history (epoch, loss and the
    loss parts averaged over the epoch's batches). With `validation` = (x, y) clips, the validation
    loss is recorded after every epoch (`val_loss`) and the model ends with the weights of the epoch
    where it was lowest (early stopping by selection; training runs all epochs)."""
    if not 0 <= burn_in < x.shape[0]:
        raise ValueError(f"burn_in must lie in [0, T = {x.shape[0]}), got {burn_in}")
    time_first(x, x.shape[-1] if isinstance(x, torch.Tensor) and x.dim() else 0, _HINT)
    if y.shape[:2] != x.shape[:2]:
        raise ValueError(f"x and y must share [T, M], got {tuple(x.shape)} and {tuple(y.shape)}")
    epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=real("lr", lr, 0.0, open_low=True))
    gen = torch.Generator().manual_seed(seed)
    rows = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(x.shape[1], generator=gen)
        sums, batches = {}, 0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss, parts = model.loss(x[:, idx], y[:, idx], burn_in)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}; lower lr (now {lr})")
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        row = {"epoch": epoch + 1, **{k: v / batches for k, v in sums.items()}}
        if validation is not None:
            model.eval()
            with torch.no_grad():
                row["val_loss"] = float(model.loss(*validation, burn_in)[0])
            model.train()
            if row["val_loss"] <= min(r["val_loss"] for r in rows + [row]):
                best = copy.deepcopy(model.state_dict())
        rows.append(row)
    if validation is not None:
        model.load_state_dict(best)
    model.eval()
    return pd.DataFrame(rows)
