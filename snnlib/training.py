"""Training: a BPTT fit/evaluate loop with seeding, progress bars, checkpoints and a NaN guard.

Tensors that carry time are time-first, ``[T, B, ...]`` (spikingjelly's multi-step mode).
A ``DataLoader`` collates samples ``[T, ...]`` into ``[B, T, ...]``; :func:`fit` and
:func:`evaluate` move the time axis (``time_axis``, default 1) to the front before calling
the model, so the model always sees ``[T, B, ...]`` (``time_axis=None``: passed unchanged).

One training step on a batch (x, y), backpropagation through time over all T steps:

    reset_net(model)                    every neuron state back to its reset value
    out  = model(x)                     [T, B, C] or [B, C]
    loss = loss_fn(out, y)              the caller's loss, a scalar
    g    = d loss / d theta             autograd through the unrolled time loop
    if grad_clip: g = g * min(1, grad_clip / ||g||_2)
    theta = optimizer.step(theta, g)

The loss and the gradient norm ||g||_2 are checked every step; a non-finite value stops
training with :class:`NonFiniteLossError`. The epoch's train_loss and train_acc are
sample-weighted means over its batches; the scheduler (if any) steps once per epoch.

Checkpoints: after every completed epoch, the model, optimizer and scheduler states, the
history and every random-number-generator state (python, numpy, torch, CUDA, and the train
loader's own ``torch.Generator``) are written atomically to ``checkpoint``. ``fit`` with
``resume=True`` continues from that file and produces the same numbers as an uninterrupted
run. A checkpoint is written only after a good epoch, so a crash never spoils it.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from snnlib.io import atomic_write
from snnlib.metrics import accuracy

CHECKPOINT_FORMAT = 1
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "grad_norm", "seconds"]


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; the message says where and what to try."""


# --------------------------------------------------------------------------- set-up helpers


@contextmanager
def one_torch_thread():
    """Run the block with one intra-op torch thread, restoring the thread count afterwards.

    For loops of tiny tensor operations (an RL step, a recurrent product [B, H] x [H, H] per time
    step): far below any useful parallel grain, two threads wait for each other at each operation
    (64 x 32 x 32 on a loaded 2-core machine: 21 us on one thread, 109 us on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA), and make
    cuDNN deterministic (no benchmark autotuning). Other deterministic modes are left alone."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; otherwise the named device, checked to exist."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available: use 'cpu' or 'auto'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available: use 'cpu' or 'auto'")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return resolved


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0, **kwargs) -> DataLoader:
    """A ``DataLoader`` whose shuffling comes from its own ``torch.Generator`` seeded with
    ``seed``, so the batch order is reproducible and independent of other code's use of
    torch's global generator. ``kwargs`` go to ``DataLoader`` (e.g. ``drop_last``)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, **kwargs)


# --------------------------------------------------------------------------- one batch


def _prepare(batch, device: torch.device, time_axis: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpack ``(x, y)``, move time to axis 0 and both to ``device``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("each batch must be a pair (x, y): make the dataset return (input, target)")
    x, y = batch
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"batch input and target must be tensors, got {type(x).__name__} and "
                        f"{type(y).__name__}")
    if time_axis is not None:
        if not -x.dim() <= time_axis < x.dim():
            raise ValueError(
                f"time_axis={time_axis} but the input has shape {tuple(x.shape)}: pass the axis that "
                "holds time (1 for [B, T, ...] batches) or None for inputs without time"
            )
        x = x.movedim(time_axis, 0)
    return x.to(device), y.to(device)


def _check_finite(value: float, what: str, epoch: int, batch: int | None = None) -> None:
    if math.isfinite(value):
        return
    where = f"epoch {epoch}" + (f", batch {batch}" if batch is not None else "")
    raise NonFiniteLossError(
        f"{what} is {value} at {where}; training stopped (a checkpoint, if any, still holds the "
        "last completed epoch). Likely fixes: lower the learning rate; check the inputs and their "
        "normalisation for NaN/inf or very large values; clip gradients (fit(..., grad_clip=1.0))."
    )


def _clip_gradients(optimizer: torch.optim.Optimizer, grad_clip: float | None) -> float:
    """Total L2 norm of the optimizer's gradients (before clipping); clip to ``grad_clip``."""
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not params:
        return 0.0
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if grad_clip is not None and torch.isfinite(norm):
        torch.nn.utils.clip_grads_with_norm_(params, grad_clip, norm)
    return norm.item()


class _Mean:
    """Sample-weighted running mean."""

    def __init__(self):
        self.total, self.n = 0.0, 0

    def add(self, value: float, n: int) -> None:
        self.total += value * n
        self.n += n

    @property
    def value(self) -> float:
        return self.total / self.n if self.n else math.nan


# --------------------------------------------------------------------------- epochs


def _train_epoch(model, loader, optimizer, loss_fn, *, epoch, epochs, device, time_axis,
                 grad_clip, accuracy_fn, progress) -> dict:
    model.train()
    loss_mean, acc_mean, norm_mean = _Mean(), _Mean(), _Mean()
    bar = tqdm(loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress)
    for index, batch in enumerate(bar, start=1):
        x, y = _prepare(batch, device, time_axis)
        functional.reset_net(model)
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        loss = loss_fn(output, y)
        loss_value = loss.item()
        _check_finite(loss_value, "the training loss", epoch, index)
        loss.backward()
        norm = _clip_gradients(optimizer, grad_clip)
        _check_finite(norm, "the gradient norm", epoch, index)
        optimizer.step()
        n = y.shape[0]
        loss_mean.add(loss_value, n)
        norm_mean.add(norm, 1)
        if accuracy_fn is not None:
            acc_mean.add(accuracy_fn(output.detach(), y), n)
        bar.set_postfix(loss=f"{loss_mean.value:.4g}", acc=f"{acc_mean.value:.3f}", refresh=False)
    if loss_mean.n == 0:
        raise ValueError("the training loader yielded no batches: check the dataset size and drop_last")
    return {"train_loss": loss_mean.value, "train_acc": acc_mean.value, "grad_norm": norm_mean.value}


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: Callable | None = None, *, device="auto",
             time_axis: int | None = 1, accuracy_fn: Callable | None = accuracy) -> dict:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode, without gradients.

    Batches are ``(x, y)`` with time at ``time_axis`` (moved to the front: the model sees
    ``[T, B, ...]``); the model is reset before every batch. Returns ``{"loss", "accuracy",
    "n"}`` with sample-weighted means (``loss`` is NaN without ``loss_fn``, ``accuracy`` NaN
    without ``accuracy_fn``). The model's train/eval mode is restored afterwards.
    """
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    loss_mean, acc_mean = _Mean(), _Mean()
    try:
        for batch in loader:
            x, y = _prepare(batch, device, time_axis)
            functional.reset_net(model)
            output = model(x)
            n = y.shape[0]
            loss_mean.add(loss_fn(output, y).item() if loss_fn is not None else math.nan, n)
            if accuracy_fn is not None:
                acc_mean.add(accuracy_fn(output, y), n)
    finally:
        model.train(was_training)
    if loss_mean.n == 0:
        raise ValueError("the evaluation loader yielded no batches: check the dataset size")
    return {"loss": loss_mean.value, "accuracy": acc_mean.value, "n": loss_mean.n}


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _step_scheduler(scheduler, row: dict) -> None:
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(row["val_loss"] if math.isfinite(row["val_loss"]) else row["train_loss"])
    else:
        scheduler.step()


def _as_frame(history: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(history, columns=HISTORY_COLUMNS)


# --------------------------------------------------------------------------- checkpoints


def _loader_generators(loader) -> list[torch.Generator]:
    """The ``torch.Generator`` objects a loader shuffles with (its own and its sampler's)."""
    found = []
    for owner in (loader, getattr(loader, "sampler", None)):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


def _rng_states(loader) -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": [g.get_state() for g in _loader_generators(loader)],
    }


def _restore_rng_states(states: dict, loader) -> None:
    random.setstate(states["python"])
    npy = states["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    generators = _loader_generators(loader)
    if len(generators) != len(states["loader"]):
        raise ValueError("the train loader does not match the checkpoint's (different shuffling set-up)")
    for generator, state in zip(generators, states["loader"]):
        generator.set_state(state)


def _save_checkpoint(path, *, model, optimizer, scheduler, epoch, seed, history, loader) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "seed": seed,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history,
        "rng": _rng_states(loader),
    }
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`fit` (on the CPU, tensors only, no code execution).

    Keys: format, epoch, seed, model, optimizer, scheduler, history (list of dicts), rng.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint ({err}); delete it or pass resume=False") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an snnlib checkpoint (format {CHECKPOINT_FORMAT}); "
                         "delete it or pass resume=False")
    return state


def _resume(path, *, model, optimizer, scheduler, seed, loader) -> list[dict]:
    """Restore everything from ``path``; return the history so far."""
    state = read_checkpoint(path)
    if state["seed"] != seed:
        raise ValueError(f"checkpoint {path} was made with seed {state['seed']}, not {seed}: "
                         "pass the same seed, or resume=False to start over")
    if (state["scheduler"] is None) != (scheduler is None):
        raise ValueError(f"checkpoint {path} was made {'without' if scheduler else 'with'} a scheduler: "
                         "use the same set-up, or resume=False to start over")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"checkpoint {path} does not fit this model/optimizer ({err}); "
                         "delete it or pass resume=False") from err
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    _restore_rng_states(state["rng"], loader)
    return list(state["history"])


# --------------------------------------------------------------------------- fit


def fit(model: nn.Module, train_loader, *, epochs: int, optimizer: torch.optim.Optimizer,
        loss_fn: Callable, val_loader=None, scheduler=None, seed: int = 0, device="auto",
        time_axis: int | None = 1, checkpoint: str | os.PathLike | None = None, resume: bool = True,
        progress: bool = True, epoch_callback: Callable | None = None, grad_clip: float | None = None,
        accuracy_fn: Callable | None = accuracy) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` epochs with BPTT; return the history, one row per epoch.

    Columns: epoch (1-based), train_loss, train_acc, val_loss, val_acc (NaN without
    ``val_loader``), lr (of the first parameter group, during the epoch), grad_norm (mean
    pre-clipping L2 norm over the epoch's batches), seconds.

    ``loss_fn(output, y)`` gets the model's output (``[T, B, C]`` or ``[B, C]``) and the
    targets; accuracy comes from ``accuracy_fn`` (default :func:`snnlib.metrics.accuracy`;
    None for tasks that are not classification). ``seed`` seeds everything first (see
    :func:`seed_everything`); build the loaders with :func:`make_loader` for reproducible
    shuffling. With ``checkpoint``, a checkpoint is written after every epoch and, if
    ``resume`` and the file exists, training continues from it (``epochs`` is the total
    number, not the number still to run; a checkpoint already that far is returned as it
    is). ``epoch_callback(epoch, history)`` runs after each epoch's checkpoint; returning
    True stops training (early stopping). ``grad_clip`` clips the total gradient norm.
    Raises :class:`NonFiniteLossError` on a NaN/inf loss or gradient.
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs <= 0:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be a positive number or None, got {grad_clip!r}")
    device = resolve_device(device)
    seed_everything(seed)
    model.to(device)
    history: list[dict] = []
    if checkpoint is not None and resume and Path(checkpoint).is_file():
        history = _resume(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                          seed=seed, loader=train_loader)
    epoch_bar = tqdm(total=epochs, initial=len(history), desc="fit", disable=not progress)
    try:
        for epoch in range(len(history) + 1, epochs + 1):
            row = _run_epoch(model, train_loader, optimizer, loss_fn, val_loader=val_loader, epoch=epoch,
                             epochs=epochs, device=device, time_axis=time_axis, grad_clip=grad_clip,
                             accuracy_fn=accuracy_fn, progress=progress)
            _step_scheduler(scheduler, row)
            history.append(row)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                                 epoch=epoch, seed=seed, history=history, loader=train_loader)
            epoch_bar.update(1)
            epoch_bar.set_postfix(loss=f"{row['train_loss']:.4g}", acc=f"{row['train_acc']:.3f}",
                                  val_acc=f"{row['val_acc']:.3f}")
            if epoch_callback is not None and epoch_callback(epoch, _as_frame(history)) is True:
                break
    finally:
        epoch_bar.close()
    return _as_frame(history)


def _run_epoch(model, train_loader, optimizer, loss_fn, *, val_loader, epoch, epochs, device,
               time_axis, grad_clip, accuracy_fn, progress) -> dict:
    """Train one epoch, then validate; return the history row (scheduler not yet stepped)."""
    start = time.perf_counter()
    lr = _current_lr(optimizer)
    train = _train_epoch(model, train_loader, optimizer, loss_fn, epoch=epoch, epochs=epochs,
                         device=device, time_axis=time_axis, grad_clip=grad_clip,
                         accuracy_fn=accuracy_fn, progress=progress)
    val = {"loss": math.nan, "accuracy": math.nan}
    if val_loader is not None:
        val = evaluate(model, val_loader, loss_fn, device=device, time_axis=time_axis, accuracy_fn=accuracy_fn)
        _check_finite(val["loss"], "the validation loss", epoch)
    return {"epoch": epoch, **train, "val_loss": val["loss"], "val_acc": val["accuracy"], "lr": lr,
            "seconds": time.perf_counter() - start}


__all__ = [
    "NonFiniteLossError",
    "seed_everything",
    "one_torch_thread",
    "resolve_device",
    "make_loader",
    "fit",
    "evaluate",
    "read_checkpoint",
]
