"""snnlib.metrics against NeuroBench 2.3.0 on trained he2020 models and qin2025 cores: operations, sparsity, parameters.

NeuroBench is a test dependency (installed from the lock without its torchaudio, which only its
speech pre-processors import). Its models take batch-first data; `BatchFirst` feeds our
time-first networks. Both sides see the same weights and the same input.
"""

import pytest
import torch
from spikingjelly.activation_based import base, functional
from torch import nn

from snnlib import metrics
from snnlib.methods.snn_vs_rnn import SpikingCNN, SpikingMLP
from snnlib.training import fit, make_loader, seed_everything

neurobench_models = pytest.importorskip("neurobench.models")
from neurobench.metrics.static import ParameterCount  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402


class BatchFirst(nn.Module):
    """[B, T, ...] in and out around a time-first network, reset before every batch."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        functional.reset_net(self.net)
        return self.net(x.transpose(0, 1)).transpose(0, 1)


def trained(model, seed=0):
    """A few epochs of BPTT on a small spike data set whose class sets the firing density."""
    seed_everything(seed)
    y = torch.arange(64) % 4
    x = (torch.rand(64, 12, 2, 8, 8) < 0.1 + 0.15 * y.view(-1, 1, 1, 1, 1)).float()  # [N, T, ...]
    loader = make_loader(torch.utils.data.TensorDataset(x, y), 16, seed=seed)
    loss = lambda out, target: nn.functional.cross_entropy(out.mean(0), target)  # noqa: E731
    fit(model, loader, epochs=3, optimizer=torch.optim.Adam(model.parameters(), 5e-3), loss_fn=loss,
        time_axis=1, progress=False)
    return model.eval(), x[:16]


def neurobench_counts(net, x_batch_first):
    model = neurobench_models.TorchModel(BatchFirst(net))
    model.add_activation_module(base.MemoryModule)  # our neurons are spikingjelly memory modules
    model.register_hooks()
    with torch.no_grad():
        preds = model(x_batch_first)
    data = (x_batch_first, None)
    result = {"ops": SynapticOperations()(model, preds, data), "sparsity": ActivationSparsity()(model, preds, data),
              "parameters": ParameterCount()(model)}
    model.cleanup_hooks()
    return result


@pytest.mark.parametrize("make", [lambda: SpikingMLP((2, 8, 8), (32,), 4),
                                  lambda: SpikingCNN((2, 8, 8), (4, 6), (16,), 4, dropout=0.2)],
                         ids=["SNN-MLP", "SCNN"])
def test_snnlib_counts_equal_neurobench_on_trained_models(make):
    net, x = trained(make())
    theirs = neurobench_counts(net, x)
    x_time_first = x.transpose(0, 1)
    ours = metrics.synaptic_operations(net, x_time_first)[["effective_acs", "effective_macs", "dense"]].sum()
    assert ours["effective_acs"] > 0 and ours["effective_macs"] == 0  # spikes in: accumulates only
    assert ours["effective_acs"] == pytest.approx(theirs["ops"]["Effective_ACs"], rel=1e-12)
    assert ours["effective_macs"] == pytest.approx(theirs["ops"]["Effective_MACs"], abs=0)
    assert ours["dense"] == pytest.approx(theirs["ops"]["Dense"], rel=1e-12)
    sparsity = metrics.activation_sparsity(net, x_time_first)
    assert 0 < sparsity < 1 and sparsity == pytest.approx(theirs["sparsity"], rel=1e-12)
    assert metrics.count_parameters(net) == theirs["parameters"]


def trained_core(kind, seed=0):
    """A qin2025 recurrent spiking core (time-first [T, B, 8] -> [T, B, 16]) after 30 Adam steps on a recall target."""
    from snnlib.methods.gated_recurrent_neuron import make_core

    seed_everything(seed)
    core = make_core(kind, 8, 16)
    readout = nn.Linear(16, 2)
    optimizer = torch.optim.Adam([*core.parameters(), *readout.parameters()], 1e-2)
    x = (torch.rand(20, 32, 8) < 0.3).float()
    y = (x[:3, :, 0].sum(0) > 0).long()  # was channel 0 active in the first 3 steps
    for _ in range(30):
        functional.reset_net(core)
        loss = nn.functional.cross_entropy(readout(core(x))[-1], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    functional.reset_net(core)
    return core.eval(), x[:, :8]


@pytest.mark.parametrize("kind", ["lif-tap", "grsn-tap"])
def test_snnlib_counts_equal_neurobench_on_qin2025_cores(kind):
    """The recurrent cores of qin2025: gate layers run once per step on the cell's own spikes."""
    from snnlib.methods.gated_recurrent_neuron import GRSNCell

    core, x = trained_core(kind)
    theirs = neurobench_counts(core, x.transpose(0, 1))
    ours = metrics.synaptic_operations(core, x)[["effective_acs", "effective_macs", "dense"]].sum()
    assert ours["effective_acs"] > 0
    assert ours["effective_acs"] == pytest.approx(theirs["ops"]["Effective_ACs"], rel=1e-12)
    assert ours["effective_macs"] == pytest.approx(theirs["ops"]["Effective_MACs"], rel=1e-12, abs=0)
    assert ours["dense"] == pytest.approx(theirs["ops"]["Dense"], rel=1e-12)
    cells = [m for m in core.modules() if isinstance(m, GRSNCell)]  # not spikingjelly neurons: name them
    sparsity = metrics.activation_sparsity(core, x, modules=cells or None)
    assert 0 < sparsity < 1 and sparsity == pytest.approx(theirs["sparsity"], rel=1e-12)
    assert metrics.count_parameters(core) == theirs["parameters"]
