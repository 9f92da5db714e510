"""Tests for snnlib.training on a tiny spiking network and a fabricated data set."""

import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn
from torch.utils.data import TensorDataset

from snnlib.training import (
    NonFiniteLossError,
    evaluate,
    fit,
    make_loader,
    read_checkpoint,
    resolve_device,
    seed_everything,
)

T, N_IN, N_CLASSES = 5, 6, 3


def dataset(n=42, seed=0):
    """Samples [T, N_IN] of Bernoulli spikes whose rates depend on the class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % N_CLASSES
    rates = 0.1 + 0.6 * nn.functional.one_hot(labels, N_CLASSES).float().repeat(1, 2)
    x = (torch.rand(n, T, N_IN, generator=generator) < rates[:, None, :]).float()
    return TensorDataset(x, labels)


class TinySNN(nn.Module):
    """Linear -> dropout -> LIF -> Linear, multi-step: [T, B, N_IN] -> [T, B, N_CLASSES]."""

    def __init__(self, init_seed=0):
        super().__init__()
        torch.manual_seed(init_seed)
        self.fc1 = layer.Linear(N_IN, 16, step_mode="m")
        self.drop = nn.Dropout(0.2)
        self.lif = neuron.LIFNode(step_mode="m")
        self.fc2 = layer.Linear(16, N_CLASSES, step_mode="m")

    def forward(self, x):
        return self.fc2(self.lif(self.drop(self.fc1(x))))


def rate_loss(output, y):
    return nn.functional.cross_entropy(output.mean(dim=0), y)


def setup(init_seed=0, lr=0.05):
    model = TinySNN(init_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = make_loader(dataset(), batch_size=8, shuffle=True, seed=7)
    val_loader = make_loader(dataset(n=12, seed=1), batch_size=6, shuffle=False)
    return model, optimizer, scheduler, loader, val_loader


def run(epochs, checkpoint=None, init_seed=0, **kwargs):
    model, optimizer, scheduler, loader, val_loader = setup(init_seed)
    history = fit(model, loader, epochs=epochs, optimizer=optimizer, loss_fn=rate_loss,
                  val_loader=val_loader, scheduler=scheduler, seed=3, device="cpu",
                  checkpoint=checkpoint, progress=False, **kwargs)
    return model, history


class Crash(Exception):
    pass


def crash_after(epoch_to_crash):
    def callback(epoch, history):
        if epoch == epoch_to_crash:
            raise Crash

    return callback


# --------------------------------------------------------------------------- set-up helpers


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(11)
    first = draw()
    seed_everything(11)
    assert draw() == first
    seed_everything(12)
    assert draw() != first
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("bogus")
    with pytest.raises(ValueError):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")


def test_make_loader_shuffles_reproducibly_and_independently_of_global_rng():
    data = TensorDataset(torch.arange(20))

    def order(seed):
        loader = make_loader(data, batch_size=5, seed=seed)
        torch.rand(10)  # other code using the global generator must not matter
        return torch.cat([b[0] for b in loader]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(20))
    with pytest.raises(ValueError):
        make_loader(data, batch_size=0)


# --------------------------------------------------------------------------- fit / evaluate


def test_fit_history_and_learning():
    model, history = run(epochs=4)
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                                     "grad_norm", "seconds"]
    assert history.epoch.tolist() == [1, 2, 3, 4]
    assert history.lr.tolist() == pytest.approx([0.05, 0.025, 0.0125, 0.00625])
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    assert history.train_acc.between(0, 1).all() and history.val_acc.between(0, 1).all()
    assert (history.grad_norm > 0).all()


def test_same_seed_same_history():
    _, first = run(epochs=2)
    _, second = run(epochs=2)
    pd.testing.assert_frame_equal(first.drop(columns="seconds"), second.drop(columns="seconds"))


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    straight_model, straight = run(epochs=4)

    path = tmp_path / "run" / "ckpt.pt"
    with pytest.raises(Crash):
        run(epochs=4, checkpoint=path, epoch_callback=crash_after(2))
    assert read_checkpoint(path)["epoch"] == 2
    # a fresh process would rebuild everything: other initial weights, fresh loader and RNGs
    resumed_model, resumed = run(epochs=4, checkpoint=path, init_seed=99)

    pd.testing.assert_frame_equal(straight.drop(columns="seconds"), resumed.drop(columns="seconds"),
                                  rtol=1e-6)
    for name, value in straight_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]  # no temporary files left


def test_resume_refuses_a_different_seed(tmp_path):
    path = tmp_path / "ckpt.pt"
    run(epochs=1, checkpoint=path)
    model, optimizer, scheduler, loader, _ = setup()
    with pytest.raises(ValueError, match="seed"):
        fit(model, loader, epochs=2, optimizer=optimizer, loss_fn=rate_loss, scheduler=scheduler, seed=4,
            device="cpu", checkpoint=path, progress=False)


def test_epoch_callback_can_stop_early():
    _, history = run(epochs=5, epoch_callback=lambda epoch, history: epoch == 2)
    assert history.epoch.tolist() == [1, 2]


def fit_three_epochs(loss_fn, checkpoint):
    model, optimizer, scheduler, loader, _ = setup()
    return fit(model, loader, epochs=3, optimizer=optimizer, loss_fn=loss_fn, scheduler=scheduler, seed=3,
               device="cpu", checkpoint=checkpoint, progress=False)


def test_non_finite_loss_stops_with_a_helpful_message_and_keeps_the_checkpoint(tmp_path):
    calls = {"n": 0}
    batches_per_epoch = math.ceil(42 / 8)

    def loss_turning_nan(output, y):
        calls["n"] += 1
        loss = rate_loss(output, y)
        return loss * math.nan if calls["n"] == batches_per_epoch + 2 else loss

    path = tmp_path / "ckpt.pt"
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 2") as info:
        fit_three_epochs(loss_turning_nan, path)
    message = str(info.value)
    assert "nan" in message and "learning rate" in message and "grad_clip" in message
    assert isinstance(info.value, RuntimeError)
    assert read_checkpoint(path)["epoch"] == 1
    history = fit_three_epochs(rate_loss, path)  # the last good checkpoint resumes
    assert history.epoch.tolist() == [1, 2, 3]


def test_non_finite_gradient_is_caught():
    def loss_with_nan_gradient(output, y):
        # sqrt has an infinite derivative at 0: the loss is finite, its gradient is NaN
        return rate_loss(output, y) + torch.sqrt((output * 0).sum())

    with pytest.raises(NonFiniteLossError, match="gradient norm"):
        fit_three_epochs(loss_with_nan_gradient, None)


def test_grad_clip_bounds_the_update():
    x, y = dataset(n=8)[:]

    def step_size(grad_clip):
        model = TinySNN(0)
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        loader = make_loader(TensorDataset(x, y), batch_size=8)
        fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=rate_loss, device="cpu", progress=False,
            grad_clip=grad_clip)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        return (after - before).norm().item()

    assert step_size(None) > 1e-3
    assert step_size(1e-3) == pytest.approx(1e-3, rel=1e-4)


def test_time_axis_is_moved_to_the_front():
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(N_IN, N_CLASSES)

        def forward(self, x):
            seen.append(tuple(x.shape))
            return self.fc(x)

    loader = make_loader(dataset(n=4), batch_size=4)  # batches [B=4, T=5, N_IN]
    model = Recorder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=rate_loss, device="cpu", progress=False)
    evaluate(model, loader, device="cpu", time_axis=None, accuracy_fn=None)
    assert seen == [(T, 4, N_IN), (4, T, N_IN)]
    with pytest.raises(ValueError, match="time_axis"):
        evaluate(model, loader, device="cpu", time_axis=3)


def test_evaluate_matches_a_direct_computation_and_resets_state():
    model, _, _, _, _ = setup()
    model.train()
    data = dataset(n=10, seed=5)
    loader = make_loader(data, batch_size=4, shuffle=False)
    first = evaluate(model, loader, rate_loss, device="cpu")
    second = evaluate(model, loader, rate_loss, device="cpu")
    assert first == second  # neuron state does not leak from one pass into the next
    assert model.training  # mode restored

    x, y = data[:]
    model.eval()
    with torch.no_grad():
        functional.reset_net(model)
        output = model(x.transpose(0, 1))
    losses = nn.functional.cross_entropy(output.mean(0), y, reduction="none")
    correct = (output.sum(0).argmax(1) == y).float()
    assert first["n"] == 10
    assert first["loss"] == pytest.approx(losses.mean().item(), rel=1e-5)
    assert first["accuracy"] == pytest.approx(correct.mean().item())


def test_progress_flag(capfd):
    run(epochs=1)
    assert capfd.readouterr().err == ""
    model, optimizer, _, loader, _ = setup()
    fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=rate_loss, device="cpu", progress=True)
    assert "fit" in capfd.readouterr().err


def test_fit_rejects_bad_arguments():
    model, optimizer, _, loader, _ = setup()
    with pytest.raises(ValueError, match="epochs"):
        fit(model, loader, epochs=0, optimizer=optimizer, loss_fn=rate_loss, device="cpu", progress=False)
    with pytest.raises(ValueError, match="grad_clip"):
        fit(model, loader, epochs=1, optimizer=optimizer, loss_fn=rate_loss, device="cpu", progress=False,
            grad_clip=-1.0)
