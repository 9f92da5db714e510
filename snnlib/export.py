"""NIR export and import of snnlib models: move a trained SNN to other simulators and hardware.

NIR (the Neuromorphic Intermediate Representation, Pedersen et al., Nature Communications 15,
8122, 2024) describes a network as a graph of continuous-time nodes. Its neurons are

    LIF:  tau dv/dt = (v_leak - v) + r I,   z = [v > v_threshold],   v -> v_reset after a spike
    IF:   dv/dt = r I,                      the same threshold and reset

A simulator with time step dt (forward Euler, as snntorch's and spikingjelly's NIR importers)
turns them into v[t] = v[t-1] + (dt / tau) (v_leak - v[t-1] + r I[t]) and v[t] = v[t-1] + dt r I[t].
Matching these to snnlib's discrete neurons (``snnlib.neurons``; k = 1 - 1/tau is the decay) gives,
with dt = 1e-4 s by default (the value snntorch's importer hard-codes, and spikingjelly's default):

    snnlib                                      NIR node
    LIFNode(tau, decay_input=True, v_reset=v0)  LIF  tau_nir = tau dt, r = 1,   v_leak = v_reset = v0
    LIFNode(tau, decay_input=False, v_reset=v0) LIF  tau_nir = tau dt, r = tau, v_leak = v_reset = v0
    PLIFNode                                    as LIFNode with tau = 1 / sigmoid(w) at export time
    IFNode(v_reset=v0)                          IF   r = 1 / dt, v_reset = v0
    decay-factor neurons, u = beta u + x with   LIF  tau_nir = dt / (1 - beta), r = 1 / (1 - beta),
    a hard reset to 0 (he2020's HeLIFNode,           v_leak = v_reset = 0
    MPD-AGL's MPDLIFNode / MPDPLIFNode)
    nn.Linear / layer.Linear                    Affine (with bias) or Linear
    nn.Conv2d / layer.Conv2d                    Conv2d, input_shape from the example input
    nn.AvgPool2d / layer.AvgPool2d              AvgPool2d
    nn.Flatten(start_dim, end_dim) on [T, B, ...]  Flatten(start_dim - 2, end_dim - 2): NIR shapes hold
                                                neither time nor batch
    nn.Dropout, nn.Identity                     nothing (inference)

:func:`from_nir` maps back: LIF with r = 1 -> LIFNode(decay_input=True), with r = tau / dt ->
LIFNode(decay_input=False) (so a decay-factor neuron comes back as the equivalent LIFNode with
tau = 1 / (1 - beta)); IF with r = 1 / dt -> IFNode. Thresholds, resets and time constants must be
the same for every neuron of a layer (snnlib's neurons hold scalars).

What NIR cannot express, refused with an error naming the layer and the option:
* soft reset (``v_reset=None``: subtract the threshold) -- NIR neurons reset to v_reset;
* a leak towards anything but the reset potential (v_leak != v_reset), which spikingjelly's
  neurons cannot run either;
* max pooling, batch norm / tdBN (fold it into the convolution first), and recurrent layers
  (RNN/LSTM, skip-recurrent SRC/ASRC spans, GRSN gates): these modules have no NIR node here;
* models that are not a chain of layers: :func:`to_nir` checks that applying the children in
  order reproduces the model's output on the example input, and refuses otherwise.

Not carried: the surrogate gradient (including MPD-AGL's per-step widths) and ``detach_reset``
shape only the backward pass, which NIR does not describe; an imported model trains with
snnlib's default surrogate. PLIF's learnable w is exported as its current fixed tau. NIR fires on
v > v_threshold, snnlib and spikingjelly on v >= v_threshold: the spikes differ only where a
membrane lands exactly on the threshold. snntorch's importer (1.0.0) builds IF nodes as Leaky
neurons with beta 0.9 and passes Flatten's NIR dims to torch unshifted (off by the batch
dimension), so only LIF/Linear chains cross to snntorch unchanged.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nir
import numpy as np
import torch
from spikingjelly.activation_based import functional, layer
from torch import nn

from snnlib import neurons
from snnlib.io import atomic_path

DT = 1e-4  # seconds per time step in the NIR graph (snntorch's importer assumes exactly this)
_SKIPPED = (nn.Dropout, nn.Identity)


class NIRExportError(ValueError):
    """A layer or option that NIR cannot express; the message names the layer and the option."""


def _array(value, shape) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float64)  # float64: tau_nir / dt comes back exact


def _lif(name: str, shape, tau: float, r: float, v_threshold: float, v_reset: float) -> nir.LIF:
    return nir.LIF(tau=_array(tau, shape), r=_array(r, shape), v_leak=_array(v_reset, shape),
                   v_threshold=_array(v_threshold, shape), v_reset=_array(v_reset, shape))


def _decay_factor(module: nn.Module) -> float | None:
    """beta of a decay-factor neuron (u = beta u + x, hard reset to 0), or None for other modules."""
    from snnlib.methods.adaptive_surrogate import _MPDNode
    from snnlib.methods.snn_vs_rnn import HeLIFNode

    if isinstance(module, HeLIFNode):
        return float(module.decay)
    if isinstance(module, _MPDNode):
        return float(module.decay().detach())
    return None


def _hard_reset(name: str, module: nn.Module) -> float:
    if module.v_reset is None:
        raise NIRExportError(f"layer '{name}' ({type(module).__name__}): soft reset (v_reset=None) cannot be "
                             "expressed in NIR, whose neurons reset to v_reset; use a hard reset")
    return float(module.v_reset)


def _neuron_node(name: str, module: nn.Module, shape, dt: float):
    """The NIR node of an snnlib neuron, or None if ``module`` is not one."""
    beta = _decay_factor(module)
    if beta is not None:
        tau = dt / (1.0 - beta)
        return _lif(name, shape, tau, tau / dt, module.v_threshold, 0.0)
    if isinstance(module, neurons.IFNode):
        r = 1.0 / dt
        return nir.IF(r=_array(r, shape), v_threshold=_array(module.v_threshold, shape),
                      v_reset=_array(_hard_reset(name, module), shape))
    if isinstance(module, (neurons.LIFNode, neurons.PLIFNode)):
        tau = float(module.tau) if isinstance(module, neurons.LIFNode) else 1.0 / float(module.w.detach().sigmoid())
        r = 1.0 if module.decay_input else tau
        return _lif(name, shape, tau * dt, r, module.v_threshold, _hard_reset(name, module))
    return None


def _pair(value) -> np.ndarray:
    """(height, width) from an int, a pair, or NIR's stored array."""
    flat = np.asarray(value).ravel()
    return np.repeat(flat, 2) if flat.size == 1 else flat


def _layer_node(name: str, module: nn.Module, shape, dt: float):
    """The NIR node of one layer applied to per-sample input ``shape`` (no time, no batch)."""
    node = _neuron_node(name, module, shape, dt)
    if node is not None:
        return node
    if isinstance(module, nn.Linear):
        weight = module.weight.detach().numpy().copy()
        return nir.Linear(weight) if module.bias is None else nir.Affine(weight, module.bias.detach().numpy().copy())
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str) or module.padding_mode != "zeros":
            raise NIRExportError(f"layer '{name}': Conv2d padding {module.padding!r} / {module.padding_mode!r} "
                                 "cannot be exported; use integer zero padding")
        bias = module.bias.detach().numpy().copy() if module.bias is not None else np.zeros(module.out_channels, np.float32)
        return nir.Conv2d(input_shape=tuple(shape[-2:]), weight=module.weight.detach().numpy().copy(),
                          stride=_pair(module.stride), padding=_pair(module.padding), dilation=_pair(module.dilation),
                          groups=module.groups, bias=bias)
    if isinstance(module, nn.AvgPool2d):
        if module.padding not in (0, (0, 0)) or module.ceil_mode or module.divisor_override is not None:
            raise NIRExportError(f"layer '{name}': AvgPool2d with padding, ceil_mode or a divisor cannot be exported")
        stride = module.stride if module.stride is not None else module.kernel_size
        return nir.AvgPool2d(kernel_size=_pair(module.kernel_size), stride=_pair(stride), padding=np.array([0, 0]))
    if isinstance(module, nn.Flatten):
        if module.start_dim < 2 or (0 <= module.end_dim < 2):
            raise NIRExportError(f"layer '{name}': Flatten({module.start_dim}, {module.end_dim}) merges the time or "
                                 "batch axis of [T, B, ...]; flatten from dim 2 on")
        end = module.end_dim - 2 if module.end_dim >= 0 else module.end_dim
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=module.start_dim - 2, end_dim=end)
    raise NIRExportError(f"layer '{name}' ({type(module).__name__}) has no NIR counterpart here (supported: "
                         "Linear, Conv2d, AvgPool2d, Flatten, Dropout, snnlib's LIF/PLIF/IF and decay-factor neurons)")


def _layers(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The model's layers in order (nested nn.Sequential opened), named by path with '_' for '.'."""
    found = []
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            found += _layers(child, f"{prefix}{name}_")
        else:
            found.append((f"{prefix}{name}", child))
    return found


def to_nir(model: nn.Module, example_input: torch.Tensor, *, dt: float = DT,
           path: str | os.PathLike | None = None) -> nir.NIRGraph:
    """The NIR graph of ``model`` (a chain of layers) for time-first input like ``example_input``.

    ``example_input``: ``[T, B, ...]``; it fixes the shapes and checks that the children applied in
    order give the model's output. With ``path`` the graph is also written there (atomically).
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 3:
        raise ValueError(f"example_input must be a time-first tensor [T, B, ...], got {getattr(example_input, 'shape', example_input)!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt}")
    layers = [(name, m) for name, m in _layers(model) if not isinstance(m, _SKIPPED)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            functional.reset_net(model)
            expected = model(example_input)
            functional.reset_net(model)
            x, nodes, shapes = example_input, {}, []
            for name, module in layers:
                shapes.append(tuple(x.shape[2:]))
                x = module(x)
            functional.reset_net(model)
    finally:
        model.train(was_training)
    if not isinstance(expected, torch.Tensor) or expected.shape != x.shape or not torch.equal(expected, x):
        raise NIRExportError(f"{type(model).__name__}'s forward is not its layers applied in order; to_nir exports "
                             "chains of layers (nn.Sequential or a model whose children run one after another)")
    for (name, module), shape in zip(layers, shapes):
        nodes[name] = _layer_node(name, module, shape, dt)
    names = list(nodes)
    nodes["input"] = nir.Input(input_type={"input": np.array(example_input.shape[2:])})
    nodes["output"] = nir.Output(output_type={"output": np.array(x.shape[2:])})
    edges = list(zip(["input", *names], [*names, "output"]))
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    if path is not None:
        with atomic_path(Path(path)) as tmp:
            nir.write(tmp, graph)
    return graph


def _uniform(name: str, field: str, value) -> float:
    values = np.unique(np.asarray(value, dtype=np.float64))
    if values.size != 1:
        raise NIRExportError(f"node '{name}': {field} differs between neurons ({values[:4]}...); snnlib's neurons "
                             "hold one value per layer")
    return float(values[0])


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)


def _from_lif(name: str, node: nir.LIF, dt: float) -> nn.Module:
    tau = _uniform(name, "tau", node.tau) / dt
    r = _uniform(name, "r", node.r)
    v_reset, v_leak = _uniform(name, "v_reset", node.v_reset), _uniform(name, "v_leak", node.v_leak)
    if not _close(v_leak, v_reset):
        raise NIRExportError(f"node '{name}': v_leak {v_leak} differs from v_reset {v_reset}; snnlib's LIF leaks "
                             "towards its reset potential")
    if not tau > 1:
        raise NIRExportError(f"node '{name}': tau / dt = {tau:g} must be > 1 (a decay factor in (0, 1))")
    if _close(r, 1.0):
        decay_input = True
    elif _close(r, tau):
        decay_input = False
    else:
        raise NIRExportError(f"node '{name}': r = {r:g} must be 1 (decay_input=True) or tau / dt = {tau:g} "
                             "(decay_input=False)")
    return neurons.LIFNode(tau=tau, decay_input=decay_input, v_threshold=_uniform(name, "v_threshold", node.v_threshold),
                           v_reset=v_reset)


def _from_node(name: str, node, dt: float) -> nn.Module:
    if isinstance(node, nir.LIF):
        return _from_lif(name, node, dt)
    if isinstance(node, nir.IF):
        r = _uniform(name, "r", node.r)
        if not _close(r * dt, 1.0):
            raise NIRExportError(f"node '{name}': IF with r = {r:g}; snnlib's IFNode needs r = 1 / dt = {1 / dt:g}")
        return neurons.IFNode(v_threshold=_uniform(name, "v_threshold", node.v_threshold),
                              v_reset=_uniform(name, "v_reset", node.v_reset))
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
        module = nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        module.weight.data.copy_(weight)
        if isinstance(node, nir.Affine):
            module.bias.data.copy_(torch.as_tensor(np.asarray(node.bias, dtype=np.float32)))
        return module
    if isinstance(node, nir.Conv2d):
        if isinstance(node.padding, str):
            raise NIRExportError(f"node '{name}': Conv2d padding '{node.padding}' is not supported; give integers")
        weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
        module = layer.Conv2d(weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[-2:]),
                              stride=tuple(_pair(node.stride).tolist()), padding=tuple(_pair(node.padding).tolist()),
                              dilation=tuple(_pair(node.dilation).tolist()), groups=int(node.groups), step_mode="m")
        module.weight.data.copy_(weight)
        module.bias.data.copy_(torch.as_tensor(np.asarray(node.bias, dtype=np.float32)))
        return module
    if isinstance(node, nir.AvgPool2d):
        if np.any(np.asarray(node.padding) != 0):
            raise NIRExportError(f"node '{name}': AvgPool2d padding is not supported")
        return layer.AvgPool2d(tuple(_pair(node.kernel_size).tolist()), tuple(_pair(node.stride).tolist()), step_mode="m")
    if isinstance(node, nir.Flatten):
        end = node.end_dim + 2 if node.end_dim >= 0 else node.end_dim
        return nn.Flatten(node.start_dim + 2, end)
    raise NIRExportError(f"node '{name}' ({type(node).__name__}) has no snnlib counterpart (supported: Affine, "
                         "Linear, Conv2d, AvgPool2d, Flatten, LIF, IF)")


def _order(graph: nir.NIRGraph) -> list[str]:
    """The node names from input to output of a chain graph; refuses branches and cycles."""
    successors = {}
    for source, target in graph.edges:
        if source in successors:
            raise NIRExportError(f"node '{source}' feeds several nodes; from_nir builds chains of layers only")
        successors[source] = target
    starts = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(starts) != 1:
        raise NIRExportError(f"the graph needs exactly one Input node, it has {len(starts)}")
    order, name = [], starts[0]
    while name in successors:
        name = successors[name]
        if name in order:
            raise NIRExportError(f"the graph is recurrent at node '{name}'; from_nir builds feed-forward chains only")
        order.append(name)
    if len(order) + 1 != len(graph.nodes):
        raise NIRExportError("the graph is not one chain from its Input to its Output node")
    return [n for n in order if not isinstance(graph.nodes[n], (nir.Input, nir.Output))]


def from_nir(graph: nir.NIRGraph | str | os.PathLike, *, dt: float = DT) -> nn.Sequential:
    """An snnlib model (nn.Sequential, time-first [T, B, ...]) from a NIR graph or a .nir file."""
    if not isinstance(graph, nir.NIRGraph):
        path = Path(graph)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such NIR file")
        graph = nir.read(path)
    if not dt > 0:
        raise ValueError(f"dt must be > 0 seconds, got {dt}")
    return nn.Sequential(*[_from_node(name, graph.nodes[name], dt) for name in _order(graph)])
