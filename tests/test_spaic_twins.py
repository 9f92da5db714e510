"""SPAIC's case-study networks against their snnlib twins (snnlib.methods.spaic_twins): the same description, the
same weights and the same input spikes give bit-identical spike trains.

Each equality is paired with a check that the input tells the dynamics apart: the twin with its neuron replaced by
a reference loop reproduces SPAIC, and the same loop with the decay, threshold or reset changed does not, so the
equality would fail if one side's mapping moved; firing at exactly v_th (strict vs >=) is checked on an input
that lands on it.
"""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("spaic")
from snnlib.methods import spaic_bridge as sb  # noqa: E402
from snnlib.methods import spaic_circuits as sc  # noqa: E402
from snnlib.methods import spaic_stdp as st  # noqa: E402
from snnlib.methods import spaic_twins as tw  # noqa: E402


class Reference(nn.Module):
    """A per-step loop in place of the twin's `spaic_bridge.SpaicLIF`: H = beta V + I, fire on H > v_th, reset to 0
    (or soft); returns (spikes, V[T-1], None) where SpaicLIF returns H third."""

    def __init__(self, beta, v_th, soft=False, strict=True):
        super().__init__()
        self.beta, self.v_th, self.soft, self.strict = beta, v_th, soft, strict

    def forward(self, current, v=None):
        v = torch.zeros_like(current[0]) if v is None else v
        out = []
        for i in current:
            h = self.beta * v + i
            s = (h > self.v_th if self.strict else h >= self.v_th).float()
            v = h - self.v_th * s if self.soft else h * (1 - s)
            out.append(s)
        return torch.stack(out), v, None


def variants(lif):
    """The twin's neuron as the reference loop: exact, then with one of decay, threshold, reset changed."""
    return {
        "exact": Reference(lif.beta, lif.v_th),
        "decay": Reference(lif.beta * 0.97, lif.v_th),
        "threshold": Reference(lif.beta, lif.v_th * 1.05),
        "reset": Reference(lif.beta, lif.v_th, soft=True),
    }


def assert_twin_and_sensitive(twin, run, expected):
    """run(twin) -> spikes to compare with SPAIC's `expected`; equal, and the changed neurons differ."""
    got = run(twin)
    assert torch.equal(got, expected), f"{int((got != expected).sum())} of {got.numel()} entries differ from SPAIC"
    for what, ref in variants(twin.lif).items():
        twin.lif = ref
        same = torch.equal(run(twin), expected)
        assert same if what == "exact" else not same, f"{what}: the reference loop does not tell it apart"


@pytest.mark.parametrize("conv", [False, True], ids=["single layer", "conv"])
def test_stca_classifier_twin_gives_spaic_spike_trains(conv):
    spec = sb.Classifier(784, 10, tau_m=6.0, v_th=0.8, dt=1.0, conv=conv)
    images = torch.as_tensor(np.random.default_rng(5).random((4, 784)), dtype=torch.float32) * 0.2
    twin, x, trains = tw.classifier_pair(spec, images, steps=25, seed=4)

    def run(t):
        with torch.no_grad():
            return t(x)[-1]

    assert trains.shape == (25, 4, 10) and 0 < trains.mean() < 0.5
    assert_twin_and_sensitive(twin, run, trains)


def test_spaic_poisson_draws_spaics_input_spikes():
    rates = torch.tensor([[0.0, 0.3, 1.0]])
    torch.manual_seed(0)
    x = tw.spaic_poisson(rates, 400, 1.0)
    assert x.shape == (400, 1, 3)
    assert x[:, 0, 0].sum() == 0 and x[:, 0, 2].sum() == 400 and 80 < x[:, 0, 1].sum() < 160


def test_microcircuit_twin_gives_spaic_spike_trains():
    spec = sc.microcircuit_description(scale=0.01, duration=40.0, dt=0.5, w=0.015, w_bg=0.005, g=5.0, tau_m=9.0,
                                       bg_rate=8.0, seed=1)
    spaic = sc.microcircuit(spec)["spikes"]
    expected = torch.cat([torch.as_tensor(spaic[p]) for p in sc.POPULATIONS], 1)

    def run(t):
        return torch.cat([t()[p] for p in sc.POPULATIONS], 1)

    assert 0 < expected.mean() < 0.5
    assert_twin_and_sensitive(tw.MicrocircuitTwin(spec), run, expected)
    assert all(spaic[p].sum() > 0 for p in ("L23i", "L4e", "L5e", "L6e")), "recurrent drive must be exercised"


def test_stdp_feature_layer_twin_gives_spaic_spike_trains():
    rng = np.random.default_rng(7)
    spec = st.FeatureLayer((rng.random((12, 784)) * 0.3).astype(np.float32), inhibition=2.0, tau_m=15.0, v_th=3.0,
                           dt=1.0)
    images = torch.as_tensor(rng.random((3, 784)), dtype=torch.float32) * 0.25
    _, x, trains = tw.feature_layer_pair(spec, images, steps=30, seed=8)
    assert 0 < trains.mean() < 0.5
    assert_twin_and_sensitive(tw.FeatureLayerTwin(spec), lambda t: t(x), trains)
    # the lateral inhibition is exercised: without it the layer fires more
    uninhibited = tw.FeatureLayerTwin(st.FeatureLayer(spec.weight, 0.0, spec.tau_m, spec.v_th, spec.dt))
    assert uninhibited(x).sum() > trains.sum()


def test_twins_fire_strictly_above_threshold():
    # weights 0.5 and v_th 1: two input spikes into a neuron at V = 0 (the start, or just after a reset) put H
    # exactly on v_th, where SPAIC does not fire and a >= rule would
    spec = st.FeatureLayer(np.full((3, 4), 0.5, dtype=np.float32), inhibition=0.0, tau_m=8.0, v_th=1.0, dt=1.0)
    twin, x, trains = tw.feature_layer_pair(spec, torch.full((2, 4), 0.5), steps=40, seed=9)
    assert torch.equal(twin(x), trains)
    twin.lif = Reference(twin.lif.beta, twin.lif.v_th, strict=False)
    assert not torch.equal(twin(x), trains), "no H landed exactly on v_th"


def test_definition_lines_counts_code_only():
    def f(a):
        """A docstring
        over two lines."""
        # a comment

        return a  # trailing comment: still code

    assert tw.definition_lines(f) == 2
    table = tw.frontend_table()
    assert table.spaic_lines.gt(0).all() and table.twin_lines.notna().sum() == 5
