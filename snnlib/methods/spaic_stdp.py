"""Hong et al. 2024 (SPAIC), STDP case study: Diehl & Cook-style unsupervised features with SPAIC's own STDP,
and the STDP + STCA hybrid (STDP-learned first layer, STCA-trained readout) under pixel noise.

Paper: arXiv 2207.12750 (STDP case study, 40 % pixel noise); package spaic==0.6.3.0.0. Facts:
shared/research/papers.md §3. Imports `spaic`, so only the hong2024 notebook and its tests import this.

The feature layer, built with the real spaic frontend:

    Poisson encoder (784, rate per step = pixel * input_scale)  ->  n_hidden `lif` (tau_m, v_th)
    full excitatory connection W >= 0, trained by SPAIC's `nearest_online_stdp` learner
    full lateral inhibition -inhibition * (1 - I) within the layer (fixed)

SPAIC's nearest_online_STDP (spaic/Learning/STDP_Learner.py) per step: traces x_pre, x_post decay by
exp(-1/20) and are set to 1 on a spike; dW = Apost * s_post x_pre^T - Apre * x_post s_pre^T (summed over the
batch); then every row of W is rescaled to an L1 norm of 78.4 (Diehl & Cook's 0.1 per input) and clamped to
[0, 1]. Departures from Diehl & Cook 2015 and from the paper (which uses `lifstdp_ex` / `lifstdp_ih` groups and,
for the hybrid, ring-shaped lateral inhibition): plain `lif` (SPAIC's `diehlAndCook` model is an
integer-quantised chip model) with no adaptive threshold and no separate inhibitory population (uniform direct
lateral inhibition), a batch of images per update, and one pass over a small training set.

Features are the hidden spike counts per image (learning off: a network with the learned W and no learner),
divided by `steps`, then by the 99th percentile of the training features and clipped to [0, 1] (one scale for
all sets, fixed on the training set), as rates for the readout's Poisson encoder (raw rates, ~0.05 per step,
left the readout near chance in trials). The readout is SPAIC's STCA
classifier (`spaic_bridge.train_stca`) on those features; STCA alone is the same classifier on the pixels.
Pixel noise (`pixel_noise`): a fraction of each test image's pixels, chosen at random, replaced by uniform
[0, 1] values; the networks are trained on clean images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spaic
import torch

from snnlib.checks import positive_int, real
from snnlib.methods.spaic_bridge import spaic_weights, train_stca

__all__ = ["pixel_noise", "FeatureLayer", "train_stdp", "stdp_features", "hybrid"]


def pixel_noise(images: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """`images` [N, P] in [0, 1] with round(fraction * P) pixels per image replaced by uniform [0, 1] values."""
    real("fraction", fraction, 0.0, 1.0)
    out = images.copy()
    k = int(round(fraction * images.shape[1]))
    idx = np.argsort(rng.random(images.shape), axis=1)[:, :k]
    np.put_along_axis(out, idx, rng.random((images.shape[0], k)).astype(images.dtype), axis=1)
    return out


@dataclass(frozen=True)
class FeatureLayer:
    """One description of the feature layer for SPAIC (`_FeatureLayer`) and snnlib
    (`spaic_twins.FeatureLayerTwin`): input weights [n_hidden, P] (float32, >= 0), the lateral inhibition
    weight, `lif` tau_m and v_th (reset to 0), dt."""

    weight: np.ndarray
    inhibition: float
    tau_m: float
    v_th: float
    dt: float

    @property
    def lateral(self) -> np.ndarray:
        """The fixed lateral weights -inhibition * (1 - I), [n_hidden, n_hidden]."""
        return (-self.inhibition * (1 - np.eye(len(self.weight)))).astype(np.float32)


class _FeatureLayer(spaic.Network):
    """Poisson encoder -> `lif` layer with lateral inhibition; SPAIC's STDP on the input weights when `learn`."""

    def __init__(self, spec: FeatureLayer, learn: bool):
        super().__init__()
        n_hidden = spec.weight.shape[0]
        self.input = spaic.Encoder(num=spec.weight.shape[1], coding_method="poisson")
        self.layer1 = spaic.NeuronGroup(n_hidden, model="lif", tau_m=spec.tau_m, v_th=spec.v_th)
        self.conn1 = spaic.Connection(self.input, self.layer1, link_type="full", weight=spec.weight)
        self.lateral = spaic.Connection(self.layer1, self.layer1, link_type="full", weight=spec.lateral)
        self.output = spaic.Decoder(num=n_hidden, dec_target=self.layer1, coding_method="spike_counts")
        if learn:
            self.learner = spaic.Learner(trainable=self.conn1, algorithm="nearest_online_stdp")


def _built(spec: FeatureLayer, learn: bool) -> spaic.Network:
    net = _FeatureLayer(spec, learn)
    backend = spaic.Torch_Backend("cpu")
    backend.dt = spec.dt
    net.set_backend(backend)
    net.build()
    return net


def train_stdp(images: np.ndarray, *, n_hidden: int, steps: int, dt: float, batch: int, input_scale: float,
               inhibition: float, tau_m: float, v_th: float, seed: int) -> np.ndarray:
    """One pass of SPAIC's nearest_online_STDP over `images` [N, P]; the learned weights [n_hidden, P]."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    w0 = (rng.random((positive_int("n_hidden", n_hidden), images.shape[1])) * 0.3).astype(np.float32)
    net = _built(FeatureLayer(w0, inhibition, tau_m, v_th, dt), learn=True)
    for i in range(0, len(images), positive_int("batch", batch)):
        net.input(images[i : i + batch] * input_scale)
        net.run(positive_int("steps", steps) * dt)
    return spaic_weights(net)[0].numpy()


def stdp_features(weight: np.ndarray, images: np.ndarray, *, steps: int, dt: float, batch: int,
                  input_scale: float, inhibition: float, tau_m: float, v_th: float, seed: int) -> np.ndarray:
    """Hidden spike counts / steps [N, n_hidden] of the fixed layer `weight` (no learning) on `images`."""
    torch.manual_seed(seed)
    net = _built(FeatureLayer(weight.astype(np.float32), inhibition, tau_m, v_th, dt), learn=False)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            net.input(images[i : i + batch] * input_scale)
            net.run(steps * dt)
            out.append(np.asarray(net.output.predict, dtype=np.float32))
    return np.concatenate(out) / steps


def hybrid(images, labels, test_images, test_labels, noisy_test_images, *, stdp: dict, stca: dict,
           seed: int) -> dict:
    """STDP layer on `images`, STCA readout on its features; accuracies on clean and noisy test images + weights.

    stdp: keyword arguments of `train_stdp` except seed (steps, dt, batch shared with `stdp_features`);
    stca: keyword arguments of `spaic_bridge.train_stca` except seed.
    """
    weight = train_stdp(images, seed=seed, **stdp)
    feat = {k: v for k, v in stdp.items() if k != "n_hidden"}
    f_train, f_test, f_noisy = (stdp_features(weight, x, seed=seed, **feat)
                                for x in (images, test_images, noisy_test_images))
    scale = float(np.percentile(f_train, 99))
    if scale <= 0:
        raise ValueError("the STDP layer did not spike on the training images; raise input_scale or lower v_th")
    f_train, f_test, f_noisy = (np.clip(f / scale, 0.0, 1.0) for f in (f_train, f_test, f_noisy))
    out = train_stca(f_train, labels, f_test, test_labels, noisy_test_images=f_noisy, seed=seed, **stca)
    return {**out, "weight": weight, "mean_rate": float(f_train.mean())}
