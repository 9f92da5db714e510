"""snnlib.experiment.run_grid: the tidy table, the cache, forked workers giving the same numbers."""

import pytest
import torch

from snnlib import experiment
from snnlib.experiment import run_grid

CALLS = []


def train_tiny(arm, params, seed):
    """A real (tiny) training run: a linear model fitted by a few SGD steps."""
    CALLS.append((arm, seed))
    torch.manual_seed(seed)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1 * torch.randn(64)
    w = torch.zeros(4, requires_grad=True)
    for _ in range(params["steps"]):
        loss = ((x @ w - y) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, w)
        w = (w - params["lr"] * grad).detach().requires_grad_()
    return {"loss": float(loss.detach()), "threads": torch.get_num_threads(), "weights": w.detach(), "name": arm}


ARMS = {"slow": {"lr": 0.01, "steps": 20}, "fast": {"lr": 0.1, "steps": 20}}


def test_table_outputs_and_pairing(tmp_path):
    res = run_grid(train_tiny, ARMS, [0, 1, 2], key="demo", root=tmp_path, workers=1, progress=False)
    assert list(res.table.columns) == ["arm", "seed", "loss", "threads", "name"]  # tensors stay in outputs
    assert len(res.table) == 6 and set(res.table["threads"]) == {1}
    assert res.outputs[("fast", 2)]["weights"].shape == (4,)
    fast, slow = res.paired("loss", "fast", "slow")
    assert list(fast.index) == [0, 1, 2] and (fast < slow).all()  # the larger step size fits better in 20 steps
    with pytest.raises(KeyError, match="no arm 'medium'"):
        res.values("loss", "medium")
    with pytest.raises(KeyError, match="no metric 'acc'"):
        res.values("acc", "fast")


def test_second_run_loads_from_the_cache_and_a_changed_param_reruns(tmp_path):
    run_grid(train_tiny, ARMS, [0, 1], key="demo", root=tmp_path, workers=1, progress=False)
    CALLS.clear()
    again = run_grid(train_tiny, ARMS, [0, 1], key="demo", root=tmp_path, workers=1, progress=False)
    assert CALLS == [] and len(again.table) == 4
    run_grid(train_tiny, {**ARMS, "fast": {"lr": 0.2, "steps": 20}}, [0, 1], key="demo", root=tmp_path, workers=1,
             progress=False)
    assert sorted(CALLS) == [("fast", 0), ("fast", 1)]


def test_a_changed_context_reruns_everything(tmp_path):
    run_grid(train_tiny, ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False, context={"epochs": 3})
    CALLS.clear()
    run_grid(train_tiny, ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False, context={"epochs": 3})
    assert CALLS == []
    run_grid(train_tiny, ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False, context={"epochs": 4})
    assert sorted(CALLS) == [("fast", 0), ("slow", 0)]


def test_unreadable_cache_file_is_recomputed_with_a_warning(tmp_path):
    run_grid(train_tiny, ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False)
    for path in (tmp_path / ".cache" / "experiments" / "demo" / "grid").glob("*.pt"):
        path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        res = run_grid(train_tiny, ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False)
    assert len(res.table) == 2


def test_forked_workers_give_the_same_numbers_as_one_process(tmp_path):
    serial = run_grid(train_tiny, ARMS, [0, 1, 2], key="a", root=tmp_path, workers=1, progress=False)
    forked = run_grid(train_tiny, ARMS, [0, 1, 2], key="b", root=tmp_path, workers=2, progress=False)
    assert serial.table.equals(forked.table)
    assert torch.equal(serial.outputs[("slow", 1)]["weights"], forked.outputs[("slow", 1)]["weights"])


def test_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="at least one arm"):
        run_grid(train_tiny, {}, [0], key="demo", root=tmp_path)
    with pytest.raises(ValueError, match="distinct non-negative"):
        run_grid(train_tiny, ARMS, [0, 0], key="demo", root=tmp_path)
    with pytest.raises(TypeError, match="returned list"):
        run_grid(lambda arm, params, seed: [1], ARMS, [0], key="demo", root=tmp_path, workers=1, progress=False)
    monkeypatch.setenv("SNNLIB_WORKERS", "0")
    with pytest.raises(ValueError, match="SNNLIB_WORKERS"):
        experiment.default_workers()
    monkeypatch.setenv("SNNLIB_WORKERS", "3")
    assert experiment.default_workers() == 3
