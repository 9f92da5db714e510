"""Metrics: accuracy, firing rates, synaptic operations, an energy proxy, parameter counts.

Tensors that carry time are time-first, ``[T, B, ...]`` (spikingjelly's multi-step mode).

Accuracy
    A classifier's output is ``[B, C]`` (logits, rates) or ``[T, B, C]``; a time-first output
    is first summed over time (for spikes: the spike count), then

        accuracy = mean_b [ argmax_c out[b, c] == label[b] ]

    Ties go to the lowest class index (``torch.argmax``).

Firing rate (per layer)
    For a spiking layer with output spikes s[t, b, i] in {0, 1}, over every forward pass seen:

        rate       = sum_{t,b,i} s[t, b, i] / (T * B * N)      spikes per neuron per time step
        rate[t]    = sum_{b,i}   s[t, b, i] / (B * N)          the same, per time step

Activation sparsity (the NeuroBench definition, ``neurobench.metrics.workload.ActivationSparsity``)
    Over every watched spiking layer, time step and sample: the fraction of zero outputs,

        sparsity = 1 - sum_layers sum_{t,b,i} [s != 0] / sum_layers (T * B * N)

    i.e. one minus the neuron-count-weighted mean firing rate (not the mean of the layers' rates).

Synaptic operations (the NeuroBench definition, ``neurobench.metrics.workload.SynapticOperations``)
    For every connection layer (``nn.Linear``, ``nn.Conv1d/2d/3d``, so also spikingjelly's
    ``layer.Linear``/``layer.Conv2d`` and layers inside ``layer.SeqToANNContainer``), each
    forward call contributes, with the input x, its nonzero mask m = [x != 0] and the
    layer's nonzero-weight mask M = [W != 0] (biases are not synaptic operations):

        effective ops = sum over outputs of (M (*) m)       (*) = the layer's own linear map
        dense ops     = sum over outputs of (1 (*) 1)       all weights and inputs taken as one

    i.e. every nonzero input element times the number of nonzero synapses it fans out to;
    for convolutions this is computed exactly by running the convolution on the masks, so
    padding, stride, dilation and groups are accounted for. Effective ops are *ACs* when
    the input is spikes (every value in {-1, 0, 1}, NeuroBench's test, which admits signed
    spikes) and *MACs* otherwise. Counts are summed over time (all steps of a
    ``[T, B, ...]`` input, or all single-step calls) and divided by the number of samples.
    ``dense`` is what hardware without sparsity support would execute.

Energy proxy
    E = E_AC * ACs + E_MAC * MACs, with E_AC = 0.9 pJ (32-bit float add) and
    E_MAC = 4.6 pJ (32-bit float multiply 3.7 pJ + add 0.9 pJ), 45 nm CMOS, from
    M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014.
    Memory access, neuron updates and data movement are not included: it is a proxy.

Detection mAP (COCO, through pycocotools' COCOeval, bbox)
    Boxes are [x, y, w, h] in pixels (top-left corner and size: COCO's and Gen1's convention).
    Per class and IoU threshold t, detections of all images ranked by score are matched greedily
    to unmatched ground truth of IoU >= t; AP is the mean over 101 recall points of the
    precision envelope; classes without ground truth are left out of the mean.

        mAP@50     = mean over classes of AP(t = 0.5)
        mAP@50:95  = mean over classes and t in {0.50, 0.55, ..., 0.95} of AP(t)

    (at most 100 detections per image, all box areas, as COCO's first two summary numbers).

Parameter counts
    Number of elements of the model's (optionally only trainable) parameters, shared
    parameters counted once; a per-layer table lists each module's own parameters.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import pandas as pd
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

E_AC_PJ = 0.9
"""Energy of one accumulate (32-bit float add), pJ, 45 nm CMOS (Horowitz, ISSCC 2014)."""
E_MAC_PJ = 4.6
"""Energy of one multiply-accumulate (32-bit float mult 3.7 pJ + add 0.9 pJ), pJ, 45 nm CMOS
(Horowitz, ISSCC 2014)."""

CONNECTION_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layer types whose synaptic operations are counted (subclasses included)."""


# --------------------------------------------------------------------------- accuracy


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of samples whose highest-scoring class is the label.

    ``output``: ``[B, C]`` scores, or time-first ``[T, B, C]`` (summed over time first).
    ``target``: integer labels ``[B]`` or one-hot / per-class scores ``[B, C]`` (argmax).
    """
    if not isinstance(output, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("accuracy needs torch tensors for output and target")
    if output.dim() == 3:
        output = output.sum(dim=0)
    if output.dim() != 2:
        raise ValueError(
            f"output must be [B, C] or time-first [T, B, C], got shape {tuple(output.shape)}"
        )
    if target.dim() == 2:
        target = target.argmax(dim=1)
    elif target.dim() != 1:
        raise ValueError(f"target must be labels [B] or one-hot [B, C], got shape {tuple(target.shape)}")
    elif target.is_floating_point():
        raise TypeError("target labels must be integers: pass target.long(), or one-hot [B, C]")
    if target.shape[0] != output.shape[0]:
        raise ValueError(
            f"batch sizes differ: output has {output.shape[0]} samples, target {target.shape[0]}"
            " (is the output time-first [T, B, C]?)"
        )
    if target.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return (output.argmax(dim=1) == target.to(output.device)).float().mean().item()


# --------------------------------------------------------------------------- hooks


def _module_names(model: nn.Module) -> dict[nn.Module, str]:
    return {module: name or type(module).__name__ for name, module in model.named_modules()}


def _pick_modules(
    model: nn.Module, types: tuple[type, ...], extra: Iterable[nn.Module] | None
) -> dict[nn.Module, str]:
    """Modules of ``model`` that are instances of ``types``, plus ``extra``, with names."""
    names = _module_names(model)
    picked = {module: name for module, name in names.items() if isinstance(module, types)}
    for index, module in enumerate(extra or ()):
        if not isinstance(module, nn.Module):
            raise TypeError(f"expected nn.Module instances, got {type(module).__name__}")
        picked.setdefault(module, names.get(module, f"{type(module).__name__}[{index}]"))
    return picked


class HookedMonitor:
    """Base class of the monitors: a forward hook on each chosen module while used as a context manager.

    `modules` maps each watched module to its name. After every forward call of a watched module
    inside the `with` block, `record(name, module, args, output)` runs under torch.no_grad();
    a subclass overrides it to count what it needs (FiringRateMonitor, SynapticOperationCounter,
    snnlib.methods.adaptive_surrogate.GradientWindowMonitor). Leaving the block removes the hooks.
    """

    def __init__(self, modules: dict[nn.Module, str]):
        self._modules = modules
        self._handles: list = []

    def __enter__(self):
        self._handles = [
            module.register_forward_hook(self._make_hook(name)) for module, name in self._modules.items()
        ]
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _make_hook(self, name: str):
        def hook(module, args, output):
            with torch.no_grad():
                self.record(name, module, args, output)

        return hook

    def record(self, name, module, args, output):  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- firing rates


class FiringRateMonitor(HookedMonitor):
    """Mean firing rate of every spiking layer while the monitor is active.

    Watches every spikingjelly ``neuron.BaseNode`` and ``neuron.SimpleBaseNode`` (he2020's
    ``HeLIFNode``) in ``model`` plus any module in
    ``modules`` (a module returning a tuple counts its first element as the spikes).
    Outputs are time-first ``[T, B, ...]`` for modules in multi-step mode and for modules
    without a ``step_mode``; a module with ``step_mode == 's'`` outputs ``[B, ...]`` and each
    call counts as one time step (it gets an overall rate but no per-step rates).

    Usage::

        with FiringRateMonitor(model) as monitor:
            for x, y in loader:
                functional.reset_net(model); model(x)
        monitor.table()           # layer, type, neurons, firing_rate
        monitor.per_step_table()  # layer, step, firing_rate
    """

    def __init__(self, model: nn.Module, modules: Iterable[nn.Module] | None = None):
        super().__init__(_pick_modules(model, (neuron.BaseNode, neuron.SimpleBaseNode), modules))
        self._types = {name: type(module).__name__ for module, name in self._modules.items()}
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self._spikes: dict[str, float] = defaultdict(float)
        self._nonzero: dict[str, int] = defaultdict(int)
        self._slots: dict[str, int] = defaultdict(int)
        self._neurons: dict[str, int] = {}
        self._step_spikes: dict[str, torch.Tensor] = {}
        self._step_slots: dict[str, torch.Tensor] = {}

    def record(self, name, module, args, output):
        spikes = output[0] if isinstance(output, (tuple, list)) else output
        spikes = spikes.detach().double()
        single_step = getattr(module, "step_mode", "m") == "s"
        lead = 1 if single_step else 2
        if spikes.dim() < lead:
            raise ValueError(
                f"layer {name!r} produced a tensor of shape {tuple(spikes.shape)}; expected "
                "[T, B, ...] (multi-step) or [B, ...] (step_mode='s')"
            )
        self._neurons[name] = spikes[(0,) * lead].numel()
        self._spikes[name] += spikes.sum().item()
        self._nonzero[name] += int(torch.count_nonzero(spikes))
        self._slots[name] += spikes.numel()
        if not single_step:
            self._add_per_step(name, spikes.flatten(1))

    def _add_per_step(self, name: str, spikes: torch.Tensor) -> None:
        steps = spikes.shape[0]
        sums = self._step_spikes.get(name, torch.zeros(0, dtype=torch.float64))
        slots = self._step_slots.get(name, torch.zeros(0, dtype=torch.float64))
        if sums.numel() < steps:
            sums = torch.cat([sums, sums.new_zeros(steps - sums.numel())])
            slots = torch.cat([slots, slots.new_zeros(steps - slots.numel())])
        sums[:steps] += spikes.sum(dim=1).cpu()
        slots[:steps] += spikes.shape[1]
        self._step_spikes[name], self._step_slots[name] = sums, slots

    def table(self) -> pd.DataFrame:
        """One row per watched layer that ran: layer, type, neurons, firing_rate."""
        rows = [
            {
                "layer": name,
                "type": self._types[name],
                "neurons": self._neurons[name],
                "firing_rate": self._spikes[name] / self._slots[name],
            }
            for name in self._spikes
        ]
        return pd.DataFrame(rows, columns=["layer", "type", "neurons", "firing_rate"])

    def sparsity(self) -> float:
        """NeuroBench's activation sparsity over every layer seen: zero outputs / all outputs."""
        if not self._slots:
            raise ValueError("no spiking layer ran inside the monitor; run the model within the 'with' block")
        return 1.0 - sum(self._nonzero.values()) / sum(self._slots.values())

    def per_step_table(self) -> pd.DataFrame:
        """Long table of per-time-step rates: layer, step (0-based), firing_rate."""
        rows = []
        for name, sums in self._step_spikes.items():
            rates = sums / self._step_slots[name]
            rows += [{"layer": name, "step": step, "firing_rate": rate} for step, rate in enumerate(rates.tolist())]
        return pd.DataFrame(rows, columns=["layer", "step", "firing_rate"])


def firing_rates(
    model: nn.Module, x: torch.Tensor, modules: Iterable[nn.Module] | None = None, per_step: bool = False
) -> pd.DataFrame:
    """Reset ``model``, run it once on ``x`` (time-first ``[T, B, ...]``) without gradients,
    and return :meth:`FiringRateMonitor.table` (or ``per_step_table`` if ``per_step``)."""
    with FiringRateMonitor(model, modules) as monitor, torch.no_grad():
        functional.reset_net(model)
        model(x)
    return monitor.per_step_table() if per_step else monitor.table()


def activation_sparsity(model: nn.Module, x: torch.Tensor, modules: Iterable[nn.Module] | None = None) -> float:
    """Reset ``model``, run it once on ``x`` (``[T, B, ...]``) and return NeuroBench's activation sparsity."""
    with FiringRateMonitor(model, modules) as monitor, torch.no_grad():
        functional.reset_net(model)
        model(x)
    return monitor.sparsity()


# --------------------------------------------------------------------------- synaptic operations


def is_spike_tensor(x: torch.Tensor) -> bool:
    """NeuroBench's test for spiking input: every value is -1, 0 or 1."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _linear_ops(layer: nn.Linear, x: torch.Tensor) -> tuple[int, int]:
    """(effective, dense) operations of a linear layer on ``x`` of shape ``[..., in]``."""
    rows = x.reshape(-1, layer.in_features)
    active_per_input = (rows != 0).sum(dim=0)
    fan_out = (layer.weight != 0).sum(dim=0)
    effective = int((active_per_input * fan_out).sum())
    dense = rows.shape[0] * layer.weight.numel()
    return effective, dense


def _conv_ops(layer: nn.modules.conv._ConvNd, x: torch.Tensor) -> tuple[int, int]:
    """(effective, dense) operations of a convolution, by convolving the masks.

    Leading dimensions beyond ``[N, C, *spatial]`` (e.g. time) are flattened into N.
    ``_conv_forward`` is the layer's own convolution with explicit weight and bias, so its
    padding mode is honoured.
    """
    spatial = len(layer.kernel_size)
    x = x.reshape(-1, *x.shape[-(spatial + 1):])
    weight_mask = (layer.weight != 0).to(torch.float32)
    input_mask = (x != 0).to(torch.float32)
    effective = layer._conv_forward(input_mask, weight_mask, None).sum(dtype=torch.float64)
    dense = layer._conv_forward(torch.ones_like(input_mask), torch.ones_like(weight_mask), None)
    return int(effective), int(dense.sum(dtype=torch.float64))


class SynapticOperationCounter(HookedMonitor):
    """Counts NeuroBench synaptic operations of every connection layer while active.

    ``layers``: the layers to count (default: every instance of :data:`CONNECTION_LAYERS` in
    ``model``). Run the model inside the ``with`` block, then ask for per-sample numbers
    with ``n_samples`` = the number of samples that went through (the batch size, not
    T x batch)::

        with SynapticOperationCounter(model) as ops:
            functional.reset_net(model); model(x)     # x: [T, B, ...]
        ops.table(n_samples=x.shape[1])
    """

    def __init__(self, model: nn.Module, layers: Iterable[nn.Module] | None = None):
        if layers is None:
            modules = _pick_modules(model, CONNECTION_LAYERS, None)
        else:
            layers = list(layers)
            for layer in layers:
                if not isinstance(layer, CONNECTION_LAYERS):
                    raise TypeError(
                        f"cannot count synaptic operations of {type(layer).__name__}: supported are "
                        "nn.Linear and nn.Conv1d/2d/3d (and their subclasses)"
                    )
            names = _module_names(model)
            modules = {layer: names.get(layer, f"{type(layer).__name__}[{i}]") for i, layer in enumerate(layers)}
        super().__init__(modules)
        self._types = {name: type(module).__name__ for module, name in modules.items()}
        self.reset()

    def reset(self) -> None:
        """Forget everything counted so far."""
        self._counts: dict[str, dict[str, int]] = {}

    def record(self, name, module, args, output):
        x = args[0]
        counter = _linear_ops if isinstance(module, nn.Linear) else _conv_ops
        effective, dense = counter(module, x)
        counts = self._counts.setdefault(name, {"effective_acs": 0, "effective_macs": 0, "dense": 0})
        counts["effective_acs" if is_spike_tensor(x) else "effective_macs"] += effective
        counts["dense"] += dense

    def table(self, n_samples: int) -> pd.DataFrame:
        """Per-sample counts, one row per layer that ran: layer, type, effective_acs,
        effective_macs, dense (effective = nonzero inputs x nonzero synapses)."""
        if not isinstance(n_samples, int) or n_samples <= 0:
            raise ValueError(f"n_samples must be a positive int (samples run), got {n_samples!r}")
        rows = [
            {"layer": name, "type": self._types[name], **{k: v / n_samples for k, v in counts.items()}}
            for name, counts in self._counts.items()
        ]
        return pd.DataFrame(rows, columns=["layer", "type", "effective_acs", "effective_macs", "dense"])

    def totals(self, n_samples: int) -> dict[str, float]:
        """Per-sample totals over all layers: effective_acs, effective_macs, dense."""
        table = self.table(n_samples)
        return {key: float(table[key].sum()) for key in ("effective_acs", "effective_macs", "dense")}


def synaptic_operations(
    model: nn.Module, x: torch.Tensor, *, batch_axis: int = 1, layers: Iterable[nn.Module] | None = None
) -> pd.DataFrame:
    """Reset ``model``, run it once on ``x`` without gradients and return the per-sample
    table of :class:`SynapticOperationCounter`. ``batch_axis`` is 1 for time-first
    ``[T, B, ...]`` input, 0 for input without a time axis."""
    if not -x.dim() <= batch_axis < x.dim():
        raise ValueError(f"batch_axis {batch_axis} is out of range for input of shape {tuple(x.shape)}")
    with SynapticOperationCounter(model, layers) as counter, torch.no_grad():
        functional.reset_net(model)
        model(x)
    return counter.table(n_samples=x.shape[batch_axis])


def energy_proxy(acs: float, macs: float, *, e_ac: float = E_AC_PJ, e_mac: float = E_MAC_PJ) -> float:
    """Energy estimate in pJ: ``e_ac * acs + e_mac * macs`` (defaults: Horowitz 2014, 45 nm,
    32-bit float; see the module docstring). Pass effective ACs and MACs per sample for
    the energy per sample."""
    for label, value in (("acs", acs), ("macs", macs), ("e_ac", e_ac), ("e_mac", e_mac)):
        if value < 0:
            raise ValueError(f"{label} must be non-negative, got {value}")
    return e_ac * acs + e_mac * macs


# --------------------------------------------------------------------------- parameters


def _counted(parameter: nn.Parameter, trainable_only: bool) -> bool:
    return parameter.requires_grad or not trainable_only


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter elements (shared parameters once); only those with
    ``requires_grad`` if ``trainable_only``."""
    return sum(p.numel() for p in model.parameters() if _counted(p, trainable_only))


def parameter_table(model: nn.Module, trainable_only: bool = True) -> pd.DataFrame:
    """One row per module owning parameters directly: layer, type, parameters. A shared
    parameter is listed under the first module that owns it, so the column sums to
    :func:`count_parameters`."""
    seen: set[int] = set()
    rows = []
    for name, module in model.named_modules():
        own = 0
        for parameter in module.parameters(recurse=False):
            if id(parameter) in seen or not _counted(parameter, trainable_only):
                continue
            seen.add(id(parameter))
            own += parameter.numel()
        if own:
            rows.append({"layer": name or type(module).__name__, "type": type(module).__name__, "parameters": own})
    return pd.DataFrame(rows, columns=["layer", "type", "parameters"])


__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "CONNECTION_LAYERS",
    "accuracy",
    "FiringRateMonitor",
    "HookedMonitor",
    "firing_rates",
    "is_spike_tensor",
    "SynapticOperationCounter",
    "synaptic_operations",
    "energy_proxy",
    "count_parameters",
    "parameter_table",
]


# --------------------------------------------------------------------------- detection mAP


def _coco_images(boxes, labels, scores=None):
    """Checked per-image lists of numpy arrays: boxes [N, 4], labels [N], scores [N]."""
    import numpy as np

    out = []
    for i, (b, c) in enumerate(zip(boxes, labels, strict=True)):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        c = np.asarray(c).reshape(-1).astype(int)
        s = None if scores is None else np.asarray(scores[i], dtype=np.float64).reshape(-1)
        if len(c) != len(b) or (s is not None and len(s) != len(b)):
            raise ValueError(f"image {i}: {len(b)} boxes but {len(c)} labels"
                             + ("" if s is None else f" and {len(s)} scores") + "; give one per box")
        if (b[:, 2:] < 0).any():
            raise ValueError(f"image {i}: negative box width/height; boxes are [x, y, w, h], not corners")
        out.append((b, c, s))
    return out


def coco_map(pred_boxes, pred_scores, pred_labels, true_boxes, true_labels) -> dict:
    """COCO mAP@50 and mAP@50:95 of detections against ground truth, one list entry per image.

    Boxes [N, 4] as [x, y, w, h]; labels int class ids; scores the detections' confidences.
    Returns {"map_50": float, "map_50_95": float} (NaN when there is no ground truth at all, 0.0
    when there are no detections).
    """
    import contextlib
    import io

    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not (len(pred_boxes) == len(pred_scores) == len(pred_labels) == len(true_boxes) == len(true_labels)):
        raise ValueError("give one entry per image in each of pred_boxes, pred_scores, pred_labels, true_boxes, "
                         "true_labels")
    truth = _coco_images(true_boxes, true_labels)
    preds = _coco_images(pred_boxes, pred_labels, pred_scores)
    if not any(len(c) for _, c, _ in truth):
        return {"map_50": float("nan"), "map_50_95": float("nan")}
    if not any(len(c) for _, c, _ in preds):
        return {"map_50": 0.0, "map_50_95": 0.0}
    classes = sorted({int(k) for _, c, _ in truth + preds for k in c})
    gt = COCO()
    gt.dataset = {
        "images": [{"id": i} for i in range(len(truth))],
        "categories": [{"id": k} for k in classes],
        "annotations": [{"id": n + 1, "image_id": i, "category_id": int(k), "bbox": [float(v) for v in box],
                         "area": float(box[2] * box[3]), "iscrowd": 0}
                        for n, (i, box, k) in enumerate((i, box, k) for i, (b, c, _) in enumerate(truth)
                                                        for box, k in zip(b, c))],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i, "category_id": int(k), "bbox": [float(v) for v in box], "score": float(s)}
                         for i, (b, c, sc) in enumerate(preds) for box, k, s in zip(b, c, sc)])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=float)
    return {"map_50": max(float(stats[1]), 0.0), "map_50_95": max(float(stats[0]), 0.0)}
