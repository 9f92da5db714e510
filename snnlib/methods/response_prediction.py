"""ma2023's experiment: train stimulus -> spike models on clips and score them on held-out stimuli.

One run (`train_one`, a function for `snnlib.experiment.run_grid`) builds a model (TeCoS-LVM,
`latent_variable.TeCoSLVM`; the window CNN or the spike-history GLM, `rate_baselines`) from the
seed, trains it with `latent_variable.fit_sequences` on the training clips of one data set (keeping
the weights of its lowest validation loss) and measures it on the held-out stimuli (`measure`):

  * PSTH correlation: Pearson r between the PSTH of `generated_trials` generated trials and the
    recorded PSTH (both smoothed with a Gaussian of `sigma` bins), per neuron and stimulus, averaged;
    `psth_r` for clips of the trained length (each after `burn_in` warm-up bins), `psth_r_long` for
    one pass over the whole held-out stimulus, the same scored bins;
  * ISI distance: 1-Wasserstein distance (ms) between generated and recorded ISIs, per neuron pooled
    over stimuli, averaged over neurons; van Rossum distance (tau = `vr_tau_bins` bins), mean over
    pairs of generated and recorded trials; Fano factor of counts in `fano_window`-bin windows across
    trials (only where there are repeated recorded trials);
  * log-likelihood gain over a constant-rate model (each neuron's training rate) on held-out recorded
    spikes, teacher-forced, nats per bin and neuron;
  * convergence: relative change of the mean training loss between the last two quarters of epochs
    (`loss_change`), and the epoch of the lowest validation loss (`best_epoch`).

Data sets (`dataset`, cached per process so that run_grid's forked workers inherit them):

  * retina: simulated GLM ganglion cells (`snnlib.data.retina`, data seed 0) driven by jittered
    photographs; training movies on the first 8 photographs, validation movies on the same photographs
    with other jitter and noise, held-out movies on the next photographs with many repeated trials;
  * grasshopper: the nitime locust receptor recordings (`snnlib.data.grasshopper`), envelope z-scored
    with the training part's statistics; training clips from the first `grass_train_fraction` of the
    time minus its last `grass_val_fraction` (validation), held-out: the rest.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from snnlib import spike_statistics as ss
from snnlib.data import grasshopper, retina
from snnlib.methods.latent_variable import TeCoSLVM, fit_sequences
from snnlib.methods.rate_baselines import SpikeHistoryGLM, WindowCNN
from snnlib.training import seed_everything

MODELS = ("TeCoS-LVM", "CNN", "GLM")
_DATA: dict[str, dict] = {}


def clip_set(stim: np.ndarray, spikes: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips [length, M, D] / [length, M, N] starting every `stride` bins of stim [T, D], spikes [T, N]."""
    starts = range(0, len(stim) - length + 1, stride)
    return (np.stack([stim[s:s + length] for s in starts], 1), np.stack([spikes[s:s + length] for s in starts], 1))


def _stack(xs, ys, xv, yv, test, dt, sigma) -> dict:
    return {"x": np.concatenate(xs, 1), "y": np.concatenate(ys, 1), "xv": np.concatenate(xv, 1),
            "yv": np.concatenate(yv, 1), "test": test, "dt": dt, "sigma": sigma}


def retina_data(c: dict) -> dict:
    """Training / validation clips and held-out (movie, trials) pairs of the simulated retina."""
    cells = retina.make_cells(c["cells"], seed=0)
    length = c["burn_in"] + c["long_factor"] * c["clip"]
    clip = c["burn_in"] + c["clip"]
    xs, ys = [], []
    for i in range(c["train_movies"]):
        movie = retina.natural_movie(length, retina.IMAGES[i % 8], seed=100 + i)
        spikes = retina.simulate_responses(cells, movie, c["train_trials"], seed=200 + i)
        for k in range(c["train_trials"]):
            x, y = clip_set(movie, spikes[:, k], clip, c["clip"])
            xs.append(x)
            ys.append(y)
    xv, yv = [], []
    for i in range(c["val_movies"]):  # validation: more training-image movies, one trial each
        movie = retina.natural_movie(length, retina.IMAGES[i % 8], seed=500 + i)
        x, y = clip_set(movie, retina.simulate_responses(cells, movie, 1, seed=600 + i)[:, 0], clip, c["clip"])
        xv.append(x)
        yv.append(y)
    test = []
    for i in range(c["test_movies"]):
        movie = retina.natural_movie(length, retina.IMAGES[8 + i % 4], seed=300 + i)
        test.append((movie, retina.simulate_responses(cells, movie, c["test_trials"], seed=400 + i)))
    return _stack(xs, ys, xv, yv, test, c["retina_frame_ms"], c["psth_sigma"])


def grasshopper_data(c: dict) -> dict:
    """Training / validation clips and held-out (envelope, one trial) pairs of the grasshopper recordings."""
    length = c["burn_in"] + c["long_factor"] * c["clip"]
    clip = c["burn_in"] + c["clip"]
    parts = [grasshopper.split_time(*grasshopper.load_grasshopper(r, c["grass_bin_ms"]), c["grass_train_fraction"])
             for r in c["grass_recordings"]]
    train_env = np.concatenate([tr[0] for tr, _ in parts])
    mean, std = train_env.mean(), train_env.std()
    xs, ys, xv, yv, test = [], [], [], [], []
    for (env, spk), (env_te, spk_te) in parts:
        z = ((env - mean) / std)[:, None]
        cut = int(len(z) * (1 - c["grass_val_fraction"]))  # validation: the end of the training time
        x, y = clip_set(z[:cut], spk[:cut, None], clip, c["grass_stride"])
        xs.append(x)
        ys.append(y)
        x, y = clip_set(z[cut:], spk[cut:, None], clip, clip)
        xv.append(x)
        yv.append(y)
        if len(env_te) < length:
            raise ValueError(f"held-out part ({len(env_te)} bins) shorter than burn_in + long_factor * clip ({length})")
        test.append((((env_te[:length] - mean) / std)[:, None].astype(np.float32), spk_te[:length, None, None]))
    return _stack(xs, ys, xv, yv, test, c["grass_bin_ms"], c["grass_sigma"])


def dataset_settings(cfg: dict, dataset: str) -> dict:
    """The profile's settings with `clip` set to the data set's trained clip length."""
    if dataset not in ("retina", "grasshopper"):
        raise ValueError(f"dataset must be 'retina' or 'grasshopper', got {dataset!r}")
    return dict(cfg, dataset=dataset, clip=cfg["clip"] if dataset == "retina" else cfg["grass_clip"])


def load_data(p: dict) -> dict:
    """The data set `p["dataset"]` for the settings p, built once per process and settings."""
    key = repr(sorted((k, repr(v)) for k, v in p.items() if k not in ("model", "lr", "epochs")))
    if key not in _DATA:
        _DATA[key] = (retina_data if p["dataset"] == "retina" else grasshopper_data)(p)
    return _DATA[key]


def arms_for(cfg: dict, dataset: str) -> dict[str, dict]:
    """run_grid arms (one per model) for one data set: the profile's settings plus model, lr, epochs."""
    common = dataset_settings(cfg, dataset)
    tecos_epochs = cfg["tecos_epochs"] if dataset == "retina" else cfg["grass_tecos_epochs"]
    return {"TeCoS-LVM": dict(common, model="TeCoS-LVM", lr=cfg["tecos_lr"], epochs=tecos_epochs),
            "CNN": dict(common, model="CNN", lr=cfg["cnn_lr"], epochs=cfg["baseline_epochs"]),
            "GLM": dict(common, model="GLM", lr=cfg["glm_lr"], epochs=cfg["baseline_epochs"])}


def build(model: str, n_in: int, n_out: int, p: dict) -> torch.nn.Module:
    if model == "TeCoS-LVM":
        return TeCoSLVM(n_in, n_out, hidden=p["hidden"], latent=p["latent"], beta=p["beta"])
    if model == "CNN":
        return WindowCNN(n_in, n_out, window=p["window"], channels=p["cnn_channels"])
    if model == "GLM":
        return SpikeHistoryGLM(n_in, n_out, window=p["window"], history=p["glm_history"])
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def short_windows(n_bins: int, burn_in: int, clip: int) -> list[int]:
    """Start bins of the scored clips of the trained length (each preceded by burn_in warm-up bins)."""
    return list(range(burn_in, n_bins - clip + 1, clip))


def generate(model: torch.nn.Module, stim: np.ndarray, p: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generated trials on the scored bins [S, G, N]: (trained length, long)."""
    x = torch.from_numpy(np.asarray(stim, np.float32))
    g, G = torch.Generator().manual_seed(10_000 + seed), p["generated_trials"]
    b, clip = p["burn_in"], p["clip"]
    starts = short_windows(len(x), b, clip)
    chunks = torch.stack([x[s - b:s + clip] for s in starts], 1).repeat_interleave(G, 1)
    short = model.generate(chunks, g)[b:]                                   # [clip, chunks * G, N]
    short = short.reshape(clip, len(starts), G, -1).permute(1, 0, 2, 3).reshape(len(starts) * clip, G, -1)
    long = model.generate(x[:, None].expand(-1, G, -1).contiguous(), g)[b:b + len(starts) * clip]
    return short.numpy().astype(np.uint8), long.numpy().astype(np.uint8)


def log_likelihood_gain(model: torch.nn.Module, stim: np.ndarray, rec: np.ndarray, p: dict,
                        train_y: np.ndarray) -> float:
    """Mean over scored bins, trials and neurons of log P(model) - log P(constant rate), teacher-forced."""
    x = torch.from_numpy(np.asarray(stim, np.float32))
    b, clip, R = p["burn_in"], p["clip"], rec.shape[1]
    starts = short_windows(len(x), b, clip)
    xs = torch.stack([x[s - b:s + clip] for s in starts], 1).repeat_interleave(R, 1)
    ys = torch.from_numpy(np.stack([rec[s - b:s + clip] for s in starts], 1).reshape(b + clip, -1, rec.shape[2])).float()
    ll = model.log_likelihood(xs, ys)[b:].numpy()
    return float((ll - ss.constant_rate_log_likelihood(train_y, ys[b:].numpy())).mean())


def measure(model: torch.nn.Module, d: dict, p: dict, seed: int) -> dict:
    """Every held-out measure of one trained model (module docstring), with example trains of stimulus 0."""
    b, dt, sigma = p["burn_in"], d["dt"], d["sigma"]
    out = {k: [] for k in ("r_short", "r_long", "vr", "ll_gain")}
    isi_gen, isi_rec, fano = {}, {}, []
    with torch.no_grad():
        for j, (stim, rec_all) in enumerate(d["test"]):
            short, long = generate(model, stim, p, seed * 100 + j)
            rec = rec_all[b:b + len(short)]
            out["ll_gain"].append(log_likelihood_gain(model, stim, rec_all, p, d["y"][b:]))
            for n in range(rec.shape[2]):
                gen_n, rec_n = short[:, :, n].T, rec[:, :, n].T
                out["r_short"].append(ss.psth_correlation(gen_n, rec_n, sigma))
                out["r_long"].append(ss.psth_correlation(long[:, :, n].T, rec_n, sigma))
                out["vr"].append(ss.mean_van_rossum(gen_n, rec_n[:p["generated_trials"]], p["vr_tau_bins"] * dt, dt))
                isi_gen.setdefault(n, []).append(ss.intervals(gen_n, dt))
                isi_rec.setdefault(n, []).append(ss.intervals(rec_n, dt))
                if len(rec_n) > 1:
                    fano.append({"stimulus": j, "cell": n, "recorded": ss.fano_factor(rec_n, p["fano_window"]),
                                 "generated": ss.fano_factor(gen_n, p["fano_window"])})
            if j == 0:
                example = {"generated": short, "generated_long": long, "recorded": rec}
    isi_d = [ss.isi_distance(np.concatenate(isi_gen[n]), np.concatenate(isi_rec[n])) for n in isi_gen]
    fano = pd.DataFrame(fano, columns=["stimulus", "cell", "recorded", "generated"])
    return {"psth_r": float(np.nanmean(out["r_short"])), "psth_r_long": float(np.nanmean(out["r_long"])),
            "isi_distance": float(np.nanmean(isi_d)), "van_rossum": float(np.mean(out["vr"])),
            "fano_error": float((fano.generated - fano.recorded).abs().mean()) if len(fano) else float("nan"),
            "ll_gain": float(np.mean(out["ll_gain"])), "fano": fano.to_dict("list"), "example": example,
            "isi_generated": np.concatenate([np.concatenate(v) for v in isi_gen.values()]),
            "isi_recorded": np.concatenate([np.concatenate(v) for v in isi_rec.values()])}


def loss_change(losses) -> float:
    """Relative change of the mean loss between the last two quarters of epochs (nan with one epoch)."""
    losses = np.asarray(losses, float)
    q = max(1, len(losses) // 4)
    if len(losses) < 2:
        return float("nan")
    last, before = losses[-q:].mean(), losses[-2 * q:-q].mean()
    return float((before - last) / abs(last))


def train_one(arm: str, p: dict, seed: int) -> dict:
    """Build, train and measure one model on one data set (module docstring); a dict for run_grid."""
    d = load_data(p)
    seed_everything(seed)
    model = build(p["model"], d["x"].shape[2], d["y"].shape[2], p)
    tic = time.process_time()
    hist = fit_sequences(model, torch.from_numpy(d["x"]).float(), torch.from_numpy(d["y"]).float(),
                         epochs=p["epochs"], lr=p["lr"], batch_size=p["batch_size"], seed=seed, burn_in=p["burn_in"],
                         validation=(torch.from_numpy(d["xv"]).float(), torch.from_numpy(d["yv"]).float()))
    train_s = time.process_time() - tic
    return {"final_loss": float(hist["loss"].iloc[-1]), "loss_change": loss_change(hist["loss"]),
            "best_epoch": int(hist["val_loss"].idxmin()) + 1, "train_cpu_s": train_s,
            "history": hist["loss"].tolist(), "val_history": hist["val_loss"].tolist(), **measure(model, d, p, seed)}
