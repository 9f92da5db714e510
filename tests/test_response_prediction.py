"""ma2023's experiment loop (snnlib.methods.response_prediction): one tiny run per model, deterministic."""

import numpy as np
import pytest

from snnlib.config import load_work_config
from snnlib.methods import response_prediction as rp

TINY = dict(cells=2, clip=6, long_factor=3, train_movies=1, train_trials=1, test_movies=1, test_trials=3,
            val_movies=1, hidden=6, latent=2, tecos_epochs=2, grass_tecos_epochs=2, baseline_epochs=2,
            generated_trials=3, burn_in=4, window=4, glm_history=3, batch_size=8, grass_clip=10,
            grass_stride=200, grass_recordings=[1])


@pytest.fixture(scope="module")
def cfg():
    return {**load_work_config("ma2023", "smoke"), **TINY}


def test_arms_and_clips(cfg):
    arms = rp.arms_for(cfg, "grasshopper")
    assert set(arms) == set(rp.MODELS)
    assert arms["TeCoS-LVM"]["clip"] == 10 and arms["CNN"]["epochs"] == 2
    x, y = rp.clip_set(np.arange(10.0)[:, None], np.arange(10)[:, None], 4, 3)
    assert x.shape == (4, 3, 1) and x[0, :, 0].tolist() == [0, 3, 6] and (y[:, 2, 0] == [6, 7, 8, 9]).all()
    assert rp.short_windows(20, 4, 5) == [4, 9, 14]
    assert rp.loss_change([4.0, 4.0, 2.0, 2.0]) == pytest.approx(0.0)
    assert rp.loss_change([3.0, 3.0, 3.0, 2.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="dataset"):
        rp.dataset_settings(cfg, "cortex")


@pytest.mark.parametrize("dataset", ["retina", "grasshopper"])
def test_train_one_every_model(cfg, dataset):
    arms = rp.arms_for(cfg, dataset)
    d = rp.load_data(arms["CNN"])
    assert rp.load_data(arms["GLM"]) is d  # built once per settings, shared by every model
    scored = len(rp.short_windows(len(d["test"][0][0]), cfg["burn_in"], arms["CNN"]["clip"])) * arms["CNN"]["clip"]
    for model, p in arms.items():
        out = rp.train_one(model, p, 0)
        assert len(out["history"]) == len(out["val_history"]) == p["epochs"]
        assert 1 <= out["best_epoch"] <= p["epochs"]
        assert -1 <= out["psth_r"] <= 1 or np.isnan(out["psth_r"])
        assert np.isfinite(out["ll_gain"]) and np.isfinite(out["loss_change"])
        assert out["example"]["generated"].shape == (scored, 3, d["y"].shape[2])
        assert out["example"]["generated_long"].shape == out["example"]["generated"].shape
        assert (len(out["fano"]["cell"]) > 0) == (dataset == "retina")  # repeated recorded trials only there
        again = rp.train_one(model, p, 0)
        assert again["history"] == out["history"] and (again["example"]["generated"] == out["example"]["generated"]).all()
