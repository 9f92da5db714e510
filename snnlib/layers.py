"""Shared layers: threshold-dependent batch normalisation (tdBN).

Shapes. Inputs are time-first, `[T, B, C, ...]` (spikingjelly's multi-step mode): `[T, B, C]` after
a linear layer, `[T, B, C, H, W]` after a convolution. The statistics of a channel are taken over
time, batch and space together, i.e. over every axis except C (axis 2).

tdBN (Zheng et al., "Going deeper with directly-trained larger spiking neural networks", AAAI 2021),
for channel c with learnable scale gamma_c and shift beta_c:

    training:  mu_c  = mean of x[..., c, ...] over (T, B, *spatial)
               var_c = the biased variance over the same elements (divide by n, not n - 1)
               running_mu  <- (1 - m) running_mu  + m mu_c
               running_var <- (1 - m) running_var + m var_c * n / (n - 1)      (unbiased)
    eval:      mu_c, var_c = running_mu, running_var
    output:    y = gamma_c * (alpha * V_th * (x - mu_c) / sqrt(var_c + eps)) + beta_c

so that, for normalised inputs, the pre-activation I = y follows N(beta_c, (gamma_c alpha V_th)^2):
its spread is tied to the firing threshold V_th of the neurons it feeds. With alpha = 1 and
gamma = 1 this is batch normalisation rescaled by V_th. The momentum m and the cumulative average
for momentum=None follow torch's BatchNorm; so do the parameter and buffer names (weight = gamma,
bias = beta, running_mean, running_var, num_batches_tracked), so a BatchNorm state dict loads.

The arithmetic follows the MPD-AGL authors' tdBatchNorm1d/2d (github.com/Stay-Sane/MPD-AGL,
models/layers.py) operation for operation; those take `[B, T, C, ...]`, this takes `[T, B, C, ...]`.
Where they would fail (eval mode with track_running_stats=False, no running statistics), this
layer normalises with the batch statistics, as torch's BatchNorm does.
"""

import torch
from torch import nn

from snnlib.checks import real

__all__ = ["TDBatchNorm"]


class TDBatchNorm(nn.modules.batchnorm._NormBase):
    """Threshold-dependent batch norm over time-first input `[T, B, C, ...]` (see the module docstring).

    y = gamma * alpha * v_threshold * (x - mean) / sqrt(var + eps) + beta, statistics per channel
    (axis 2) over all other axes. Args as torch's BatchNorm, plus `alpha` (the paper's alpha, 1 for
    ordinary layers, 1/sqrt(2) before a residual addition) and `v_threshold` (V_th of the neurons fed).
    `gamma_mean()` returns the channel mean of gamma, detached: MPD-AGL's gamma-bar.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, alpha: float = 1.0, v_threshold: float = 0.5):
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int (the number of channels C), got {num_features!r}")
        if momentum is not None:
            momentum = real("momentum (or None for a cumulative average)", momentum, 0.0, open_low=True)
        super().__init__(num_features, real("eps", eps, 0.0, open_low=True), momentum, affine, track_running_stats)
        self.alpha = real("alpha", alpha, 0.0, open_low=True)
        self.v_threshold = real("v_threshold", v_threshold, 0.0, open_low=True)

    def _check_input_dim(self, x) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"TDBatchNorm expects a floating-point tensor [T, B, C, ...], got {type(x).__name__}")
        if x.dim() < 3 or x.shape[2] != self.num_features:
            raise ValueError(
                f"TDBatchNorm({self.num_features}) expects time-first input [T, B, {self.num_features}, ...], "
                f"got shape {tuple(x.shape)}; move time to the front with x.movedim(1, 0) if it is [B, T, ...]"
            )

    def _average_factor(self) -> float:
        """The weight m of the new batch in the running statistics (torch's BatchNorm rule)."""
        if not (self.training and self.track_running_stats):
            return 0.0
        self.num_batches_tracked += 1
        return 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel (mean, variance) to normalise with; updates the running statistics in training."""
        factor = self._average_factor()
        if not self.training and self.track_running_stats:
            return self.running_mean, self.running_var
        dims = [d for d in range(x.dim()) if d != 2]
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        if self.training and self.track_running_stats:
            n = x.numel() / x.size(2)
            with torch.no_grad():
                self.running_mean.copy_(factor * mean + (1 - factor) * self.running_mean)
                self.running_var.copy_(factor * var * n / (n - 1) + (1 - factor) * self.running_var)
        return mean, var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        mean, var = self._statistics(x)
        shape = (1, 1, -1) + (1,) * (x.dim() - 3)
        y = self.alpha * self.v_threshold * (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def gamma_mean(self) -> torch.Tensor:
        """Mean of gamma over the channels, detached (a 0-dim tensor; 1.0 without affine parameters)."""
        if not self.affine:
            return torch.ones(())
        return self.weight.mean().detach().clone()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, v_threshold={self.v_threshold}"
