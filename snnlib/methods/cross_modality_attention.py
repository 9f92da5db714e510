"""Zhou et al. 2024: Cross-Modality Attention (CMA) fusion of DAVIS event and APS frame streams.

Paper: S. Zhou, B. Yang, M. Yuan, R. Jiang, R. Yan, G. Pan, H. Tang, "Enhancing SNN-based
spatio-temporal learning: A benchmark dataset and Cross-Modality Attention model", Neural
Networks (2024) 106677, arXiv 2410.15689. Authors' repository: github.com/JasonKitty/DVS-SLR
(data loader only). Facts: shared/research/papers.md §2.

THIS MODEL IS A RECONSTRUCTION. The authors released no model code and the paper body could not
be read here; what is known is the abstract ("learn both temporal and spatial attention scores
from the spatio-temporal features of event and frame modalities, subsequently allocating these
scores across modalities") and a secondary review (spatial attention from the frame modality,
temporal attention from the event modality, cross-applied). Every structural choice below is ours.

Shapes. The input is one time-first tensor `[T, B, 2 + C_f, H, W]`: channels 0-1 are the event
frames (ON, OFF counts per step), channels 2.. the APS frames (C_f = 1 grey, 3 RGB), the same T
for both (the DVS-SLR loader makes one event frame per APS inter-frame interval). The output is
the readout layer's spikes `[T, B, classes]`; the prediction is the class with the highest spike
count (rate), the loss `rate_mse`: MSE between the spike rate and the one-hot label (the
spikingjelly examples' rate readout).

Branch (one per modality, same structure, own weights), for each time step t:

    u1[t] = AvgPool2(LIF(BN(Conv3x3(x[t]))))          channels c1
    F[t]  = AvgPool2(LIF(BN(Conv3x3(u1[t]))))         channels c2, F in [T, B, c2, H/4, W/4]

LIF: snnlib.neurons.LIFNode, tau 2, threshold 1, hard reset to 0, ArcTan surrogate.

Temporal attention (from the event branch, applied to the frame branch), one score per step:

    z[t]  = [mean_{c,h,w} F_e[t], max_{c,h,w} F_e[t]]                     [B, 2] per t
    a     = sigmoid(W2 relu(W1 [z_avg; z_max] ))                            W1: 2T -> r, W2: r -> T
    F_f'[t] = a[t] * F_f[t]

    (the squeeze-excitation over time of TA-SNN, Yao et al. 2021; r = max(T // 2, 1).)

Spatial attention (from the frame branch, applied to the event branch), one map per step:

    M[t]  = sigmoid(Conv3x3([mean_c F_f[t], max_c F_f[t]]))                [B, 1, H/4, W/4]
    F_e'[t] = M[t] * F_e[t]

    (CBAM's spatial attention, Woo et al. 2018, per time step.)

Both attentions are computed from the branches' own (unattended) features, then cross-applied.

Fusion and readout: o[t] = LIF(W_o flatten(concat_c(F_e'[t], F_f'[t])) + b_o).

Variants (`VARIANTS`): "event" (event branch only), "frame" (frame branch only), "naive" (both
branches concatenated, no attention), "cma_temporal" (temporal attention only), "cma_spatial"
(spatial attention only), "cma" (both). `temporal` / `spatial` are plain attributes: switching both
off turns a CMA model into naive fusion with the same weights. The attention layers are built after
the branches and the readout, so a naive and a CMA model built from the same seed share those weights.

State: every LIFNode is a spikingjelly MemoryModule; `reset_state(model)` (spikingjelly's
`functional.reset_net`) clears membranes before the next sample batch. `forward` resets first, so
calls never leak state into one another.

Departures from the paper (known facts only; the rest is reconstruction, see above):
  * sizes are scaled: two conv layers of a few channels on small frames instead of the paper's
    network on 260 x 346 inputs (the paper profile's sizes are given in config/zhou2024.yaml);
  * the temporal MLP needs a fixed T (`time_steps`): the DVS-SLR loader fixes T = 120.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from snnlib.checks import positive_int
from snnlib.neurons import LIFNode

VARIANTS = ("event", "frame", "naive", "cma_temporal", "cma_spatial", "cma")
EVENT_CHANNELS = 2


def _lif() -> LIFNode:
    return LIFNode(tau=2.0, v_threshold=1.0, v_reset=0.0)


def _per_step(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless per-frame module to `[T, B, ...]` by folding T into the batch."""
    y = module(x.flatten(0, 1))
    return y.view(x.shape[0], x.shape[1], *y.shape[1:])


class SpikingConvBranch(nn.Module):
    """Two (Conv3x3 - BN - LIF - AvgPool2) blocks on `[T, B, C, H, W]`: spikes `[T, B, c2, H/4, W/4]`."""

    def __init__(self, in_channels: int, channels: tuple[int, int]):
        super().__init__()
        c1, c2 = (positive_int("channels", c) for c in channels)
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1))
        self.lif1 = _lif()
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2))
        self.lif2 = _lif()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = _per_step(self.pool, self.lif1(_per_step(self.conv1, x)))
        return _per_step(self.pool, self.lif2(_per_step(self.conv2, u)))

    def extra_repr(self) -> str:
        return "spiking conv branch, two blocks, pool 4 in all"


class TemporalAttention(nn.Module):
    """One score per time step from `[T, B, C, H, W]` features: `[T, B]` in (0, 1) (see the module docstring)."""

    def __init__(self, time_steps: int):
        super().__init__()
        t = positive_int("time_steps", time_steps)
        self.time_steps = t
        self.mlp = nn.Sequential(nn.Linear(2 * t, max(t // 2, 1)), nn.ReLU(), nn.Linear(max(t // 2, 1), t))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] != self.time_steps:
            raise ValueError(f"temporal attention was built for T = {self.time_steps} steps, got "
                             f"{features.shape[0]}: build the model with time_steps={features.shape[0]}")
        flat = features.flatten(2)  # [T, B, CHW]
        z = torch.cat([flat.mean(2), flat.amax(2)], dim=0)  # [2T, B]
        return torch.sigmoid(self.mlp(z.t())).t()  # [T, B]


class SpatialAttention(nn.Module):
    """One map per step from `[T, B, C, H, W]` features: `[T, B, 1, H, W]` in (0, 1) (CBAM-style)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.stack([features.mean(2), features.amax(2)], dim=2)  # [T, B, 2, H, W]
        return torch.sigmoid(_per_step(self.conv, pooled))


class CrossModalityAttentionNet(nn.Module):
    """Event branch + frame branch, cross-modal temporal / spatial attention, spiking rate readout.

    Args: `variant` one of `VARIANTS`; `n_classes`; `frame_channels` C_f (1 grey, 3 RGB);
    `height`, `width` of the input frames (multiples of 4); `time_steps` T (for the temporal
    attention); `channels` (c1, c2) of each branch.
    """

    def __init__(self, variant: str, n_classes: int, *, frame_channels: int = 1, height: int, width: int,
                 time_steps: int, channels: tuple[int, int] = (8, 16)):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        for name, size in (("height", height), ("width", width)):
            if positive_int(name, size) % 4:
                raise ValueError(f"{name} must be a multiple of 4 (two 2x2 poolings), got {size}: crop or pad "
                                 "the frames")
        self.variant = variant
        self.frame_channels = positive_int("frame_channels", frame_channels)
        self.uses_event = variant != "frame"
        self.uses_frame = variant != "event"
        self.temporal = variant in ("cma_temporal", "cma")
        self.spatial = variant in ("cma_spatial", "cma")
        self.event_branch = SpikingConvBranch(EVENT_CHANNELS, channels) if self.uses_event else None
        self.frame_branch = SpikingConvBranch(self.frame_channels, channels) if self.uses_frame else None
        n_features = (self.uses_event + self.uses_frame) * channels[1] * (height // 4) * (width // 4)
        self.readout = nn.Linear(n_features, positive_int("n_classes", n_classes))
        self.readout_lif = _lif()
        self.temporal_attention = TemporalAttention(time_steps) if self.temporal else None
        self.spatial_attention = SpatialAttention() if self.spatial else None
        self.last_scores: torch.Tensor | None = None  # [T, B] of the last forward (temporal)
        self.last_maps: torch.Tensor | None = None  # [T, B, 1, h, w] of the last forward (spatial)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = EVENT_CHANNELS + self.frame_channels
        if x.dim() != 5 or x.shape[2] != expected:
            raise ValueError(f"input must be time-first [T, B, {expected}, H, W] (2 event channels then "
                             f"{self.frame_channels} frame channel(s)), got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        reset_state(self)
        events = self.event_branch(x[:, :, :EVENT_CHANNELS]) if self.uses_event else None
        frames = self.frame_branch(x[:, :, EVENT_CHANNELS:]) if self.uses_frame else None
        self.last_scores = self.last_maps = None
        if self.temporal:
            self.last_scores = self.temporal_attention(events)
        if self.spatial:
            self.last_maps = self.spatial_attention(frames)
        if self.temporal:
            frames = frames * self.last_scores[:, :, None, None, None]
        if self.spatial:
            events = events * self.last_maps
        parts = [f for f in (events, frames) if f is not None]
        fused = torch.cat(parts, dim=2).flatten(2)
        return self.readout_lif(self.readout(fused))


def reset_state(model: nn.Module) -> None:
    """Clear every neuron's membrane (spikingjelly's `functional.reset_net`)."""
    functional.reset_net(model)


def rate_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between the spike rate `mean_t output [T, B, C]` and the one-hot of `target [B]`."""
    return F.mse_loss(output.mean(0), F.one_hot(target, output.shape[-1]).to(output.dtype))
