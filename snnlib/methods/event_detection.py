"""A small spiking detector (T = 3) behind an EAS-SNN sampler, trained and scored with COCO mAP.

Wang et al. 2024 (EAS-SNN, ECCV 2024; facts: shared/research/papers.md §7) detect with a spiking
YOLOX; this is a scaled-down stand-in for a CPU: the sampler's representation R [S, B, 2, H, W]
(snnlib.methods.adaptive_sampling) is repeated over the detector's T steps when S = 1 (as the
authors' SpikingYOLOX.forward does), or fed step by step when S = T, into

    backbone  3 x [Conv3x3 -> BatchNorm -> PLIF]   channels w, 2w, 2w; strides 2, 2, 1 (feature stride 4)
              PLIF as the authors' spiking backbone: init tau 2, decay_input False, soft reset,
              threshold 1, arctan surrogate alpha 2 (snnlib.neurons.PLIFNode)
    head      non-spiking ("hybrid", the authors' use_spike True): the spike rate over T, then per
              output Conv3x3 -> ReLU -> Conv1x1 giving a class heat map (K channels), box size
              (w, h in pixels) and sub-cell centre offset -- a CenterNet head instead of YOLOX's
              anchor-free head, simpler to train in seconds.

Loss (CenterNet, Zhou et al. 2019): penalty-reduced focal loss (alpha 2, beta 4) on the heat map
against Gaussian targets at the box centres (sigma = box side / (6 stride), at least 0.5 cell),
plus L1 on size (weight 0.1) and offset (weight 1) at the centre cells, all divided by the number
of boxes; with several boxes in a sample (Gen1) the heat target is the maximum of their Gaussians.
Decoding: sigmoid heat map, 3x3 max-pool peaks, the top `max_dets` peaks of every class as
[x, y, w, h] boxes with their heat as score. Score: snnlib.metrics.coco_map (mAP@50, mAP@50:95).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from snnlib import checks
from snnlib.methods.adaptive_sampling import TimeDistributed
from snnlib.metrics import coco_map
from snnlib.neurons import PLIFNode
from snnlib.surrogate import ArcTan

__all__ = ["SpikingDetector", "TensorDetections", "detection_loss", "decode", "fit_detector", "predict",
           "evaluate_detector"]

STRIDE = 4


def _spiking_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        TimeDistributed(nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                                      nn.BatchNorm2d(c_out))),
        PLIFNode(init_tau=2.0, decay_input=False, v_reset=None, surrogate_function=ArcTan(2.0)),
    )


def _head(c_in: int, c_out: int, bias: float = 0.0) -> nn.Sequential:
    head = nn.Sequential(nn.Conv2d(c_in, c_in, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1))
    nn.init.constant_(head[-1].bias, bias)
    return head


class SpikingDetector(nn.Module):
    """Sampler -> spiking conv backbone (T steps) -> CenterNet head. forward(frames [Tm, B, 2, H, W]) -> dict."""

    def __init__(self, sampler: nn.Module, n_classes: int = 2, T: int = 3, width: int = 16):
        super().__init__()
        self.sampler = sampler
        self.T = checks.positive_int("T", T)
        self.n_classes = checks.positive_int("n_classes", n_classes)
        w = checks.positive_int("width", width)
        self.backbone = nn.Sequential(_spiking_block(2, w, 2), _spiking_block(w, 2 * w, 2),
                                      _spiking_block(2 * w, 2 * w, 1))
        self.heat = _head(2 * w, n_classes, bias=-math.log((1 - 0.1) / 0.1))   # prior 0.1, as CenterNet
        self.size = _head(2 * w, 2)
        self.offset = _head(2 * w, 2)

    def steps(self, frames: torch.Tensor) -> torch.Tensor:
        """The sampler's representation as T detector steps [T, B, 2, H, W]."""
        r = self.sampler(frames)
        if r.shape[0] == 1:
            return r.expand(self.T, *r.shape[1:])
        if r.shape[0] != self.T:
            raise ValueError(f"the sampler gives {r.shape[0]} representations but the detector runs T = {self.T} "
                             "steps; use Ts = 1 (repeated over T, the released commands) or Ts = T")
        return r

    def forward(self, frames: torch.Tensor) -> dict:
        functional.reset_net(self.backbone)
        rate = self.backbone(self.steps(frames)).mean(0)
        return {"heat": self.heat(rate), "size": self.size(rate), "offset": self.offset(rate)}


def _flat_boxes(boxes) -> tuple[torch.Tensor, torch.Tensor]:
    """(image index [N], boxes [N, 5]) of one box per image ([B, 5]) or a list of B tensors [n_i, 5]."""
    if isinstance(boxes, torch.Tensor):
        return torch.arange(boxes.shape[0]), boxes
    image = torch.cat([torch.full((len(b),), i, dtype=torch.long) for i, b in enumerate(boxes)])
    return image, torch.cat([b.reshape(-1, 5) for b in boxes])


def _targets(image: torch.Tensor, boxes: torch.Tensor, shape: tuple[int, int, int, int]):
    """Heat targets [B, K, h, w] (the max of the boxes' Gaussians), centre cells, sizes, offsets of boxes [N, 5]."""
    b, n_classes, h, w = shape
    cx = (boxes[:, 0] + boxes[:, 2] / 2) / STRIDE
    cy = (boxes[:, 1] + boxes[:, 3] / 2) / STRIDE
    ix = cx.floor().clamp(0, w - 1).long()
    iy = cy.floor().clamp(0, h - 1).long()
    sx = (boxes[:, 2] / (6 * STRIDE)).clamp(min=0.5)
    sy = (boxes[:, 3] / (6 * STRIDE)).clamp(min=0.5)
    yy = torch.arange(h, dtype=boxes.dtype).view(1, h, 1)
    xx = torch.arange(w, dtype=boxes.dtype).view(1, 1, w)
    g = torch.exp(-((xx - ix.view(-1, 1, 1)) ** 2) / (2 * sx.view(-1, 1, 1) ** 2)
                  - ((yy - iy.view(-1, 1, 1)) ** 2) / (2 * sy.view(-1, 1, 1) ** 2))
    slot = (image * n_classes + boxes[:, 4].long()).view(-1, 1).expand(-1, h * w)
    heat = torch.zeros(b * n_classes, h * w, dtype=boxes.dtype).scatter_reduce_(0, slot, g.view(-1, h * w), "amax")
    return heat.view(b, n_classes, h, w), (image, iy, ix), boxes[:, 2:4], torch.stack([cx - ix, cy - iy], dim=1)


def detection_loss(out: dict, boxes) -> torch.Tensor:
    """CenterNet loss of the head outputs against the boxes: [B, 5] (one per sample) or a list of B [n_i, 5]."""
    image, flat = _flat_boxes(boxes)
    heat_t, (bi, iy, ix), size_t, off_t = _targets(image, flat, tuple(out["heat"].shape))
    p = torch.sigmoid(out["heat"]).clamp(1e-4, 1 - 1e-4)
    pos = heat_t.eq(1).to(p.dtype)
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat_t) ** 4 * p ** 2 * torch.log(1 - p)).sum()
    size = F.l1_loss(out["size"][bi, :, iy, ix], size_t, reduction="sum")
    off = F.l1_loss(out["offset"][bi, :, iy, ix], off_t, reduction="sum")
    return (focal + 0.1 * size + off) / max(flat.shape[0], 1)


def decode(out: dict, max_dets: int = 10):
    """Per image: (boxes [N, 4] x, y, w, h; scores [N]; labels [N]) from the top heat-map peaks."""
    heat = torch.sigmoid(out["heat"])
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    b, k, h, w = heat.shape
    scores, idx = peaks.view(b, -1).topk(min(max_dets, k * h * w))
    cls, cell = idx // (h * w), idx % (h * w)
    iy, ix = cell // w, cell % w
    result = []
    for n in range(b):
        size = out["size"][n, :, iy[n], ix[n]].T.clamp(min=0)
        off = out["offset"][n, :, iy[n], ix[n]].T
        cx = (ix[n] + off[:, 0]) * STRIDE
        cy = (iy[n] + off[:, 1]) * STRIDE
        xywh = torch.stack([cx - size[:, 0] / 2, cy - size[:, 1] / 2, size[:, 0], size[:, 1]], dim=1)
        result.append((xywh.detach().numpy(), scores[n].detach().numpy(), cls[n].numpy()))
    return result


class TensorDetections:
    """Samples held in memory: frames [N, Tm, 2, H, W] (batch-first storage) and one box per sample [N, 5].

    The data interface of `fit_detector`, `predict` and `evaluate_detector`: ``len(data)`` and
    ``data.batch(idx) -> (frames [B, Tm, 2, H, W], boxes)``, boxes [B, 5] or a list of B [n_i, 5]
    (``snnlib.data.detection_windows`` gives the list form for Gen1 and N-Caltech101).
    """

    def __init__(self, frames: torch.Tensor, boxes: torch.Tensor):
        if len(frames) != len(boxes):
            raise ValueError(f"{len(frames)} samples of frames but {len(boxes)} boxes")
        self.frames, self.boxes = frames, boxes

    def __len__(self) -> int:
        return len(self.frames)

    def batch(self, idx):
        return self.frames[idx], self.boxes[idx]


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def fit_detector(model: SpikingDetector, data, *, epochs: int, lr: float, batch_size: int = 32,
                 seed: int = 0) -> list[float]:
    """Adam with a cosine schedule on the CenterNet loss over `data` (see TensorDetections); mean loss per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    g = torch.Generator().manual_seed(seed)
    history = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        for idx in _batches(len(data), batch_size, g):
            frames, boxes = data.batch(idx)
            loss = detection_loss(model(frames.transpose(0, 1)), boxes)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"detection loss became {loss.item()}; lower the learning rate")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        history.append(total / len(data))
    return history


@torch.no_grad()
def predict(model: SpikingDetector, data, batch_size: int = 64, max_dets: int = 10):
    """(detections of every sample of `data`, see `decode`; its true boxes, numpy [n_i, 5] each)."""
    model.eval()
    dets, truth = [], []
    for idx in _batches(len(data), batch_size, None):
        frames, boxes = data.batch(idx)
        dets += decode(model(frames.transpose(0, 1)), max_dets)
        truth += [b.reshape(-1, 5).numpy() for b in boxes]
    return dets, truth


def evaluate_detector(model: SpikingDetector, data, subsets: dict | None = None, max_dets: int = 10, keep=None):
    """{"map_50", "map_50_95"} on all samples, and "<name>_map_50_95" on each boolean mask of `subsets`.

    ``keep(boxes [n, 4] x, y, w, h) -> mask`` (optional) drops detections before scoring (Gen1's box filter).
    """
    dets, truth = predict(model, data, max_dets=max_dets)
    if keep is not None:
        dets = [(b[m], s[m], c[m]) for b, s, c in dets for m in [keep(b)]]

    def score(mask):
        chosen = np.flatnonzero(mask)
        return coco_map([dets[i][0] for i in chosen], [dets[i][1] for i in chosen], [dets[i][2] for i in chosen],
                        [truth[i][:, :4] for i in chosen], [truth[i][:, 4].astype(int) for i in chosen])

    result = score(np.ones(len(truth), dtype=bool))
    for name, mask in (subsets or {}).items():
        result[f"{name}_map_50_95"] = score(mask)["map_50_95"]
    return result
