"""Spiking neurons: LIF, PLIF and IF on spikingjelly 2.0, and a bridge to snntorch's Leaky.

Shapes. Every tensor that carries time is time-first, `[T, B, ...]` (spikingjelly's multi-step
mode, `step_mode='m'`, the default here). In single-step mode (`step_mode='s'`) a neuron takes
one step `[B, ...]` per call and keeps its state between calls. Reset the state between samples
with `spikingjelly.activation_based.functional.reset_net(net)`.

Dynamics (spikingjelly's charge / fire / reset, per time step t; V[-1] = V_reset, or 0 for a
soft reset; V_reset written as 0 when v_reset=None):

    charge  LIF, decay_input=True:   H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
            LIF, decay_input=False:  H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]
            PLIF:                    the same with 1/tau = sigmoid(w), w a learnable scalar
            IF:                      H[t] = V[t-1] + X[t]
    fire    S[t] = Theta(H[t] - V_threshold),  Theta(x) = 1 if x >= 0 else 0
    reset   hard (v_reset a float):  V[t] = H[t] * (1 - S[t]) + V_reset * S[t]
            soft (v_reset=None):     V[t] = H[t] - V_threshold * S[t]

So with decay factor k = 1 - 1/tau and V_reset = 0, the LIF is V <- k V + X (decay_input=False)
or V <- k V + X / tau (decay_input=True). A paper's decay factor k maps to tau = 1 / (1 - k).
The backward pass replaces dTheta/dx by the surrogate derivative of `surrogate_function`
(default: a fresh `snnlib.surrogate.ArcTan()` per neuron). `detach_reset=True` keeps the reset
out of the graph (S in the reset equation is treated as a constant). `store_v_seq=True` keeps
the post-reset V[t] of the last multi-step call in `v_seq`, `[T, B, ...]`.
The MPD-AGL paper's PLIF, u[t] = sigmoid(a) u[t-1] (1 - s[t-1]) + I[t], is `PLIFNode` with
decay_input=False, v_reset=0.0 and w = -a; spikingjelly's decay_input=True also scales the input.

Firing at exactly the threshold. spikingjelly (and snnlib.surrogate) fire when H >= V_threshold;
snntorch's surrogates and He et al. 2020 fire when mem > threshold. The two agree except where
the membrane lands exactly on the threshold. snntorch fires through its `spike_grad`, so giving
an snnlib surrogate as `spike_grad` makes snntorch fire on >= too.

snntorch's Leaky (1.0.0). With the previous membrane m[t-1], beta clamped to [0, 1], and
R[t] = spike_grad(m[t-1] - threshold), detached (the spike of the previous step):

    "subtract":  m[t] = beta m[t-1] + X[t] - threshold R[t]
    "zero":      m[t] = beta (1 - R[t]) m[t-1] + X[t]
    fire:        S[t] = spike_grad(m[t] - threshold)
    reset_delay=False then resets at once, in the graph: m[t] -= (S[t] - R[t]) * threshold
                 ("subtract") or m[t] -= (S[t] - R[t]) * m[t] ("zero").

Equivalences, with beta = 1 - 1/tau and the snntorch input scaled by 1/tau when decay_input=True
(`leaky_for_lif` / `lif_for_leaky` build them and refuse the rest):

    spikingjelly                     snntorch Leaky                     snntorch mem is
    hard, v_reset=0, detached        "zero", reset_delay=True           H[t] (before reset)
    hard, v_reset=0, not detached    "zero", reset_delay=False          V[t] (after reset)
    soft, not detached               "subtract", reset_delay=False      V[t], while V[t] < threshold
    soft, detached                   no match: snntorch's subtraction is in the graph or delayed
    no match                         "subtract", reset_delay=True: it subtracts the threshold after
                                     the leak; spikingjelly's reset, before the leak, takes
                                     beta * threshold off the next membrane
    no match                         "none": never resets

The two "zero" rows give the same spikes; they differ in the reset gradient and in what mem holds.
The soft-reset match holds as long as no membrane stays at or above threshold after its reset
(i.e. H[t] < 2 V_threshold): snntorch recomputes R[t] from the stored, already reset m[t-1] and
would subtract the threshold again before firing. A v_reset other than 0 has no match (snntorch
starts at and resets to 0). The thresholds must be positive. Spikes agree exactly, up to the
firing-at-threshold convention above; the spike gradients agree when both use the same surrogate.
"""

import math
import numbers
from dataclasses import dataclass

import snntorch
import torch
from spikingjelly.activation_based import base, neuron

from snnlib.surrogate import ArcTan

__all__ = ["IFNode", "LIFNode", "LeakyEquivalence", "LeakyMultiStep", "PLIFNode", "leaky_for_lif", "lif_for_leaky"]


def _real(name: str, value) -> float:
    """`value` as a finite float, or a TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _tau(name: str, value) -> float:
    tau = _real(name, value)
    if tau <= 1.0:
        raise ValueError(
            f"{name} must be > 1 so that the decay factor 1 - 1/{name} lies in (0, 1), got {value}; "
            f"for a decay factor k use {name} = 1 / (1 - k)"
        )
    return tau


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq) -> dict:
    """Checked keyword arguments shared by the spikingjelly neurons, with the default surrogate filled in."""
    if surrogate_function is None:
        surrogate_function = ArcTan()
    if not callable(surrogate_function):
        raise TypeError(
            f"surrogate_function must be callable (e.g. snnlib.surrogate.ArcTan()), got {surrogate_function!r}"
        )
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode must be 'm' (input [T, B, ...]) or 's' (input [B, ...]), got {step_mode!r}")
    return dict(
        v_threshold=_real("v_threshold", v_threshold),
        v_reset=None if v_reset is None else _real("v_reset (a float for hard reset, None for soft)", v_reset),
        surrogate_function=surrogate_function,
        detach_reset=_flag("detach_reset", detach_reset),
        step_mode=step_mode,
        store_v_seq=_flag("store_v_seq", store_v_seq),
    )


class LIFNode(neuron.LIFNode):
    """Leaky integrate-and-fire neuron (spikingjelly `LIFNode`), multi-step `[T, B, ...]` by default.

    H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau   (decay_input=True)
    H[t] = V[t-1] - (V[t-1] - V_reset) / tau + X[t]     (decay_input=False)
    S[t] = (H[t] >= v_threshold);  V[t] = hard or soft reset of H[t] (see the module docstring).

    Args: tau > 1; v_reset a float (hard reset to it) or None (soft reset: subtract v_threshold);
    surrogate_function defaults to a new snnlib.surrogate.ArcTan(); the rest as in spikingjelly.
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(
            tau=_tau("tau", tau),
            decay_input=_flag("decay_input", decay_input),
            **_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq),
        )


class PLIFNode(neuron.ParametricLIFNode):
    """Parametric LIF (spikingjelly `ParametricLIFNode`): the LIF with a learnable 1/tau = sigmoid(w).

    `w` is one scalar nn.Parameter, initialised to -log(init_tau - 1) so that tau starts at init_tau.
    Input `[T, B, ...]` by default; other arguments as in `LIFNode`.
    """

    def __init__(
        self,
        init_tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(
            init_tau=_tau("init_tau", init_tau),
            decay_input=_flag("decay_input", decay_input),
            **_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq),
        )


class IFNode(neuron.IFNode):
    """Integrate-and-fire neuron (spikingjelly `IFNode`): H[t] = V[t-1] + X[t], no leak.

    Input `[T, B, ...]` by default; fire and reset as in `LIFNode`.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function=None,
        detach_reset: bool = False,
        step_mode: str = "m",
        store_v_seq: bool = False,
    ):
        super().__init__(**_node_kwargs(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq))


class LeakyMultiStep(base.MemoryModule):
    """Runs an `snntorch.Leaky` over time-first input `[T, B, ...]` and returns spikes `[T, B, ...]`.

    The bridge owns the membrane state (memory `mem`, starting at 0), so it resets with
    `functional.reset_net` like the spikingjelly neurons, and it passes the state to the Leaky
    explicitly at every step. With `store_mem_seq=True` the Leaky's membrane after each step of
    the last multi-step call is kept in `mem_seq`, `[T, B, ...]` (see the module docstring for
    how it relates to spikingjelly's H and V). `step_mode='s'` takes one step `[B, ...]` per call.
    """

    def __init__(self, leaky: snntorch.Leaky, store_mem_seq: bool = False, step_mode: str = "m"):
        super().__init__()
        if not isinstance(leaky, snntorch.Leaky):
            raise TypeError(f"leaky must be an snntorch.Leaky, got {type(leaky).__name__}")
        if leaky.init_hidden:
            raise ValueError("build the Leaky with init_hidden=False: LeakyMultiStep keeps the membrane state itself")
        if step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 'm' (input [T, B, ...]) or 's' (input [B, ...]), got {step_mode!r}")
        self.leaky = leaky
        self.store_mem_seq = _flag("store_mem_seq", store_mem_seq)
        self.step_mode = step_mode
        self.register_memory("mem", 0.0)
        self.register_memory("mem_seq", None)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.mem, float):
            mem = torch.full_like(x, self.mem)
        elif self.mem.shape != x.shape:
            raise ValueError(
                f"input shape {tuple(x.shape)} differs from the stored membrane {tuple(self.mem.shape)}; "
                "call spikingjelly.activation_based.functional.reset_net(net) between batches"
            )
        else:
            mem = self.mem
        spike, self.mem = self.leaky(x, mem)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() < 2:
            raise ValueError(f"expected time-first input [T, B, ...], got shape {tuple(x_seq.shape)}")
        spikes, mems = [], []
        for x in x_seq.unbind(0):
            spikes.append(self.single_step_forward(x))
            if self.store_mem_seq:
                mems.append(self.mem)
        if self.store_mem_seq:
            self.mem_seq = torch.stack(mems)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"store_mem_seq={self.store_mem_seq}, step_mode={self.step_mode}"


# The spikingjelly reset settings that snntorch's Leaky can reproduce, forward and backward:
# (soft reset, detach_reset) -> (reset_mechanism, reset_delay, snntorch mem is the pre-reset H).
_MATCHES = {
    (False, True): ("zero", True, True),
    (False, False): ("zero", False, False),
    (True, False): ("subtract", False, False),
}


@dataclass(frozen=True)
class LeakyEquivalence:
    """A spikingjelly-style LIF and an snntorch Leaky with the same spikes and spike gradients.

    Build it with `leaky_for_lif` or `lif_for_leaky`, then run
        LIFNode(**eq.lif_kwargs(), surrogate_function=sg)                  on input x and
        LeakyMultiStep(snntorch.Leaky(**eq.leaky_kwargs(), spike_grad=sg))  on input eq.input_scale * x.
    With the same snnlib surrogate `sg` both fire on >= and the spikes are identical; the Leaky's
    membrane equals spikingjelly's pre-reset H[t] if `mem_is_pre_reset`, else its post-reset V[t].
    Conditions and exceptions: see the module docstring.
    """

    tau: float
    decay_input: bool
    v_reset: float | None
    detach_reset: bool
    beta: float
    threshold: float
    reset_mechanism: str
    reset_delay: bool
    input_scale: float
    mem_is_pre_reset: bool

    def lif_kwargs(self) -> dict:
        """Keyword arguments for `LIFNode` (or spikingjelly's `neuron.LIFNode`)."""
        return dict(
            tau=self.tau,
            decay_input=self.decay_input,
            v_threshold=self.threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
        )

    def leaky_kwargs(self) -> dict:
        """Keyword arguments for `snntorch.Leaky` (add `spike_grad=`); beta and threshold become float32 buffers."""
        return dict(
            beta=self.beta,
            threshold=self.threshold,
            reset_mechanism=self.reset_mechanism,
            reset_delay=self.reset_delay,
        )


def _positive_threshold(value) -> float:
    threshold = _real("threshold", value)
    if threshold <= 0:
        raise ValueError(f"the LIF/Leaky mapping needs a positive threshold, got {value}")
    return threshold


def leaky_for_lif(
    tau: float,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
) -> LeakyEquivalence:
    """The snntorch Leaky that reproduces a spikingjelly LIF: beta = 1 - 1/tau, input scaled by 1/tau if decay_input.

    Raises ValueError for a v_reset other than 0.0/None and for a soft reset with detach_reset=True,
    which no Leaky setting reproduces.
    """
    tau = _tau("tau", tau)
    if v_reset is not None and _real("v_reset", v_reset) != 0.0:
        raise ValueError(
            f"snntorch's Leaky starts at and resets to 0, so v_reset={v_reset} has no match; use v_reset=0.0 or None"
        )
    soft = v_reset is None
    key = (soft, _flag("detach_reset", detach_reset))
    if key not in _MATCHES:
        raise ValueError(
            "a soft reset with detach_reset=True has no snntorch Leaky match: reset_delay=False keeps the "
            "subtraction in the graph and reset_delay=True subtracts after the leak; use detach_reset=False"
        )
    reset_mechanism, reset_delay, pre_reset = _MATCHES[key]
    return LeakyEquivalence(
        tau=tau,
        decay_input=_flag("decay_input", decay_input),
        v_reset=None if soft else 0.0,
        detach_reset=detach_reset,
        beta=1.0 - 1.0 / tau,
        threshold=_positive_threshold(v_threshold),
        reset_mechanism=reset_mechanism,
        reset_delay=reset_delay,
        input_scale=1.0 / tau if decay_input else 1.0,
        mem_is_pre_reset=pre_reset,
    )


def lif_for_leaky(
    beta: float,
    threshold: float = 1.0,
    reset_mechanism: str = "subtract",
    reset_delay: bool = True,
) -> LeakyEquivalence:
    """The spikingjelly LIF (decay_input=False, tau = 1 / (1 - beta)) that reproduces an snntorch Leaky.

    The defaults are snntorch's. Raises ValueError for beta outside (0, 1) (beta = 1 is an IF
    neuron: use IFNode), for reset_mechanism "none", and for "subtract" with reset_delay=True,
    which no spikingjelly LIF reproduces.
    """
    beta = _real("beta", beta)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must lie in (0, 1) for a leaky neuron, got {beta}; beta = 1 is IFNode")
    matches = {(mechanism, delay): key for key, (mechanism, delay, _) in _MATCHES.items()}
    if (reset_mechanism, _flag("reset_delay", reset_delay)) not in matches:
        raise ValueError(
            f"snntorch's Leaky with reset_mechanism={reset_mechanism!r}, reset_delay={reset_delay} has no spikingjelly "
            "LIF match: 'subtract' with reset_delay=True subtracts the threshold after the leak, 'none' never "
            "resets; use 'zero' (either delay) or 'subtract' with reset_delay=False"
        )
    soft, detach_reset = matches[(reset_mechanism, reset_delay)]
    return LeakyEquivalence(
        tau=1.0 / (1.0 - beta),
        decay_input=False,
        v_reset=None if soft else 0.0,
        detach_reset=detach_reset,
        beta=beta,
        threshold=_positive_threshold(threshold),
        reset_mechanism=reset_mechanism,
        reset_delay=reset_delay,
        input_scale=1.0,
        mem_is_pre_reset=_MATCHES[(soft, detach_reset)][2],
    )
