"""zhou2024 experiment (snnlib.methods.cma_experiment): the data: real path end to end on DVS-SLR files
fabricated in the authors' layout, the reduced alignment, and the experiment's helpers."""

import math

import numpy as np
import pytest
import torch
from test_dual_modal import fabricate_dvs_slr_sample
from torch.utils.data import TensorDataset

from snnlib.claims import ClaimLedger
from snnlib.data import load_dataset
from snnlib.data.datasets import DVS_SLR_LABELS
from snnlib.data.dual_modal import AlignedDVSSLR
from snnlib.experiment import run_grid
from snnlib.methods import cma_experiment as cmx
from snnlib.methods.cross_modality_attention import VARIANTS

USERS, LABELS, LIGHTS = ("user3", "user12"), ("eat", "you"), ("brightLED", "naturalLight")
CFG = {"real_users": list(USERS), "real_test_users": 1, "n_steps": 3, "real_crop": [256, 336], "real_pool": 4}
OPTIONS = dict(labels=LABELS, lights=LIGHTS, positions=("front",), strict=False)  # a subset: counts differ


@pytest.fixture
def dvs_slr_dir(tmp_path):
    rng = np.random.default_rng(1)
    for user in USERS:
        for label in LABELS:
            for light in LIGHTS:
                fabricate_dvs_slr_sample(tmp_path / "dvs_slr", user, label, light, "front", rng)
    return tmp_path


def test_reduced_alignment_is_the_centre_block_mean(dvs_slr_dir):
    with pytest.warns(UserWarning):
        recording = load_dataset("dvs_slr", "all", dvs_slr_dir, users=USERS[:1], **OPTIONS)[0][0]
    x_full, x = AlignedDVSSLR(3)(recording), AlignedDVSSLR(3, crop=(256, 336), pool=4)(recording)
    assert x.shape == (3, 5, 64, 84)
    block = x_full[:, :, 2:258, 5:341].reshape(3, 5, 64, 4, 84, 4).mean((3, 5))
    assert torch.allclose(x, block, atol=1e-6)
    assert x[:, :2].sum() * 16 == pytest.approx(x_full[:, :2, 2:258, 5:341].sum().item())
    with pytest.raises(ValueError, match="larger than"):
        AlignedDVSSLR(3, crop=(264, 346))(recording)


def test_dvs_slr_trains_every_variant_and_judges_every_claim(dvs_slr_dir, tmp_path):
    with pytest.warns(UserWarning):
        signs = cmx.dvs_slr_splits(CFG, dvs_slr_dir, **OPTIONS)
    assert len(signs.train) == len(signs.test) == 4                   # cross-subject: user3 trains, user12 tests
    assert sorted(signs.lights) == ["brightLED", "brightLED", "naturalLight", "naturalLight"]
    x, y = signs.train[0]
    assert x.shape == (3, 5, 64, 84) and y == DVS_SLR_LABELS.index("eat") and signs.n_classes == 21
    g = torch.Generator().manual_seed(0)
    converted = cmx.Splits(TensorDataset(torch.rand(6, 3, 3, 8, 8, generator=g), torch.arange(6) % 2),
                           TensorDataset(torch.rand(4, 3, 3, 8, 8, generator=g), torch.arange(4) % 2), 2)
    run = cmx.make_run({"signs": signs, "converted": converted})
    params = dict(channels=[2, 4], epochs=1, batch_size=2, lr=0.01)
    seeds = [0, 1]
    grid = run_grid(run, {v: dict(params, set="signs", variant=v) for v in VARIANTS}, seeds, key="zhou2024",
                    tag="test", workers=1, root=tmp_path, progress=False)
    sgrid = run_grid(run, {"converted/event": dict(params, set="converted", variant="event")}, seeds,
                     key="zhou2024", tag="test-shuffle", workers=1, root=tmp_path, progress=False)
    runs = grid.table
    assert len(runs) == len(VARIANTS) * len(seeds)
    assert runs.test_acc.between(0, 1).all() and runs.shuffled_acc.between(0, 1).all()
    assert runs.acc_brightLED.notna().all() and runs.acc_dimLED.isna().all()   # no dim-light test sample
    readout = grid.outputs[("naive", 0)]["state"]["readout.weight"]
    assert readout.shape == (21, 2 * 4 * 16 * 21)                     # both branches on 64 x 84 frames, pooled by 4
    ledger = ClaimLedger.from_config("zhou2024", "smoke", "real", seeds)
    cmx.judge_claims(ledger, runs, sgrid.table)
    assert [c.id for c in ledger.claims] == list(ledger.specs)
    for claim in ledger.claims:
        assert claim.n == 2 and math.isfinite(claim.estimate)
        assert claim.verdict == "untested" and "seed(s)" in claim.reason  # 2 seeds, 1 epoch: nothing decided


def test_event_splits_crop_and_append_an_empty_aps_channel():
    class Events:
        def __init__(self, n):
            self.x = torch.arange(n * 2 * 2 * 6 * 6, dtype=torch.float32).reshape(n, 2, 2, 6, 6)

        def tensor_dataset(self):
            return TensorDataset(self.x, torch.zeros(len(self.x)))

    train, test = Events(5), Events(3)
    splits = cmx.event_splits(train, test, 4, size=4, n_train=2)
    x, y = splits.train.tensors
    assert x.shape == (2, 2, 3, 4, 4) and len(splits.test) == 3 and y.dtype == torch.long
    assert torch.equal(x[:, :, :2], train.x[:2, :, :, 1:5, 1:5]) and not x[:, :, 2].any()


def test_late_share():
    assert cmx.late_share([4.0, 3.0, 2.0, 1.5, 1.0]) == pytest.approx(0.5 / 3.0)
    assert math.isnan(cmx.late_share([2.0, 1.0, 0.5]))
    assert cmx.late_share([1.0, 1.0, 1.0, 1.0]) == math.inf
