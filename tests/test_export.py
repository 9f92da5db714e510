"""NIR export/import: the parameter mapping, round trips through snnlib, snntorch and spikingjelly, refusals."""

import numpy as np
import pytest
import snntorch as snn
import snntorch.utils
import torch
from spikingjelly.activation_based import functional, layer
from torch import nn

from snnlib import export, neurons
from snnlib.export import NIRExportError
from snnlib.methods.adaptive_surrogate import MPDLIFNode, MPDPLIFNode
from snnlib.methods.snn_vs_rnn import SpikingCNN, SpikingMLP

DT = export.DT


def spikes_of(model, x):
    model.eval()  # dropout off: NIR describes the network at inference
    functional.reset_net(model)
    with torch.no_grad():
        out = model(x)
    functional.reset_net(model)
    return out


def random_spikes(shape, p=0.3, seed=0):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def mlp(*neuron_factories, sizes=(16, 24, 6)):
    torch.manual_seed(1)
    modules = []
    for (n_in, n_out), make in zip(zip(sizes, sizes[1:]), neuron_factories):
        modules += [nn.Linear(n_in, n_out), make()]
    return nn.Sequential(*modules)


def assert_same_spikes(a, b):
    assert a.shape == b.shape and a.sum() > 0, "a silent network proves nothing"
    assert torch.equal(a, b), f"{int((a != b).sum())} of {a.numel()} spikes differ"


# --------------------------------------------------------------------------- the mapping itself


def test_lif_parameters_map_through_nir_continuous_time():
    model = mlp(lambda: neurons.LIFNode(tau=2.0, v_threshold=0.5, v_reset=-0.1),
                lambda: neurons.LIFNode(tau=4.0, decay_input=False, v_threshold=0.7))
    graph = export.to_nir(model, random_spikes((5, 2, 16)))
    first, second = graph.nodes["1"], graph.nodes["3"]
    # decay_input=True: dt/tau_nir = 1/tau, r = 1; leak towards the reset potential
    assert np.allclose(first.tau, 2.0 * DT) and np.allclose(first.r, 1.0)
    assert np.allclose(first.v_leak, -0.1) and np.allclose(first.v_reset, -0.1) and np.allclose(first.v_threshold, 0.5)
    # decay_input=False: the input enters unscaled, r dt / tau_nir = 1
    assert np.allclose(second.tau, 4.0 * DT) and np.allclose(second.r, 4.0)
    assert graph.nodes["0"].weight.shape == (24, 16) and graph.nodes["0"].bias.shape == (24,)


def test_if_plif_and_decay_factor_neurons_map():
    plif = neurons.PLIFNode(init_tau=3.0, v_threshold=0.4)
    model = mlp(lambda: neurons.IFNode(v_threshold=0.8), lambda: plif)
    nodes = export.to_nir(model, random_spikes((5, 2, 16))).nodes
    assert np.allclose(nodes["1"].r, 1 / DT) and np.allclose(nodes["1"].v_threshold, 0.8)
    assert np.allclose(nodes["3"].tau, 3.0 * DT, rtol=1e-6) and np.allclose(nodes["3"].r, 1.0)
    decay = export.to_nir(mlp(lambda: MPDLIFNode(tau=0.25, v_threshold=0.5), lambda: MPDLIFNode(tau=0.5)),
                          random_spikes((5, 2, 16))).nodes["1"]
    # u = beta u + x  <=>  tau_nir = dt / (1 - beta), r = tau_nir / dt
    assert np.allclose(decay.tau, DT / 0.75) and np.allclose(decay.r, 1 / 0.75) and np.allclose(decay.v_leak, 0)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_snnlib_nir_snnlib_gives_identical_spikes(dtype, tmp_path):
    model = mlp(lambda: neurons.LIFNode(tau=2.0, v_threshold=0.5),
                lambda: neurons.IFNode(v_threshold=1.0, v_reset=0.0), sizes=(16, 32, 10)).to(dtype)
    x = random_spikes((40, 8, 16)).to(dtype)
    path = tmp_path / "mlp.nir"
    export.to_nir(model, x, path=path)
    back = export.from_nir(path).to(dtype)  # a written file reads back
    assert_same_spikes(spikes_of(model, x), spikes_of(back, x))


def test_he2020_models_with_decay_factor_neurons_round_trip():
    torch.manual_seed(0)
    for model, shape in ((SpikingMLP((2, 8, 8), (40,), 10, v_threshold=0.3), (30, 4, 2, 8, 8)),
                         (SpikingCNN((2, 8, 8), (4, 6), (20,), 5, dropout=0.5), (30, 4, 2, 8, 8))):
        x = random_spikes(shape, p=0.4)
        back = export.from_nir(export.to_nir(model, x))
        assert_same_spikes(spikes_of(model, x), spikes_of(back, x))


def test_conv_pool_flatten_chain_round_trips_through_spikingjelly():
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    torch.manual_seed(2)
    model = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, step_mode="m"), neurons.LIFNode(tau=2.0, v_threshold=0.1),
                          layer.AvgPool2d(2, step_mode="m"), nn.Flatten(2), nn.Linear(4 * 4 * 4, 6),
                          neurons.LIFNode(tau=3.0, decay_input=False, v_threshold=0.1))
    with torch.no_grad():
        model[4].weight.mul_(4.0)  # enough drive for the readout to spike
    x = random_spikes((20, 3, 2, 8, 8), p=0.5)
    graph = export.to_nir(model, x)
    theirs = import_from_nir(graph, dt=DT, step_mode="m")
    with torch.no_grad():
        out, _ = theirs(x)
    assert_same_spikes(spikes_of(model, x), out)
    assert_same_spikes(spikes_of(model, x), spikes_of(export.from_nir(graph), x))


def test_snnlib_nir_snntorch_gives_identical_spikes():
    from snntorch.import_nir import import_from_nir

    model = mlp(lambda: neurons.LIFNode(tau=2.0, v_threshold=0.5),
                lambda: neurons.LIFNode(tau=5.0, decay_input=False, v_threshold=0.5))
    x = random_spikes((40, 4, 16))
    net = import_from_nir(export.to_nir(model, x))
    state, steps = None, []
    with torch.no_grad():
        for x_t in x:
            out, state = net(x_t, state)
            steps.append(out)
    assert_same_spikes(spikes_of(model, x), torch.stack(steps))


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")
def test_snntorch_nir_snnlib_gives_identical_spikes():
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(3)

    def leaky(n, beta):  # per-neuron tensors: scalar beta/threshold break snntorch's export
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), 0.5), reset_mechanism="zero",
                         reset_delay=False, init_hidden=True)

    net = nn.Sequential(nn.Linear(16, 20), leaky(20, 0.8), nn.Linear(20, 5), leaky(5, 0.9))
    x = random_spikes((40, 4, 16))
    graph = export_to_nir(net, x[0], ignore_dims=[0])
    snntorch.utils.reset(net)
    with torch.no_grad():
        theirs = torch.stack([net(x_t) for x_t in x])
    assert_same_spikes(theirs, spikes_of(export.from_nir(graph), x))


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.Sequential(nn.Linear(16, 4), neurons.LIFNode(v_reset=None)), "'1'.*soft reset"),
        (nn.Sequential(layer.Conv2d(1, 2, 3, step_mode="m"), layer.MaxPool2d(2, step_mode="m")), "'1'.*MaxPool2d"),
        (nn.Sequential(layer.Conv2d(1, 2, 3, step_mode="m"), layer.BatchNorm2d(2, step_mode="m")), "BatchNorm2d"),
        (nn.Sequential(nn.Flatten(1), nn.Linear(2 * 16, 4)), "merges the time or batch axis"),
    ],
)
def test_what_nir_cannot_express_is_refused_by_layer(model, message):
    x = random_spikes((4, 2, 16)) if isinstance(model[0], nn.Linear) else random_spikes((4, 2, 1, 4, 4))
    with pytest.raises(NIRExportError, match=message):
        export.to_nir(model, x)


def test_a_model_that_is_not_a_chain_is_refused():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.lif = neurons.LIFNode()

        def forward(self, x):
            return self.lif(self.fc(x) + x)

    with pytest.raises(NIRExportError, match="not its layers applied in order"):
        export.to_nir(Residual(), random_spikes((4, 2, 8)))


def test_import_refuses_what_snnlib_cannot_run():
    graph = export.to_nir(mlp(lambda: neurons.LIFNode(tau=2.0), lambda: MPDPLIFNode()), random_spikes((4, 2, 16)))
    graph.nodes["1"].v_leak = np.full(24, 0.3)
    with pytest.raises(NIRExportError, match="v_leak 0.3 differs from v_reset"):
        export.from_nir(graph)
    graph.nodes["1"].v_leak = np.zeros(24)
    graph.nodes["1"].tau = np.linspace(1e-4, 5e-4, 24)
    with pytest.raises(NIRExportError, match="'1': tau differs between neurons"):
        export.from_nir(graph)
    with pytest.raises(FileNotFoundError, match="no such NIR file"):
        export.from_nir("/nonexistent/model.nir")
