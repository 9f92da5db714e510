"""Hong et al. 2024 (SPAIC): snnlib twins of SPAIC's case-study networks, built from the descriptions the SPAIC
versions are built from, so the two definitions can be run on the same input and compared line for line.

Paper: arXiv 2207.12750; package spaic==0.6.3.0.0; facts: shared/research/papers.md §3. The SPAIC side of each
pair, and the description both sides take, lives beside the example it belongs to:

    description                        SPAIC network                        twin here
    spaic_bridge.FeedForward           spaic_bridge.build_spaic             spaic_bridge.SnnlibTwin
    spaic_bridge.Classifier            spaic_bridge.build_classifier        ClassifierTwin
      (single layer, or conv=True)
    spaic_circuits.Microcircuit        spaic_circuits.microcircuit          MicrocircuitTwin
    spaic_stdp.FeatureLayer            spaic_stdp.stdp_features             FeatureLayerTwin

This module imports `spaic` through those modules, so only the hong2024 notebook and its tests import it.

Every twin computes SPAIC's `lif` (spaic_bridge's docstring has it, read from the 0.6.3.0.0 wheel) with
snnlib's decay-factor neuron `snnlib.neurons.fused_decay_lif`, per layer or population l and step t:

    I_l[t] = sum_k W_k s_k[t-1]              every connection k into l delivers the previous step's spikes
    H_l[t] = beta V_l[t-1] + I_l[t],         beta = exp(-dt / tau_m) in float32 (`spaic_bridge.decay_factor`)
    s_l[t] = 1 if H_l[t] > v_th else 0       strict (snnlib Rectangle(strict=True))
    V_l[t] = H_l[t] (1 - s_l[t])             reset to 0

A feed-forward twin (`ClassifierTwin`) runs each layer's T steps in one fused call after shifting its input
current by a step; a recurrent twin (`MicrocircuitTwin`, `FeatureLayerTwin`) steps through time, since I[t]
needs every group's spikes at t-1.

Where the twins follow SPAIC's arithmetic rather than the shortest PyTorch, so that the spike trains are
bit-identical and not merely close (a last-bit difference in I flips a spike whenever H lands within it of v_th,
and the flip then spreads through the recurrence):
  * a group with several incoming connections sums them as SPAIC's backend does: each connection's W s as
    `s @ W.T` on [B, n_pre] (SPAIC's mat_mult_weight), the terms stacked in SPAIC's connection order and
    summed in one `torch.sum` (its reduce_sum);
  * SPAIC's Poisson encoder draws, per step, `torch.rand([B, n]) <= x * dt` from torch's global generator;
    `spaic_poisson` draws the same numbers in the same order, so a run seeded alike sees the same input spikes;
  * the conv layer is `torch.nn.functional.conv2d` without bias, and its output is flattened channel-first
    before the readout, as SPAIC's `flatten` synapse does.
Departures: none in the forward dynamics (the tests check the spike trains bit for bit). Not twinned:
  * learning. SPAIC's STDP is not reproduced (the feature layer's twin takes the learned W). The twins' surrogate,
    Rectangle(width=1, strict), has STCA's window (dS/dH = 1 where |H - v_th| < alpha = 0.5), but SPAIC's reset
    `o.eq(0) * v` carries no gradient (dV/dH = 1 - s) while fused_decay_lif's reset is in the graph
    (dV/dH = 1 - s - H g'), so a twin trained by BPTT would not follow SPAIC's STCA updates;
  * monitors and decoders: a twin returns spikes; SPAIC's spike_counts decoder is their sum over time.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from snnlib.methods import spaic_bridge as sb
from snnlib.methods import spaic_circuits as sc
from snnlib.methods import spaic_stdp as st

__all__ = ["spaic_poisson", "ClassifierTwin", "MicrocircuitTwin", "FeatureLayerTwin", "classifier_pair",
           "feature_layer_pair", "side_by_side", "definition_lines", "frontend_table"]


def spaic_poisson(x: torch.Tensor, steps: int, dt: float) -> torch.Tensor:
    """Poisson spikes [T, B, ...] from rates per ms x [B, ...], drawn as SPAIC's `poisson` encoder draws them
    (per step `torch.rand(x.shape) <= x * dt`, torch's global generator): seed torch alike for the same spikes."""
    p = x * 1.0 * dt  # SPAIC's x * unit_conversion * dt, same rounding
    return torch.stack([torch.rand(x.shape).le(p).float() for _ in range(steps)])


class ClassifierTwin(nn.Module):
    """SPAIC's STCA classifiers (`spaic_bridge.Classifier`) in snnlib: bias-free Linear, or Conv2d + flatten +
    Linear, each followed by the one-step delay and `spaic_bridge.SpaicLIF`.

    forward(spikes [T, B, n_in]) -> list of each layer's spikes [T, B, n_l] (flat); the sum over T of the last
    is SPAIC's spike_counts prediction. `load_spaic(net)` copies a built SPAIC classifier's weights.
    """

    def __init__(self, spec: sb.Classifier):
        super().__init__()
        self.spec = spec
        if spec.conv:
            self.conv = nn.Parameter(torch.zeros(spec.channels, 1, spec.kernel, spec.kernel))
        self.fc = nn.Parameter(torch.zeros(spec.n_out, spec.hidden if spec.conv else spec.n_in))
        self.lif = sb.SpaicLIF(spec.tau_m, spec.v_th, spec.dt)

    def load_spaic(self, net) -> "ClassifierTwin":
        with torch.no_grad():
            for mine, theirs in zip(self.parameters(), sb.spaic_weights(net)):
                mine.copy_(theirs.reshape(mine.shape))
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        spec, steps, batch = self.spec, x.shape[0], x.shape[1]
        out = []
        if spec.conv:
            images = x.reshape(steps * batch, 1, spec.side, spec.side)
            drive = F.conv2d(images, self.conv, stride=spec.stride).reshape(steps, batch, -1)
            x, _, _ = self.lif(sb.delayed(drive))
            out.append(x)
        s, _, _ = self.lif(sb.delayed(x @ self.fc.T))
        return out + [s]


class MicrocircuitTwin(nn.Module):
    """The scaled microcircuit (`spaic_circuits.Microcircuit`) in snnlib: per step, each population's current is
    its background jump w_bg * count plus `s_pre @ W.T` for every incoming connection, summed in SPAIC's order;
    one `spaic_bridge.SpaicLIF` step over all populations.

    forward() -> {population: spikes [T, n]} on the description's background (batch 1, as SPAIC's run).
    """

    def __init__(self, spec: sc.Microcircuit):
        super().__init__()
        self.spec = spec
        self.lif = sb.SpaicLIF(spec.tau_m, spec.v_th, spec.dt)
        self.incoming = {post: [(pre, torch.as_tensor(w)) for (pre, p), w in spec.weights.items() if p == post]
                         for post in sc.POPULATIONS}

    def forward(self) -> dict[str, torch.Tensor]:
        spec = self.spec
        background = torch.as_tensor(spec.background).split(list(spec.sizes), dim=1)
        bg = {p: sb.delayed(x[:, None] * spec.w_bg) for p, x in zip(sc.POPULATIONS, background)}
        s = {p: torch.zeros(1, n) for p, n in zip(sc.POPULATIONS, spec.sizes)}
        v = torch.zeros(1, sum(spec.sizes))
        out = []
        for t in range(len(spec.background)):
            current = torch.cat([torch.stack([bg[p][t]] + [s[pre] @ w.T for pre, w in self.incoming[p]], 1).sum(1)
                                 for p in sc.POPULATIONS], 1)
            spikes, v, _ = self.lif(current[None], v)
            s = dict(zip(sc.POPULATIONS, spikes[0].split(list(spec.sizes), dim=1)))
            out.append(spikes[0, 0])
        return dict(zip(sc.POPULATIONS, torch.stack(out).split(list(spec.sizes), dim=1)))


class FeatureLayerTwin(nn.Module):
    """The STDP feature layer with its weights fixed (`spaic_stdp.FeatureLayer`) in snnlib: per step the input
    connection's `x @ W.T` and the lateral inhibition's `s @ L.T`, summed in SPAIC's order, then one `spaic_bridge.SpaicLIF` step.

    forward(spikes [T, B, P]) -> hidden spikes [T, B, n_hidden]; their sum over T is SPAIC's spike_counts.
    """

    def __init__(self, spec: st.FeatureLayer):
        super().__init__()
        self.weight, self.lateral = torch.as_tensor(spec.weight), torch.as_tensor(spec.lateral)
        self.lif = sb.SpaicLIF(spec.tau_m, spec.v_th, spec.dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        drive = sb.delayed(x @ self.weight.T)
        s, v, out = torch.zeros_like(drive[0]), None, []
        for t in range(len(drive)):
            spikes, v, _ = self.lif(torch.stack([drive[t], s @ self.lateral.T], 1).sum(1)[None], v)
            s = spikes[0]
            out.append(s)
        return torch.stack(out)


def classifier_pair(spec: sb.Classifier, images: torch.Tensor, steps: int, seed: int):
    """SPAIC's classifier (weights drawn under seed `seed`: SPAIC draws them from numpy's global generator, as
    `spaic_bridge.train_stca` seeds it) run once on `images` [B, n_in] (rates per ms) under torch seed `seed`, and
    its twin with those weights; (twin, the input spikes SPAIC drew [T, B, n_in], SPAIC's output spike trains
    [T, B, n_out] as its spike_counts decoder recorded them). twin(x)[-1] is the twin's."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    net = sb.build_classifier(spec, lr=0.01)
    torch.manual_seed(seed)
    net.input(images.reshape(len(images), *net.input_shape).numpy())
    with torch.no_grad():
        net.run(steps * spec.dt)
    torch.manual_seed(seed)
    return ClassifierTwin(spec).load_spaic(net), spaic_poisson(images, steps, spec.dt), net.output.records.detach()


def feature_layer_pair(spec: st.FeatureLayer, images: torch.Tensor, steps: int, seed: int):
    """The fixed feature layer in SPAIC run once on `images` [B, P] (rates per ms) under torch seed `seed`, and
    its twin; (twin, the input spikes SPAIC drew [T, B, P], SPAIC's hidden spike trains [T, B, n_hidden] as its
    decoder recorded them)."""
    net = st._built(spec, learn=False)
    torch.manual_seed(seed)
    net.input(images.numpy())
    with torch.no_grad():
        net.run(steps * spec.dt)
    torch.manual_seed(seed)
    return FeatureLayerTwin(spec), spaic_poisson(images, steps, spec.dt), net.output.records.detach()


def side_by_side(microcircuit: sc.Microcircuit, spaic_microcircuit: dict, classifiers, feature_layer: st.FeatureLayer,
                 images: torch.Tensor, *, steps: int, input_scale: float, seed: int) -> pd.DataFrame:
    """One short run of each twin beside SPAIC on the same description, weights and input spikes.

    spaic_microcircuit: `spaic_circuits.microcircuit(microcircuit)`'s result (the twin reruns only its side);
    classifiers: `spaic_bridge.Classifier`s, run with SPAIC's initial weights (seed `seed`) on `images` [B, P]
    as rates per ms; feature_layer on images * input_scale. One row per microcircuit population and per
    other example: spikes in SPAIC and in the twin, differing entries of the spike trains (the classifiers' output
    layer, the feature layer) and, for the microcircuit, both rates in Hz.
    """
    hz = 1.0 / (microcircuit.dt * 1e-3)
    twin = MicrocircuitTwin(microcircuit)()
    rows = []
    for p in sc.POPULATIONS:
        theirs, mine = torch.as_tensor(spaic_microcircuit["spikes"][p]), twin[p]
        rows.append({**_spikes_row(f"microcircuit {p}", theirs, mine), "spaic_rate_hz": float(theirs.mean()) * hz,
                     "twin_rate_hz": float(mine.mean()) * hz})
    with torch.no_grad():
        for spec in classifiers:
            model, x, trains = classifier_pair(spec, images, steps, seed)
            rows.append(_spikes_row(f"STCA {'conv' if spec.conv else 'single layer'}", trains, model(x)[-1]))
        model, x, trains = feature_layer_pair(feature_layer, images * input_scale, steps, seed)
        rows.append(_spikes_row("STDP feature layer", trains, model(x)))
    return pd.DataFrame(rows)


def _spikes_row(example: str, theirs: torch.Tensor, mine: torch.Tensor) -> dict:
    return {"example": example, "spaic_spikes": float(theirs.sum()), "twin_spikes": float(mine.sum()),
            "differing": int((theirs != mine).sum())}


def definition_lines(*objs) -> int:
    """Source lines of `objs` (classes, functions) that are not blank, comments or docstrings."""
    n = 0
    for obj in objs:
        source = textwrap.dedent(inspect.getsource(obj))
        docs = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
                docs.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
        n += sum(1 for k, line in enumerate(source.splitlines(), 1)
                 if line.strip() and not line.strip().startswith("#") and k not in docs)
    return n


_SPAIC_NEEDS = ("a spaic.Network subclass: Encoder (coding method), NeuronGroup(model=..., tau_m=, v_th=), "
                "Connection(weight=array), monitors or a Decoder; Torch_Backend with dt, set_backend, build, "
                "input, run(ms)")
_TWIN_NEEDS = ("an nn.Module: the weights as tensors, each connection's one-step delay written out, "
               "fused_decay_lif with beta = exp(-dt/tau_m), strict firing, reset to 0 (spaic_bridge.SpaicLIF)")
# (example, SPAIC definition, twin definition (empty: none written), what SPAIC needed, what the twin needed)
_EXAMPLES = [
    ("feed-forward lif (equal dynamics)", [sb._SpaicFeedForward, sb.build_spaic], [sb.SnnlibTwin, sb.SpaicLIF, sb.delayed], _SPAIC_NEEDS,
     "an nn.Module: nn.Linear per layer, the one-step delay written out, fused_decay_lif with beta = exp(-dt/tau_m)"),
    ("STCA single-layer classifier", [sb._SpaicClassifier, sb.build_classifier],
     [ClassifierTwin.__init__, ClassifierTwin.forward, sb.SpaicLIF, sb.delayed, spaic_poisson],
     _SPAIC_NEEDS + "; Learner(algorithm='STCA') and its optimizer",
     _TWIN_NEEDS + "; SPAIC's Poisson draw (spaic_poisson); one class for both classifiers, counted in full for "
     "each; no learner (a torch optimizer on its parameters; the reset's gradient differs, module docstring)"),
    ("small conv STCA classifier", [sb._SpaicConvClassifier, sb.build_classifier],
     [ClassifierTwin.__init__, ClassifierTwin.forward, sb.SpaicLIF, sb.delayed, spaic_poisson],
     _SPAIC_NEEDS + "; link_type='conv' and syn_type=['flatten', 'basic'] before the full readout",
     _TWIN_NEEDS + "; F.conv2d over T*B images and a reshape for SPAIC's flatten synapse"),
    ("STDP feature layer (fixed W)", [st._FeatureLayer, st._built],
     [FeatureLayerTwin, sb.SpaicLIF, sb.delayed, spaic_poisson],
     _SPAIC_NEEDS + "; Learner(algorithm='nearest_online_stdp') on one connection (2 of the lines)",
     _TWIN_NEEDS + "; a loop over time for the lateral inhibition; no STDP (snnlib has no STDP learner)"),
    ("cortical microcircuit", [sc._Microcircuit, sc._run], [MicrocircuitTwin, sb.SpaicLIF, sb.delayed], _SPAIC_NEEDS,
     _TWIN_NEEDS + "; a loop over time, per population the incoming currents stacked and summed in SPAIC's order"),
    ("AdEx thermotaxis chain", [sc._Thermotaxis, sc._run], [], _SPAIC_NEEDS + "; model='adex' built in",
     "not written: snnlib has no AdEx neuron"),
    ("mean-field travelling bump", [sc._Sheet, sc._run], [], _SPAIC_NEEDS + "; model='meanfield' built in",
     "not written: snnlib has no rate unit"),
]


def frontend_table() -> pd.DataFrame:
    """Per example: lines of the network definition in SPAIC and in the twin (`definition_lines` of the code
    that runs; NaN where no twin is written) and what each needed. The descriptions both sides are built from
    (FeedForward, Classifier, Microcircuit, FeatureLayer) are counted for neither."""
    return pd.DataFrame([{"example": name, "spaic_lines": definition_lines(*a),
                          "twin_lines": definition_lines(*b) if b else np.nan, "spaic_needs": na, "twin_needs": nb}
                         for name, a, b, na, nb in _EXAMPLES])
