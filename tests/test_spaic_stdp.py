"""SPAIC's STDP feature layer and the noise used for the hybrid (snnlib.methods.spaic_stdp)."""

import numpy as np
import pytest

pytest.importorskip("spaic")
from snnlib.methods import spaic_stdp as st  # noqa: E402

KW = dict(steps=20, dt=1.0, batch=4, input_scale=0.5, inhibition=2.0, tau_m=20.0, v_th=4.0)


def test_pixel_noise_replaces_exactly_the_fraction():
    rng = np.random.default_rng(0)
    x = np.full((5, 100), 2.0, dtype=np.float32)  # outside [0, 1], so replaced pixels are recognisable
    y = st.pixel_noise(x, 0.4, rng)
    assert y.dtype == x.dtype and np.all(x == 2.0)
    assert ((y != 2.0).sum(1) == 40).all()
    assert ((y[y != 2.0] >= 0) & (y[y != 2.0] <= 1)).all()
    assert np.array_equal(st.pixel_noise(x, 0.0, rng), x)


def test_stdp_changes_weights_keeps_d_and_c_norm_and_bounds():
    rng = np.random.default_rng(1)
    images = (rng.random((8, 784)) < 0.2).astype(np.float32)
    w = st.train_stdp(images, n_hidden=6, seed=0, **KW)
    assert w.shape == (6, 784)
    assert w.min() >= 0 and w.max() <= 1
    assert not np.allclose(w, w[0])  # rows differ: not collapsed to one feature
    # SPAIC rescales each row to L1 = 78.4 (Diehl & Cook's 0.1 per input) after every update
    np.testing.assert_allclose(w.sum(1), 78.4, rtol=1e-3)
    # and the update is not the rescaling alone: the initial draw rescaled differs from the result
    w0 = np.random.default_rng(0).random((6, 784)) * 0.3
    assert np.abs(w - 78.4 * w0 / w0.sum(1, keepdims=True)).max() > 1e-3


def test_features_are_rates_and_deterministic():
    rng = np.random.default_rng(2)
    images = rng.random((8, 64)).astype(np.float32)
    w = (rng.random((5, 64)) * 0.3).astype(np.float32)
    a = st.stdp_features(w, images, seed=3, **KW)
    b = st.stdp_features(w, images, seed=3, **KW)
    assert a.shape == (8, 5) and np.array_equal(a, b)
    assert 0 < a.mean() and a.max() <= 1
    assert st.stdp_features(np.zeros_like(w), images, seed=3, **KW).sum() == 0


def test_hybrid_runs_end_to_end_and_refuses_a_silent_layer():
    rng = np.random.default_rng(4)
    x = (rng.random((12, 784)) < 0.3).astype(np.float32)
    y = np.arange(12) % 3
    stca = dict(epochs=1, batch=6, steps=10, dt=1.0, lr=0.01)
    stdp = dict(KW, n_hidden=6, steps=10)
    out = st.hybrid(x, y, x[:6], y[:6], st.pixel_noise(x[:6], 0.4, rng), stdp=stdp, stca=stca, seed=0)
    assert out["weight"].shape == (6, 784)
    assert 0 <= out["test_acc"] <= 1 and 0 <= out["noisy_test_acc"] <= 1 and len(out["loss"]) == 1
    with pytest.raises(ValueError, match="did not spike"):
        st.hybrid(np.zeros_like(x), y, x[:6], y[:6], x[:6], stdp=stdp, stca=stca, seed=0)

