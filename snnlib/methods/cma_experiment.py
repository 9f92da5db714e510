"""zhou2024 experiment: one run of the Cross-Modality Attention net (for `snnlib.experiment.run_grid`)
on the embedded dual-modal signs or on DVS-SLR, and the claims of config/zhou2024.yaml judged on the grids.

One run (`train_variant`): `CrossModalityAttentionNet(variant)` trained with `rate_mse`, Adam and a
cosine schedule to 0 over the epochs, BPTT (`snnlib.training.fit`). Measured on the test split:
  * accuracy (the class with the most output spikes), and per lighting condition and position;
  * accuracy with each test sample's time steps shuffled (one random permutation per sample, the
    same for both modalities; the generator is seeded by the run's seed): the shuffle test;
  * the last-quarter share of the training-loss decrease, (L[E - E//4] - L[E]) / (L[1] - L[E])
    (`late_share`): the convergence precondition of the claims.

Data (`Splits`): a training and a test set of `(x [T, 2 + C_f, H, W], label)`, the class count, and
each test sample's lighting condition and position (None for sets without them).
  * `sign_splits`: the embedded `DualModalSigns` (C_f = 1, grey APS), split by subject, in memory;
  * `dvs_slr_splits`: DVS-SLR through `load_dataset("dvs_slr", ...)` with the authors' alignment
    (`AlignedDVSSLR`: one event frame per APS interval, padded or cut to `n_steps`, the paper's
    120 of 50 ms; events + RGB, C_f = 3), centre-cropped to `real_crop` and averaged over
    `real_pool` x `real_pool` blocks (ours: a 120-step sample is 216 MB at 260 x 346). Cross-subject
    as the paper: the last `real_test_users` of `real_users` test, the others train. Samples are
    read from disk when the loader asks for them (a reduced 120-step sample, 64 x 84, is still 13 MB);
  * `event_splits`: an event-only set (`[N, T, 2, H, W]`, the shuffle test's converted digits and
    moving dots), centre-cropped to the signs' size and given an all-zero APS channel, so that every
    set feeds the same model.
`make_run(splits)` is the run function for `run_grid` (arm params: set, variant, channels, epochs,
batch_size, lr); `judge_claims` judges every claim of config/zhou2024.yaml from the grids' tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from snnlib.data.datasets import get_spec, load_dataset
from snnlib.data.dual_modal import LIGHTS, POSITIONS, AlignedDVSSLR
from snnlib.methods.cross_modality_attention import EVENT_CHANNELS, CrossModalityAttentionNet, rate_mse
from snnlib.training import fit, make_loader, seed_everything


@dataclass
class Splits:
    """Training and test sets of `(x [T, 2 + C_f, H, W], label)`, the class count, and per test sample
    its lighting condition and position (arrays of names; None where the set has none)."""

    train: Dataset
    test: Dataset
    n_classes: int
    lights: np.ndarray | None = None
    positions: np.ndarray | None = None


def sign_splits(train, test) -> Splits:
    """`Splits` of the embedded signs (`DualModalSigns` train and test), in memory."""
    return Splits(train.tensor_dataset(), test.tensor_dataset(), train.n_classes,
                  np.array([c[1] for c in test.conditions]), np.array([c[2] for c in test.conditions]))


def dvs_slr_splits(cfg: Mapping, data_dir, **options) -> Splits:
    """`Splits` of DVS-SLR, cross-subject (see the module docstring); `options` go to `load_dataset`
    (e.g. `labels`, `lights`, `positions`, `strict`)."""
    users, n_test = list(cfg["real_users"]), int(cfg["real_test_users"])
    if not 0 < n_test < len(users):
        raise ValueError(f"real_test_users must leave both splits a user: {n_test} of {len(users)} users")
    transform = AlignedDVSSLR(cfg["n_steps"], crop=cfg["real_crop"], pool=cfg["real_pool"])
    train, test = (load_dataset("dvs_slr", "all", data_dir, transform=transform, users=chosen, **options)
                   for chosen in (users[:-n_test], users[-n_test:]))
    return Splits(train, test, get_spec("dvs_slr").n_classes, np.array([c[2] for c in test.conditions]),
                  np.array([c[3] for c in test.conditions]))


def _event_tensors(dataset, size: int, n: int | None) -> TensorDataset:
    x, y = dataset.tensor_dataset().tensors
    x, y = (x[:n], y[:n]) if n else (x, y)
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    x = x[..., top:top + size, left:left + size]
    return TensorDataset(torch.cat([x, torch.zeros_like(x[:, :, :1])], dim=2), y.long())


def event_splits(train, test, n_classes: int, *, size: int, n_train: int | None = None,
                 n_test: int | None = None) -> Splits:
    """`Splits` of an event-only set (the first `n_train` / `n_test` samples, centre-cropped to
    `size` x `size`, an all-zero APS channel appended)."""
    return Splits(_event_tensors(train, size, n_train), _event_tensors(test, size, n_test), n_classes)


def late_share(losses) -> float:
    """(L[E - E//4] - L[E]) / (L[1] - L[E]): the share of the loss decrease made in the last quarter."""
    losses = np.asarray(losses, dtype=float)
    if len(losses) < 4:
        return float("nan")
    total = losses[0] - losses[-1]
    return float((losses[-1 - len(losses) // 4] - losses[-1]) / total) if total > 0 else float("inf")


def predict(model: torch.nn.Module, loader, seed: int, device="cpu") -> tuple[torch.Tensor, ...]:
    """(labels, predictions, predictions with each sample's steps shuffled) over `loader` (`[B, T, ...]`)."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    model.eval()
    labels, ordered, shuffled = [], [], []
    with torch.no_grad():
        for x, y in loader:
            order = torch.stack([torch.randperm(x.shape[1], generator=generator) for _ in range(len(x))])
            for out, batch in ((ordered, x), (shuffled, x[torch.arange(len(x))[:, None], order])):
                out.append(model(batch.movedim(1, 0).to(device)).sum(0).argmax(1).cpu())
            labels.append(torch.as_tensor(y))
    return torch.cat(labels), torch.cat(ordered), torch.cat(shuffled)


def _per_condition(correct: np.ndarray, where: np.ndarray | None, names) -> dict:
    if where is None:
        return {}
    return {f"acc_{c}": float(correct[where == c].mean()) if (where == c).any() else float("nan") for c in names}


def train_variant(splits: Splits, params: Mapping, seed: int, *, device="cpu", eval_batch_size: int = 256) -> dict:
    """Train and evaluate `params["variant"]` on `splits` (see the module docstring); the run's dict."""
    x0, _ = splits.train[0]
    seed_everything(seed)
    model = CrossModalityAttentionNet(params["variant"], splits.n_classes, frame_channels=x0.shape[1] - EVENT_CHANNELS,
                                      height=x0.shape[-2], width=x0.shape[-1], time_steps=x0.shape[0],
                                      channels=tuple(params["channels"])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=params["epochs"])
    history = fit(model, make_loader(splits.train, params["batch_size"], seed=seed), epochs=params["epochs"],
                  optimizer=optimizer, loss_fn=rate_mse, scheduler=scheduler, seed=seed, device=device,
                  progress=False)
    labels, ordered, shuffled = predict(model, DataLoader(splits.test, batch_size=eval_batch_size), seed, device)
    correct = (ordered == labels).float().numpy()
    return {"test_acc": float(correct.mean()), "train_acc": float(history.train_acc.iloc[-1]),
            "final_loss": float(history.train_loss.iloc[-1]), "late_share": late_share(history.train_loss),
            "shuffled_acc": float((shuffled == labels).float().mean()),
            **_per_condition(correct, splits.lights, LIGHTS), **_per_condition(correct, splits.positions, POSITIONS),
            "history": history.to_dict("list"), "state": {k: v.cpu() for k, v in model.state_dict().items()}}


def make_run(splits: Mapping[str, Splits], *, device="cpu", eval_batch_size: int = 256):
    """`fn(arm, params, seed)` for `run_grid`: `train_variant` on `splits[params["set"]]`."""
    def run(arm, params, seed):
        return train_variant(splits[params["set"]], params, seed, device=device, eval_batch_size=eval_batch_size)
    return run


def _per_seed(table: pd.DataFrame, arm: str, metric: str = "test_acc") -> pd.Series:
    return table[table.arm == arm].set_index("seed")[metric]


def light_spread(runs: pd.DataFrame) -> pd.Series:
    """Per run: the largest minus the smallest accuracy over the lighting conditions present."""
    per_light = runs[[f"acc_{c}" for c in LIGHTS]]
    return per_light.max(axis=1) - per_light.min(axis=1)


def judge_claims(ledger, runs: pd.DataFrame, shuffle_runs: pd.DataFrame) -> None:
    """Judge every claim of config/zhou2024.yaml: `runs` is the signs grid (arms = variants, on the
    embedded signs or DVS-SLR), `shuffle_runs` the event SNN on the converted set (arm "converted/event")."""
    variants = list(dict.fromkeys(runs.arm))
    acc = {v: _per_seed(runs, v) for v in variants}
    mean = {v: float(a.mean()) for v, a in acc.items()}
    share = {v: _per_seed(runs, v, "late_share") for v in variants}
    converted = {m: _per_seed(shuffle_runs, "converted/event", m) for m in ("test_acc", "shuffled_acc", "late_share")}
    drops = {"signs": acc["event"] - _per_seed(runs, "event", "shuffled_acc"),
             "converted": converted["test_acc"] - converted["shuffled_acc"]}
    ledger.judge("dual_modal_more_temporal_than_converted", a=drops["signs"], b=drops["converted"],
                 preconditions={"arms_above_chance": [mean["event"], float(converted["test_acc"].mean())],
                                "converged": share["event"].tolist() + converted["late_share"].tolist()},
                 measured={"mean drop": {k: float(v.mean()) for k, v in drops.items()}})
    best_single = max(("event", "frame"), key=mean.get)

    def versus(claim, other, note=""):
        ledger.judge(claim, a=acc["cma"], b=acc[other],
                     preconditions={"arms_above_chance": [mean["cma"], mean[other]],
                                    "converged": share["cma"].tolist() + share[other].tolist()},
                     measured={"mean test accuracy": mean}, note=note)

    versus("cma_beats_best_single_modality", best_single, f"best single modality: {best_single}")
    versus("cma_beats_naive_fusion", "naive")
    spread = {v: light_spread(runs[runs.arm == v]).set_axis(_per_seed(runs, v).index) for v in ("cma", "event", "frame")}
    ledger.judge("cma_robust_across_lighting", a=spread["cma"], b=np.minimum(spread["event"], spread["frame"]),
                 preconditions={"arms_above_chance": [mean["cma"], mean["event"], mean["frame"]]},
                 measured={"mean spread across lights": {k: float(v.mean()) for k, v in spread.items()}})
    versus("temporal_attention_contributes", "cma_spatial")
    versus("spatial_attention_contributes", "cma_temporal")
