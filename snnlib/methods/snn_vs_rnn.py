"""He et al. 2020: SNNs, vanilla RNNs and LSTMs under one BPTT recipe, and their sizes.

Paper: W. He, Y. Wu, L. Deng, G. Li, H. Wang, Y. Tian, W. Ding, W. Wang, Y. Xie, "Comparing SNNs
and RNNs on neuromorphic vision datasets: similarities and differences", Neural Networks 132 (2020)
108-120, arXiv 2005.02183. Authors' code: github.com/hewh16/SNNs-RNNs (N-MNIST/nmnist_snn.py,
nmnist_rnn.py; dvsGesture/snn_gesture.py, rnn_gesture.py, lstm_gesture.py, convRNN*.py, convLstm*.py;
scnn_gesture.py). Every model is trained with BPTT and an MSE loss to one-hot labels.

Shapes. Inputs are time-first frames `[T, B, *in_shape]`, normally `[T, B, C, H, W]`; the MLPs
flatten each frame in C, H, W order. Every model returns one row per time step, `[T, B, classes]`:
the SNNs their output-layer spikes, the RNNs their readout. `readout(outputs, "mean" | "last")`
turns it into `[B, classes]`; predictions are its argmax (for an SNN: the largest spike count), with
ties broken uniformly at random, and `readout_accuracy` is the accuracy in expectation over the
tie-breaks (a sample tied between k classes, its label among them, counts 1/k).

SNN neuron (`HeLIFNode`, the authors' explicit loop), with input current x[t] = W s_in[t] + b:

    u[t] = decay * u[t-1] * (1 - o[t-1]) + x[t]          u[-1] = 0, o[-1] = 0
    o[t] = 1 if u[t] > V_th else 0                       strict '>', as in the authors' code
    do/du ~ 1/(2 lens) * 1{|u[t] - V_th| < lens}         rectangular surrogate
    decay = 0.3, V_th = 0.3, lens = 0.25 (SCNN: lens = 0.5)

The hard reset is folded into the leak and stays in the autograd graph (the gradient also flows
through (1 - o[t-1])). It is spikingjelly's charge / fire / hard reset with V_reset = 0 and
detach_reset=False, H[t] = decay * V[t-1] + x[t], S[t] = (H[t] > V_th), V[t] = H[t] (1 - S[t]),
with u = H: then V[t-1] = u[t-1] (1 - o[t-1]), forward and backward. In multi-step mode the
neuron runs fused (`snnlib.neurons.fused_decay_lif`: one autograd Function for all T steps, numba
kernels on CPU; spikes and u bit-identical to the per-step loop, gradients equal to rounding).
SNN output and loss: r = (1/T) sum_t o_out[t];  L = MSE(r, one_hot(y));  prediction argmax r
(ties at random; see "departures").

RNN and LSTM (torch `nn.RNN` with tanh, `nn.LSTM`), per layer l, readout z[t] = W_o h_L[t] + b_o:

    RNN:   h[t] = tanh(W_ih x[t] + b_ih + W_hh h[t-1] + b_hh)
    LSTM:  i, f, g, o = sig(.), sig(.), tanh(.), sig(.) of W_ih x[t] + b_ih + W_hh h[t-1] + b_hh
           c[t] = f c[t-1] + i g;  h[t] = o tanh(c[t])
    mainstream loss (the released code):        L = MSE(z[T-1], one_hot(y))               "last"
    rate-coding-inspired loss (the paper):      L = MSE((1/T) sum_t z[t], one_hot(y))     "mean"

Convolutional RNN and LSTM cells (convRNN.py, convLstm.py); `*` is a k x k convolution, stride 1,
padding k // 2, over the channel concatenation [x, h]; h and c start at 0:

    conv RNN:   h[t] = tanh(W * [x[t], h[t-1]] + b)
    conv LSTM:  i, f, o, g = channel split of W * [x[t], h[t-1]] + b  (4 h channels, in this order)
                c[t] = sig(f) c[t-1] + sig(i) tanh(g);  h[t] = sig(o) tanh(c[t])

Architectures (from the authors' code; the paper configurations are `paper_model(kind, dataset)`):

    snn_mlp    flatten -> [Linear -> LIF] per hidden size -> Linear(classes) -> LIF
               N-MNIST 2312-512-10, Gesture 2048-512-11. The N-MNIST script also declares
               cfg_fc = [512, 512, 10] and a `lateral1` layer, but its forward pass uses neither.
    scnn       conv0-LIF-drop, conv1-LIF, pool-LIF-drop, conv2-LIF, pool-LIF-drop, fc1-LIF-drop, fc2-LIF:
               3x3 convs 2 -> 64 -> 128 -> 128 on 32x32, each 2x2 average pool integrated by its own
               LIF, FC 8*8*128 -> 256 -> 11, dropout 0.5, lens 0.5.
    rnn, lstm  flatten -> nn.RNN / nn.LSTM (hidden 512, 2 layers) -> Linear(classes) at every step.
    conv_rnn,  cell conv1 (2 -> 64) at 32x32; conv2 (64 -> 128) at 32x32, its output average-pooled
    conv_lstm  2x2; conv3 (128 -> 128) at 16x16, output pooled; flatten; fc1 (8192 -> 256) and
               fc2 (256 -> 11) with no nonlinearity between them, as in the code. No dropout.
    For any `channels`: the first convolution runs at full resolution and every later one is
    followed by a 2x2 average pool, so the last feature map is (H / 2^(n-1)) x (W / 2^(n-1)).

Where this module departs from the authors' code, and why:
  * Their MLP RNN/LSTM scripts feed (batch, T, features) to nn.RNN/nn.LSTM built with the default
    batch_first=False, so the recurrence runs over the batch axis. This bug is not reproduced: here
    inputs are time-first and the recurrence runs over time, as the paper intends.
  * Their conv RNN cell computes 4 * hidden output channels and uses only the last quarter (tanh of
    the "g" slice); the other three quarters get no gradient. Here the cell computes hidden channels;
    their weight maps to ours as weight[3h:4h], bias[3h:4h]. Their conv RNN therefore has the conv
    LSTM's parameter count (4,317,963 for Gesture); ours has 2,654,667.
  * Their SCNN applies F.dropout (on even at test time) to spike tensors that it also feeds back into
    the next step's reset, so a kept spike (scaled by 2) gives (1 - o) = -1. Here dropout
    (nn.Dropout, a fresh mask per step, off in eval mode) acts only on what goes to the next layer;
    every neuron resets with its own spikes.
  * Ties. Their code predicts with torch's argmax (max(1)[1]), which gives a tie to the lowest
    class; an SNN's spike counts tie often at small T (a silent output layer ties all classes), so
    coarse temporal resolutions would be scored by how often class 0 is the label. Here ties are
    broken uniformly at random (`predict`) and accuracy is its expectation (`readout_accuracy`), so a
    tie scores chance among the tied classes whatever their order. `tie_fraction` reports how often.
  * Their conv RNN/LSTM read out only the last step; here the readout is evaluated at every step so
    that both losses apply to every model.
  * The rate-coding-inspired loss, MSE of the time-averaged readout, is an interpretation: the
    paper's formula could not be read (only its abstract and first part were accessible); the
    released code has the mean-over-time readout commented out beside the last-step one.
  * The neuron is a spikingjelly `SimpleBaseNode` rather than `LIFNode`: LIFNode charges
    V - V / tau + X, which with tau = 1 / 0.7 differs from 0.3 V + X in the last float32 bit and can
    flip a spike that lands on the threshold. HeLIFNode computes decay * V + X and fires with
    `Rectangle(width=2 * lens, strict=True)`, so its spikes equal the authors' loop bit for bit.
  * Submodule names follow the authors' scripts (fc1, fc2; conv0..conv2; rnn or lstm, readout;
    conv1..conv3 with .conv inside), so their checkpoints load after `convert_authors_state_dict`.
    Their N-MNIST frames come in the layout of their .mat files; their Gesture frames are
    [T, B, C, H, W] as here.

Input frames. `coarsen_time(frames, n)` merges T equal time bins into n (same duration, coarser
bins: the paper's temporal-resolution sweep); `pool_frames(frames, factor, crop)` sums factor x factor
pixel blocks (the authors downsample Gesture's 128 x 128 sensor to 32 x 32 this way).

Counts (closed forms; LIF neurons have no parameters):

    parameters   Linear (an SNN layer)   in*h + h
                 RNN layer               in*h + h*h + 2h      (torch keeps two biases, b_ih and b_hh)
                 LSTM layer              4 (in*h + h*h + 2h)
                 conv k x k              k*k*c_in*c_out + c_out
                 conv RNN / LSTM cell    k*k*(c_in + h)*h + h  /  4 (k*k*(c_in + h)*h + h)
    dense synaptic operations per sample and time step (no bias adds, activations, gate products,
    neuron updates or pooling):
                 Linear in*out;  RNN layer in*h + h*h;  LSTM layer 4 (in*h + h*h)
                 conv on H x W with padding p = k // 2:  c_in c_out (k H - p(p+1)) (k W - p(p+1))
                 (taps that fall on the zero padding are not counted)
    RNN/LSTM: MACs = T * sum of the recurrent layers + the readout once (the readout is affine, so
              (1/T) sum_t W h[t] + b = W ((1/T) sum_t h[t]) + b: one evaluation serves either loss).
    SNN:      ACs = T * sum_l rate_l * dense_l, with rate_l the fraction of layer l's input elements
              that are nonzero (`input_rates`): one accumulate per nonzero input and synapse it fans
              out to. Exact for Linear layers; for convolutions it assumes the spikes spread evenly
              over positions (border positions fan out to fewer outputs). The first layer receives
              the data frames: unless they are binary (binary_input=True), its operations are MACs.
"""

import math
import numbers
from dataclasses import dataclass
from functools import partial
from typing import Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based.neuron import SimpleBaseNode
from torch import nn

from snnlib.checks import flag, positive_int, real
from snnlib import neurons
from snnlib.surrogate import Rectangle

__all__ = [
    "LOSSES",
    "MODEL_KINDS",
    "PAPER_CONFIGS",
    "PAPER_DATASETS",
    "PAPER_INPUTS",
    "PAPER_TIME_STEPS",
    "READOUTS",
    "ConvLSTMCell",
    "ConvRNNCell",
    "ConvRecurrentNet",
    "HeLIFNode",
    "RecurrentMLP",
    "SpikingCNN",
    "SpikingMLP",
    "SynapticLayer",
    "complexity_table",
    "conv_ops",
    "conv_parameters",
    "coarsen_time",
    "convert_authors_state_dict",
    "input_rates",
    "is_spiking",
    "linear_parameters",
    "lstm_layer_parameters",
    "make_model",
    "mse_last_step_loss",
    "mse_rate_loss",
    "operation_counts",
    "paper_model",
    "pool_frames",
    "predict",
    "readout",
    "readout_accuracy",
    "rnn_layer_parameters",
    "tie_fraction",
]


# --------------------------------------------------------------------------- argument checks


def _sizes(name: str, values, allow_empty: bool = False) -> tuple[int, ...]:
    """`values` as a tuple of positive ints, e.g. hidden sizes (512,) or an input shape (2, 32, 32)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a tuple of positive ints such as (512,), got {values!r}")
    sizes = tuple(positive_int(f"every entry of {name}", v) for v in values)
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    return sizes


def _check_frames(x, in_shape: tuple[int, ...]) -> None:
    if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
        raise TypeError(f"expected a floating-point tensor [T, B, *{in_shape}], got {type(x).__name__}")
    if tuple(x.shape[2:]) != in_shape:
        raise ValueError(
            f"expected time-first frames [T, B, *{in_shape}], got shape {tuple(x.shape)}; "
            "move time to the front (x.movedim(1, 0) for [B, T, ...] batches) or build the model with this in_shape"
        )


def _odd_kernel(kernel_size) -> int:
    if positive_int("kernel_size", kernel_size) % 2 == 0:
        raise ValueError(f"kernel_size must be odd so that padding k // 2 keeps the size, got {kernel_size}")
    return int(kernel_size)


def _conv_geometry(in_shape, channels, kernel_size) -> tuple[tuple[int, int, int], tuple[int, ...], int]:
    """Checked (C, H, W), channels and kernel size of a conv stack whose later layers are each 2x2-pooled."""
    in_shape = _sizes("in_shape", in_shape)
    if len(in_shape) != 3:
        raise ValueError(f"convolutional models need in_shape = (C, H, W), got {in_shape}")
    channels = _sizes("channels", channels)
    kernel_size = _odd_kernel(kernel_size)
    factor = 2 ** (len(channels) - 1)
    if in_shape[1] % factor or in_shape[2] % factor:
        raise ValueError(
            f"with {len(channels)} conv layers the frame is pooled {len(channels) - 1} times, so H and W must be "
            f"divisible by {factor}; got in_shape {in_shape}"
        )
    return in_shape, channels, kernel_size


def _resolution(in_shape: tuple[int, int, int], index: int) -> tuple[int, int]:
    """(H, W) seen by conv layer `index` (0-based): full size for the first two, then halved per pool.

    With index = the number of conv layers it is the size of the last, pooled feature map.
    """
    factor = 2 ** max(index - 1, 0)
    return in_shape[1] // factor, in_shape[2] // factor


# --------------------------------------------------------------------------- closed forms


def linear_parameters(n_in: int, n_out: int) -> int:
    """Parameters of nn.Linear(n_in, n_out) with bias: n_in*n_out + n_out (an SNN layer: the LIF adds none)."""
    return n_in * n_out + n_out


def rnn_layer_parameters(n_in: int, hidden: int) -> int:
    """Parameters of one nn.RNN layer: n_in*h + h*h + 2h (two bias vectors, b_ih and b_hh)."""
    return n_in * hidden + hidden * hidden + 2 * hidden


def lstm_layer_parameters(n_in: int, hidden: int) -> int:
    """Parameters of one nn.LSTM layer: 4 (n_in*h + h*h + 2h), one RNN layer per gate."""
    return 4 * rnn_layer_parameters(n_in, hidden)


def conv_parameters(c_in: int, c_out: int, kernel_size: int) -> int:
    """Parameters of nn.Conv2d(c_in, c_out, k) with bias: k*k*c_in*c_out + c_out."""
    return kernel_size * kernel_size * c_in * c_out + c_out


def conv_ops(c_in: int, c_out: int, kernel_size: int, height: int, width: int) -> int:
    """Multiply-accumulates of a stride-1 conv with padding k // 2 on an H x W input, padding taps excluded.

    Along one axis of length n an output position sees the k taps minus those on the padding; summed
    over positions that is k n - p (p + 1) with p = k // 2. The 2-D count is the product of the two.
    """
    p = kernel_size // 2
    taps = (kernel_size * height - p * (p + 1)) * (kernel_size * width - p * (p + 1))
    return c_in * c_out * taps


@dataclass(frozen=True)
class SynapticLayer:
    """One weight layer of a model, with closed-form sizes.

    name: the submodule path for SNN layers (used by `input_rates`), a label for recurrent layers;
    parameters: its parameter count; ops_per_step: dense synaptic operations per sample and time step;
    once: True for an RNN readout, evaluated once per sample (see the module docstring).
    """

    name: str
    parameters: int
    ops_per_step: int
    once: bool = False


# --------------------------------------------------------------------------- the SNN


class HeLIFNode(SimpleBaseNode):
    """The authors' LIF neuron: u[t] = decay u[t-1] (1 - o[t-1]) + x[t],  o[t] = (u[t] > v_threshold).

    A spikingjelly `SimpleBaseNode`: charge H = decay * V + X, fire with
    `Rectangle(width=2 * lens, strict=True)` (gradient 1/(2 lens) on |u - v_threshold| < lens), hard
    reset V = H (1 - S) kept in the graph. Input `[T, B, ...]` (step_mode='m', the default) or
    `[B, ...]` ('s'); output spikes of the same shape. `u` is the last step's membrane before the
    reset (the authors' `mem`); with store_u_seq=True a multi-step call keeps every step's in `u_seq`,
    `[T, B, ...]`. Reset between samples with `spikingjelly.activation_based.functional.reset_net`.
    Multi-step calls run fused (`snnlib.neurons.fused_decay_lif`: all T steps in one autograd
    Function, same spikes and u bit for bit, gradients equal to rounding); single-step calls, and
    surrogates for which `snnlib.neurons.fused_enabled` is False, step through the per-step code.
    """

    def __init__(
        self,
        decay: float = 0.3,
        v_threshold: float = 0.3,
        lens: float = 0.25,
        step_mode: str = "m",
        store_u_seq: bool = False,
    ):
        flag("store_u_seq", store_u_seq)
        real("lens (the half-width of the surrogate window)", lens, 0.0, open_low=True)
        super().__init__(
            v_threshold=real("v_threshold", v_threshold),
            v_reset=0.0,
            surrogate_function=Rectangle(width=2 * float(lens), strict=True),
            detach_reset=False,
        )
        self.step_mode = step_mode
        self.decay = real("decay", decay, 0.0, 1.0)
        self.store_u_seq = store_u_seq
        self.register_memory("u", None)
        self.register_memory("u_seq", None)

    @property
    def lens(self) -> float:
        """Half-width of the rectangular surrogate window."""
        return self.surrogate_function.width / 2

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v * self.decay + x

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_state(x.shape)
        self.neuronal_charge(x)
        self.u = self.v
        spike = self.neuronal_fire()
        self.neuronal_reset(spike)
        return spike

    def _check_state(self, shape: torch.Size) -> None:
        """The stored membrane, if any, must have the shape of one input step [B, ...]."""
        if isinstance(self.v, torch.Tensor) and self.v.shape != shape:
            raise ValueError(
                f"input shape {tuple(shape)} differs from the stored membrane {tuple(self.v.shape)}; "
                "call spikingjelly.activation_based.functional.reset_net(model) between batches"
            )

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if not isinstance(x_seq, torch.Tensor) or x_seq.dim() < 2:
            raise ValueError(f"expected time-first input [T, B, ...], got {getattr(x_seq, 'shape', x_seq)!r}")
        if not self._fusable():
            return self._per_step_forward(x_seq)
        self._check_state(x_seq.shape[1:])
        v = self.v if isinstance(self.v, torch.Tensor) else x_seq.new_full(x_seq.shape[1:], self.v)
        spikes, self.v, h = neurons.fused_decay_lif(
            x_seq, v, self.decay, self.v_threshold, self.surrogate_function, keep_h_seq=self.store_u_seq
        )
        self.u = h[-1].clone()  # not a view: functional.detach_net detaches memories in place
        if self.store_u_seq:
            self.u_seq = h
        return spikes

    def _fusable(self) -> bool:
        """Whether the fused path computes this neuron: a spiking snnlib surrogate, hard reset to 0 in the graph."""
        surrogate = self.surrogate_function
        return (
            neurons.fused_enabled(surrogate) and surrogate.spiking and self.v_reset == 0.0 and not self.detach_reset
        )

    def _per_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The multi-step forward as a loop of single steps (the path for surrogates the fused code cannot run)."""
        spikes, membranes = [], []
        for x in x_seq:  # iterating unbinds: indexing x_seq[t] would make the backward O(T^2)
            spikes.append(self.single_step_forward(x))
            if self.store_u_seq:
                membranes.append(self.u)
        if self.store_u_seq:
            self.u_seq = torch.stack(membranes)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, v_threshold={self.v_threshold}, lens={self.lens}, step_mode={self.step_mode}"


class _SpikingStack(nn.Module):
    """Base of the SNNs: its submodules, registered in order by `_build`, applied one after another."""

    def _build(self, in_shape: tuple[int, ...], modules: list[tuple[str, nn.Module]]) -> None:
        self.in_shape = in_shape
        for name, module in modules:
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x, self.in_shape)
        for module in self.children():
            x = module(x)
        return x


class SpikingMLP(_SpikingStack):
    """SNN-MLP: flatten -> [Linear -> HeLIF] per hidden size -> Linear(classes) -> HeLIF.

    Input `[T, B, *in_shape]`; output spikes `[T, B, classes]`. Submodules fc1, fc2, ... as the authors'.
    Paper: in_shape (2, 34, 34), hidden (512,), 10 classes (N-MNIST); (2, 32, 32), (512,), 11 (Gesture).
    """

    def __init__(self, in_shape=(2, 34, 34), hidden=(512,), classes: int = 10, decay: float = 0.3,
                 v_threshold: float = 0.3, lens: float = 0.25):
        super().__init__()
        in_shape = _sizes("in_shape", in_shape)
        sizes = [math.prod(in_shape), *_sizes("hidden", hidden, allow_empty=True), positive_int("classes", classes)]
        modules = [("flatten", nn.Flatten(start_dim=2))]
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            modules += [(f"fc{i}", nn.Linear(n_in, n_out)), (f"lif{i}", HeLIFNode(decay, v_threshold, lens))]
        self._build(in_shape, modules)

    def synaptic_layers(self) -> list[SynapticLayer]:
        """The Linear layers in order, with closed-form parameters and dense operations per step."""
        return [
            SynapticLayer(name, linear_parameters(m.in_features, m.out_features), m.in_features * m.out_features)
            for name, m in self.named_children()
            if isinstance(m, nn.Linear)
        ]


class SpikingCNN(_SpikingStack):
    """Spiking CNN (the authors' SCNN): conv-LIF layers, LIF-integrated 2x2 average pools, FC-LIF layers.

    Layout for channels (c0, c1, ..., cn): conv0-LIF-drop, then per later conv i: conv_i-LIF,
    pool_i-LIF-drop; flatten; per hidden size: fc-LIF-drop; fc(classes)-LIF. Convolutions are
    kernel_size x kernel_size, stride 1, padding kernel_size // 2. Input `[T, B, C, H, W]`; output
    spikes `[T, B, classes]`. Paper (Gesture): in_shape (2, 32, 32), channels (64, 128, 128),
    hidden (256,), 11 classes, dropout 0.5, lens 0.5.
    """

    def __init__(self, in_shape=(2, 32, 32), channels=(64, 128, 128), hidden=(256,), classes: int = 11,
                 kernel_size: int = 3, dropout: float = 0.5, decay: float = 0.3, v_threshold: float = 0.3,
                 lens: float = 0.5):
        super().__init__()
        in_shape, channels, kernel_size = _conv_geometry(in_shape, channels, kernel_size)
        dropout = real("dropout", dropout, 0.0, 1.0, open_high=True)
        lif = partial(HeLIFNode, decay, v_threshold, lens)
        modules, c_in = [], in_shape[0]
        for i, c_out in enumerate(channels):
            conv = layer.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, step_mode="m")
            modules += [(f"conv{i}", conv), (f"conv{i}_lif", lif())]
            if i == 0:
                modules.append(("conv0_drop", nn.Dropout(dropout)))
            else:
                pool = layer.AvgPool2d(2, step_mode="m")
                modules += [(f"pool{i}", pool), (f"pool{i}_lif", lif()), (f"pool{i}_drop", nn.Dropout(dropout))]
            c_in = c_out
        height, width = _resolution(in_shape, len(channels))
        sizes = [c_in * height * width, *_sizes("hidden", hidden, allow_empty=True), positive_int("classes", classes)]
        modules.append(("flatten", nn.Flatten(start_dim=2)))
        for j, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            modules += [(f"fc{j}", nn.Linear(n_in, n_out)), (f"fc{j}_lif", lif())]
            if j < len(sizes) - 1:
                modules.append((f"fc{j}_drop", nn.Dropout(dropout)))
        self._build(in_shape, modules)

    def synaptic_layers(self) -> list[SynapticLayer]:
        """The conv and Linear layers in order, with closed-form parameters and dense operations per step."""
        layers, conv_index = [], 0
        for name, m in self.named_children():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0]
                ops = conv_ops(m.in_channels, m.out_channels, k, *_resolution(self.in_shape, conv_index))
                layers.append(SynapticLayer(name, conv_parameters(m.in_channels, m.out_channels, k), ops))
                conv_index += 1
            elif isinstance(m, nn.Linear):
                params = linear_parameters(m.in_features, m.out_features)
                layers.append(SynapticLayer(name, params, m.in_features * m.out_features))
        return layers


# --------------------------------------------------------------------------- the RNNs


_RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM}


def _cell_kind(cell) -> str:
    if cell not in _RECURRENT:
        raise ValueError(f"cell must be 'rnn' (vanilla, tanh) or 'lstm', got {cell!r}")
    return cell


class RecurrentMLP(nn.Module):
    """Vanilla RNN or LSTM MLP: flatten -> nn.RNN / nn.LSTM (time-first) -> Linear(classes) at every step.

    Input `[T, B, *in_shape]`; output the readout `[T, B, classes]`. The recurrent module is the
    submodule `rnn` or `lstm` (as in the authors' scripts), the readout `readout`. Starts from zero
    state at every call, so it keeps nothing between samples. Paper: hidden_size 512, num_layers 2.
    """

    def __init__(self, in_shape=(2, 34, 34), hidden_size: int = 512, num_layers: int = 2, classes: int = 10,
                 cell: str = "rnn"):
        super().__init__()
        self.in_shape = _sizes("in_shape", in_shape)
        self.cell = _cell_kind(cell)
        hidden_size = positive_int("hidden_size", hidden_size)
        recurrent = _RECURRENT[cell](math.prod(self.in_shape), hidden_size, positive_int("num_layers", num_layers))
        self.add_module(cell, recurrent)
        self.readout = nn.Linear(hidden_size, positive_int("classes", classes))

    @property
    def recurrent(self) -> nn.RNNBase:
        """The nn.RNN or nn.LSTM module."""
        return getattr(self, self.cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x, self.in_shape)
        hidden, _ = self.recurrent(x.flatten(2))
        return self.readout(hidden)

    def synaptic_layers(self) -> list[SynapticLayer]:
        """Each recurrent layer and the readout, with closed-form parameters and dense operations per step."""
        rnn, gates = self.recurrent, (4 if self.cell == "lstm" else 1)
        layer_parameters = lstm_layer_parameters if self.cell == "lstm" else rnn_layer_parameters
        layers, n_in, h = [], rnn.input_size, rnn.hidden_size
        for index in range(rnn.num_layers):
            ops = gates * (n_in * h + h * h)
            layers.append(SynapticLayer(f"{self.cell}.layer{index}", layer_parameters(n_in, h), ops))
            n_in = h
        out = self.readout
        params = linear_parameters(out.in_features, out.out_features)
        layers.append(SynapticLayer("readout", params, out.in_features * out.out_features, once=True))
        return layers


class _ConvCell(nn.Module):
    """Shared part of the conv RNN/LSTM cells: a 'same' conv over [x, h] with `gates` * hidden outputs."""

    gates: int

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3):
        super().__init__()
        self.hidden_channels = positive_int("hidden_channels", hidden_channels)
        total = positive_int("in_channels", in_channels) + self.hidden_channels
        kernel_size = _odd_kernel(kernel_size)
        self.conv = nn.Conv2d(total, self.gates * self.hidden_channels, kernel_size, padding=kernel_size // 2)

    def zeros(self, x: torch.Tensor) -> torch.Tensor:
        """A zero hidden map [B, hidden, H, W] matching the input step x [B, C, H, W]."""
        return x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])

    def parameter_count(self) -> int:
        """Closed form: gates * (k*k*(c_in + h)*h + h)."""
        c_total, k = self.conv.in_channels, self.conv.kernel_size[0]
        return self.gates * conv_parameters(c_total, self.hidden_channels, k)


class ConvRNNCell(_ConvCell):
    """Conv RNN cell: h[t] = tanh(W * [x[t], h[t-1]] + b); one step [B, C, H, W], state h."""

    gates = 1

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return self.zeros(x)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (h[t], new state h[t])."""
        h = torch.tanh(self.conv(torch.cat([x, h], dim=1)))
        return h, h


class ConvLSTMCell(_ConvCell):
    """Conv LSTM cell: i, f, o, g = split(W * [x[t], h[t-1]] + b); c = sig(f) c + sig(i) tanh(g); h = sig(o) tanh(c)."""

    gates = 4

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.zeros(x), self.zeros(x)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """Returns (h[t], new state (h[t], c[t]))."""
        h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


def _unroll(cell: _ConvCell, x_seq: torch.Tensor) -> torch.Tensor:
    """Run a cell over time from zero state: [T, B, C, H, W] -> hidden maps [T, B, hidden, H, W]."""
    state = cell.initial_state(x_seq[0])
    outputs = []
    for x in x_seq:
        h, state = cell(x, state)
        outputs.append(h)
    return torch.stack(outputs)


class ConvRecurrentNet(nn.Module):
    """Conv RNN or conv LSTM: cells conv1..convN, 2x2 average pools after every cell but the first, fc1, fc2, ...

    Each cell runs over the whole sequence (from zero state) before the next; the readout
    fc1 -> fc2 -> ... (no nonlinearity, as in the authors' code) is applied at every step.
    Input `[T, B, C, H, W]`; output `[T, B, classes]`. Paper (Gesture): in_shape (2, 32, 32),
    channels (64, 128, 128), kernel 3, hidden (256,), 11 classes.
    """

    def __init__(self, in_shape=(2, 32, 32), channels=(64, 128, 128), hidden=(256,), classes: int = 11,
                 kernel_size: int = 3, cell: str = "rnn"):
        super().__init__()
        self.in_shape, channels, kernel_size = _conv_geometry(in_shape, channels, kernel_size)
        self.cell = _cell_kind(cell)
        cell_class = ConvLSTMCell if cell == "lstm" else ConvRNNCell
        c_in = self.in_shape[0]
        for i, c_out in enumerate(channels, start=1):
            self.add_module(f"conv{i}", cell_class(c_in, c_out, kernel_size))
            c_in = c_out
        self.pool = layer.AvgPool2d(2, step_mode="m")
        height, width = _resolution(self.in_shape, len(channels))
        sizes = [c_in * height * width, *_sizes("hidden", hidden, allow_empty=True), positive_int("classes", classes)]
        for j, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            self.add_module(f"fc{j}", nn.Linear(n_in, n_out))
        self.num_cells, self.num_fc = len(channels), len(sizes) - 1

    def cells(self) -> list[_ConvCell]:
        """The recurrent cells conv1, conv2, ... in order."""
        return [getattr(self, f"conv{i}") for i in range(1, self.num_cells + 1)]

    def fcs(self) -> list[nn.Linear]:
        """The readout layers fc1, fc2, ... in order."""
        return [getattr(self, f"fc{j}") for j in range(1, self.num_fc + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_frames(x, self.in_shape)
        for index, cell in enumerate(self.cells()):
            x = _unroll(cell, x)
            if index > 0:
                x = self.pool(x)
        x = x.flatten(2)
        for fc in self.fcs():
            x = fc(x)
        return x

    def synaptic_layers(self) -> list[SynapticLayer]:
        """Each cell's convolution and the readout layers, with closed-form parameters and dense operations."""
        layers = []
        for index, cell in enumerate(self.cells()):
            conv = cell.conv
            ops = conv_ops(conv.in_channels, conv.out_channels, conv.kernel_size[0], *_resolution(self.in_shape, index))
            layers.append(SynapticLayer(f"conv{index + 1}", cell.parameter_count(), ops))
        for j, fc in enumerate(self.fcs(), start=1):
            params = linear_parameters(fc.in_features, fc.out_features)
            layers.append(SynapticLayer(f"fc{j}", params, fc.in_features * fc.out_features, once=True))
        return layers


# --------------------------------------------------------------------------- factories


MODEL_KINDS = {
    "snn_mlp": SpikingMLP,
    "scnn": SpikingCNN,
    "rnn": partial(RecurrentMLP, cell="rnn"),
    "lstm": partial(RecurrentMLP, cell="lstm"),
    "conv_rnn": partial(ConvRecurrentNet, cell="rnn"),
    "conv_lstm": partial(ConvRecurrentNet, cell="lstm"),
}
"""Model kind -> constructor; the keyword arguments are the constructor's."""

PAPER_INPUTS = {"nmnist": {"in_shape": (2, 34, 34), "classes": 10}, "gesture": {"in_shape": (2, 32, 32), "classes": 11}}
"""Frame shape and number of classes of the two data sets in the authors' code."""

PAPER_TIME_STEPS = {"nmnist": 15, "gesture": 60}
"""Time steps per sample in the authors' scripts (N-MNIST 5 ms bins; Gesture time_window 60)."""

_CONV_STACK = {"channels": (64, 128, 128), "hidden": (256,), "kernel_size": 3}
PAPER_CONFIGS = {
    "snn_mlp": {"hidden": (512,), "lens": 0.25},
    "scnn": {**_CONV_STACK, "dropout": 0.5, "lens": 0.5},
    "rnn": {"hidden_size": 512, "num_layers": 2},
    "lstm": {"hidden_size": 512, "num_layers": 2},
    "conv_rnn": dict(_CONV_STACK),
    "conv_lstm": dict(_CONV_STACK),
}
"""Each kind's architecture in the authors' code (without the data set's in_shape and classes)."""

PAPER_DATASETS = {kind: ("gesture",) if kind in ("scnn", "conv_rnn", "conv_lstm") else ("nmnist", "gesture")
                  for kind in MODEL_KINDS}
"""The data sets the authors' code runs each kind on."""


def make_model(kind: str, seed: int = 0, **config) -> nn.Module:
    """Build a model of `kind` (a key of MODEL_KINDS) with its weights drawn from `seed`.

    The global torch generator is left as it was. `config` goes to the constructor.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(MODEL_KINDS)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODEL_KINDS[kind](**config)


def paper_model(kind: str, dataset: str, seed: int = 0) -> nn.Module:
    """The authors' configuration of `kind` for `dataset` ('nmnist' or 'gesture'), weights from `seed`."""
    if kind not in PAPER_DATASETS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(PAPER_DATASETS)}")
    if dataset not in PAPER_DATASETS[kind]:
        raise ValueError(f"the authors run {kind!r} on {PAPER_DATASETS[kind]}, not on {dataset!r}")
    return make_model(kind, seed, **PAPER_INPUTS[dataset], **PAPER_CONFIGS[kind])


def convert_authors_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of an authors' checkpoint (the 'net' entry of their .t7 files) for `model`.

    Strips DataParallel's "module." prefix, drops the unused `lateral1` layer of their N-MNIST SNN
    and, for a conv RNN, keeps the last quarter of each cell's conv output channels (the only part
    their cell uses). Load the result with `model.load_state_dict(...)`. Raises ValueError for a
    key this model does not have, a missing key or a shape that still differs.
    """
    ours = model.state_dict()
    converted = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.startswith("lateral1."):
            continue
        if key not in ours:
            raise ValueError(f"the checkpoint has {key!r}, which {type(model).__name__} does not have")
        channels = ours[key].shape[0]
        conv_rnn = isinstance(model, ConvRecurrentNet) and model.cell == "rnn" and ".conv." in key
        if conv_rnn and len(value) == 4 * channels:
            value = value[3 * channels :]
        if value.shape != ours[key].shape:
            raise ValueError(f"{key}: the checkpoint has shape {tuple(value.shape)}, the model {tuple(ours[key].shape)}")
        converted[key] = value
    missing = sorted(set(ours) - set(converted))
    if missing:
        raise ValueError(f"the checkpoint lacks {missing}: was it saved from the same configuration?")
    return converted


# --------------------------------------------------------------------------- readout and losses


READOUTS = ("mean", "last")
"""'mean': average over time (SNN spike rate; the rate-coding-inspired RNN readout); 'last': last step."""


def readout(outputs: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Per-step outputs `[T, B, C]` -> `[B, C]`: their mean over time ('mean') or the last step ('last')."""
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3:
        raise ValueError(f"expected time-first outputs [T, B, classes], got {getattr(outputs, 'shape', outputs)!r}")
    if mode == "mean":
        return outputs.mean(dim=0)
    if mode == "last":
        return outputs[-1]
    raise ValueError(f"mode must be one of {READOUTS}, got {mode!r}")


def _winners(scores: torch.Tensor) -> torch.Tensor:
    """Boolean `[B, C]`: the classes that share each row's maximum score (more than one on a tie)."""
    return scores == scores.max(dim=1, keepdim=True).values


def predict(outputs: torch.Tensor, mode: str = "mean", generator: torch.Generator | None = None) -> torch.Tensor:
    """Predicted classes `[B]`: argmax of `readout(outputs, mode)`, ties broken uniformly at random.

    An SNN's spike counts take only T + 1 values, so at small T several classes often share the
    maximum (all of them when the output layer is silent). argmax would give every such sample the
    lowest tied class, i.e. class 0 for a silent network; here each tie is broken by a uniform draw
    from `generator` (default: a new one seeded with 0, so a call is reproducible).
    """
    winners = _winners(readout(outputs, mode))
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    draws = torch.rand(winners.shape, generator=generator).to(winners.device)
    return torch.where(winners, draws, -1.0).argmax(dim=1)


def tie_fraction(outputs: torch.Tensor, mode: str = "mean") -> float:
    """Fraction of samples whose largest readout is shared by two or more classes."""
    return (_winners(readout(outputs, mode)).sum(dim=1) > 1).float().mean().item()


def _check_labels(labels, scores: torch.Tensor) -> None:
    """Labels must be class indices [B] (torch.long) in [0, C) for scores [B, C]."""
    batch, classes = scores.shape
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != (batch,):
        raise ValueError(
            f"labels must be class indices, a torch.long tensor of shape [{batch}], got "
            f"{getattr(labels, 'dtype', type(labels).__name__)} {tuple(getattr(labels, 'shape', ()))}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels must lie in [0, {classes}), got values from {labels.min()} to {labels.max()}")


def readout_accuracy(outputs: torch.Tensor, labels: torch.Tensor, mode: str = "mean") -> float:
    """Accuracy of `predict(outputs, mode)` in expectation over its random tie-breaking.

    A sample whose label is one of k classes tied at the maximum counts 1/k (0 if the label is not
    among them): exactly the mean accuracy over all tie-breaks, with no randomness. A silent SNN
    therefore scores chance (1/C), not the share of class 0. Labels `[B]` are class indices.
    """
    scores = readout(outputs, mode)
    _check_labels(labels, scores)
    winners = _winners(scores).float()
    credit = winners.gather(1, labels[:, None]).squeeze(1) / winners.sum(dim=1)
    return credit.mean().item()


def _mse_to_one_hot(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE between scores [B, C] and one_hot(labels), averaged over B * C (nn.MSELoss, as the authors)."""
    _check_labels(labels, scores)
    return F.mse_loss(scores, F.one_hot(labels, scores.shape[1]).to(scores.dtype))


def mse_rate_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE((1/T) sum_t outputs[t], one_hot(labels)): the SNN loss and the rate-coding-inspired RNN loss."""
    return _mse_to_one_hot(readout(outputs, "mean"), labels)


def mse_last_step_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE(outputs[T-1], one_hot(labels)): the mainstream RNN loss of the released code."""
    return _mse_to_one_hot(readout(outputs, "last"), labels)


LOSSES = {"mean": mse_rate_loss, "last": mse_last_step_loss}
"""Readout mode -> loss(outputs [T, B, C], labels [B])."""


# --------------------------------------------------------------------------- input frames


def coarsen_time(frames: torch.Tensor, n_time_bins: int, time_axis: int = 0) -> torch.Tensor:
    """Event-count frames at a coarser temporal resolution over the same duration.

    The paper's temporal-resolution sweep: `frames` has T equal bins along `time_axis` (time-first
    `[T, ...]` by default; 1 for DataLoader batches `[B, T, ...]`); bin k of the result is the sum of
    bins k*f ... k*f + f - 1, f = T / n_time_bins, i.e. the counts the events would give binned
    directly into n_time_bins equal bins. T must be a multiple of n_time_bins.
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
    n_time_bins = positive_int("n_time_bins", n_time_bins)
    steps = frames.shape[time_axis]
    if steps % n_time_bins:
        raise ValueError(
            f"cannot merge {steps} time bins into {n_time_bins}: bin the events into a multiple of "
            f"{n_time_bins} bins first (e.g. {n_time_bins * max(1, round(steps / n_time_bins))})"
        )
    axis = time_axis % frames.dim()
    return frames.unflatten(axis, (n_time_bins, steps // n_time_bins)).sum(dim=axis + 1)


def pool_frames(frames: torch.Tensor, factor: int, crop: int = 0) -> torch.Tensor:
    """Event-count frames `[..., H, W]` on a coarser pixel grid: crop `crop` pixels at every border, then sum
    each `factor` x `factor` block (the events of a sensor with factor-times larger pixels, as the authors'
    Gesture loader downsamples 128 x 128 to 32 x 32). H - 2 crop and W - 2 crop must be multiples of factor.
    """
    if not isinstance(frames, torch.Tensor) or frames.dim() < 2:
        raise TypeError(f"frames must be a torch.Tensor [..., H, W], got {getattr(frames, 'shape', frames)!r}")
    factor = positive_int("factor", factor)
    if isinstance(crop, bool) or not isinstance(crop, numbers.Integral) or crop < 0:
        raise ValueError(f"crop must be a non-negative int, got {crop!r}")
    height, width = frames.shape[-2] - 2 * crop, frames.shape[-1] - 2 * crop
    if height <= 0 or width <= 0 or height % factor or width % factor:
        raise ValueError(
            f"frames of {tuple(frames.shape[-2:])} cropped by {crop} give {height} x {width}, which {factor} x "
            f"{factor} blocks do not tile; choose crop so that H - 2 crop and W - 2 crop are multiples of {factor}"
        )
    frames = frames[..., crop:crop + height, crop:crop + width]
    blocks = frames.unflatten(-1, (width // factor, factor)).unflatten(-3, (height // factor, factor))
    return blocks.sum(dim=(-3, -1))


# --------------------------------------------------------------------------- operation counts


def is_spiking(model: nn.Module) -> bool:
    """True for the SNN models (SpikingMLP, SpikingCNN)."""
    return isinstance(model, (SpikingMLP, SpikingCNN))


def _synaptic_layers(model: nn.Module) -> list[SynapticLayer]:
    if not isinstance(model, (SpikingMLP, SpikingCNN, RecurrentMLP, ConvRecurrentNet)):
        raise TypeError(f"expected a model of this module (see MODEL_KINDS), got {type(model).__name__}")
    return model.synaptic_layers()


@torch.no_grad()
def input_rates(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Fraction of nonzero input elements of each synaptic layer of an SNN on input `x` `[T, B, ...]`.

    One value per entry of `model.synaptic_layers()`, averaged over time, batch and features; the
    first is the density of the data frames, the others are firing rates of the spikes each layer
    receives. Runs in eval mode (no dropout), resets the model before and after, restores its mode.
    """
    if not is_spiking(model):
        raise TypeError(f"input_rates needs an SNN (SpikingMLP or SpikingCNN), got {type(model).__name__}")
    layers = model.synaptic_layers()
    rates: dict[str, float] = {}

    def record(name, module, args):
        rates[name] = args[0].count_nonzero().item() / args[0].numel()

    hooks = [model.get_submodule(lay.name).register_forward_pre_hook(partial(record, lay.name)) for lay in layers]
    was_training = model.training
    model.eval()
    try:
        functional.reset_net(model)
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
        functional.reset_net(model)
        model.train(was_training)
    return [rates[lay.name] for lay in layers]


def operation_counts(model: nn.Module, time_steps: int, rates: Sequence[float] | None = None,
                     binary_input: bool = False) -> dict[str, float]:
    """Closed-form parameters and synaptic operations per sample over `time_steps` steps.

    Returns {"params", "MACs", "ACs"}. RNN models: MACs only (T times the recurrent layers, the
    readout once). SNN models need `rates`, one per synaptic layer (see `input_rates`): ACs = T * sum
    rate * dense ops, except the first layer's, counted as MACs unless `binary_input`.
    """
    layers = _synaptic_layers(model)
    time_steps = positive_int("time_steps", time_steps)
    params = sum(lay.parameters for lay in layers)
    if not is_spiking(model):
        macs = sum(lay.ops_per_step * (1 if lay.once else time_steps) for lay in layers)
        return {"params": params, "MACs": macs, "ACs": 0}
    if rates is None or len(rates) != len(layers):
        raise ValueError(
            f"an SNN needs one input rate per synaptic layer ({len(layers)}: {[lay.name for lay in layers]}), "
            f"got {rates!r}; measure them with input_rates(model, x)"
        )
    rates = [real("each rate (a fraction of nonzero inputs)", r, 0.0, 1.0) for r in rates]
    ops = [time_steps * r * lay.ops_per_step for r, lay in zip(rates, layers)]
    if binary_input:
        return {"params": params, "MACs": 0.0, "ACs": sum(ops)}
    return {"params": params, "MACs": ops[0], "ACs": sum(ops[1:])}


def complexity_table(models: Mapping[str, nn.Module], time_steps: int,
                     rates: Mapping[str, Sequence[float]] | None = None, binary_input: bool = False) -> pd.DataFrame:
    """One row per named model: model, family ('SNN' or 'RNN'), params, MACs, ACs (per sample, T steps).

    `rates[name]` gives each SNN's input rates (see `input_rates`); RNN models need none.
    """
    rates = {} if rates is None else rates
    rows = []
    for name, model in models.items():
        counts = operation_counts(model, time_steps, rates.get(name), binary_input)
        rows.append({"model": name, "family": "SNN" if is_spiking(model) else "RNN", **counts})
    return pd.DataFrame(rows, columns=["model", "family", "params", "MACs", "ACs"])
