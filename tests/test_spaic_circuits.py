"""The SPAIC circuit case studies (snnlib.methods.spaic_circuits) build and run a few ms, with checkable structure."""

import numpy as np
import pytest

pytest.importorskip("spaic")
from snnlib.methods import spaic_circuits as sc  # noqa: E402


def test_microcircuit_sizes_and_rates():
    kw = dict(scale=0.002, duration=20.0, dt=0.5, w=0.015, w_bg=0.005, g=5.0, tau_m=10.0, bg_rate=8.0, seed=0)
    spec = sc.microcircuit_description(**kw)
    assert spec.background.shape == (40, sum(spec.sizes))
    assert all(w.shape == (spec.sizes[sc.POPULATIONS.index(post)], spec.sizes[sc.POPULATIONS.index(pre)])
               for (pre, post), w in spec.weights.items())
    r = sc.microcircuit(spec)
    assert r["sizes"] == {p: max(1, round(n * 0.002)) for p, n in zip(sc.POPULATIONS, sc.PD_SIZES)}
    for p in sc.POPULATIONS:
        assert r["spikes"][p].shape == (40, r["sizes"][p])
        assert set(np.unique(r["spikes"][p])) <= {0.0, 1.0}
    assert sum(r["rates_hz"].values()) > 0
    silent = sc.microcircuit(sc.microcircuit_description(**dict(kw, bg_rate=0.0)))
    assert sum(silent["rates_hz"].values()) == 0  # no background, no activity: the drive is the Poisson input


def test_thermotaxis_warming_switches_afd_aiy_on_and_aiz_off():
    kw = dict(n=4, duration=200.0, dt=0.2, t_start=15, t_end=15, t_cultivation=20, gain_pa=150, bias_pa=600,
              w_exc=150000, w_inh=150000, noise_pa=100, seed=0)
    cold = sc.thermotaxis(**kw)
    warm = sc.thermotaxis(**dict(kw, t_start=25, t_end=25))
    assert cold["spikes"]["AFD"].shape == (1000, 4)
    rate = lambda r, k: r["spikes"][k][500:].mean()  # noqa: E731  after the onset transient
    assert rate(warm, "AFD") > rate(cold, "AFD") and rate(warm, "AIY") > rate(cold, "AIY")
    assert rate(warm, "AIZ") < rate(cold, "AIZ")


def test_sheet_kernel_shift_and_wave_moves_along_x():
    k = sc.sheet_kernel(6, sigma=1.0, shift=1.0, amplitude=1.0, inhibition=0.0)
    # target (0, 1) receives most from source (0, 0): one site ahead along x
    assert k[1, 0] == pytest.approx(1.0) and k[0, 1] < k[1, 0]
    r = sc.travelling_wave(side=12, duration=40.0, dt=1.0, tau=10.0, rho=1.0, sigma=2.0, shift=1.0,
                           amplitude=0.075, inhibition=0.005, kick=1.0, kick_ms=5.0)
    assert r["rates"].shape == (40, 12, 12) and (r["rates"] >= 0).all()
    assert r["x_peak"][-1] > r["x_peak"][5] + 1  # drifted forward by more than a site
    still = sc.travelling_wave(side=12, duration=40.0, dt=1.0, tau=10.0, rho=1.0, sigma=2.0, shift=0.0,
                               amplitude=0.075, inhibition=0.005, kick=1.0, kick_ms=5.0)
    assert abs(np.angle(np.exp(2j * np.pi * (still["x_peak"][-1] - still["x_peak"][5]) / 12))) < 0.1
