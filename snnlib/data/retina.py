"""A simulated retina: GLM ganglion cells driven by jittered natural images (scikit-image's photographs).

Stimulus (`natural_movie`): a P x P window (P = 8 * `scale` pixels) moves over a grey-scale
photograph from scikit-image's wheel (camera, astronaut, coffee, ... read as PNG files with Pillow;
skimage itself is not imported) with fixational jitter (a Gaussian random walk, `jitter` pixels per
frame) and a saccade to a new random place every `saccade_every` frames; each frame is block-averaged
to 8 x 8 and scaled by the image's own mean and standard deviation. So the contrast of the movie
changes at every saccade, as when a real eye scans a scene.

Cells (`RetinaCells`, `simulate_responses`): N GLM ganglion cells, ON or OFF, with a
difference-of-Gaussians receptive field centred on a point of the 8 x 8 grid, a biphasic temporal
filter over `filter_frames` frames, slow contrast adaptation and a post-spike (refractory) filter:

    g[t, n]   = sign_n * sum_{k, pixel} K_t[k] K_s[n, pixel] x[t - k, pixel]     linear drive
    c[t, n]   = (1 - 1/tau_a) c[t-1, n] + (1/tau_a) |g[t, n]|                      running contrast
    lambda[t] = exp(b_n + gain * g[t, n] / (c0 + c[t-1, n]) + sum_{j=1..H} h[j] y[t-j, n])
    P(y[t, n] = 1) = 1 - exp(-lambda[t, n])                                        one bin per frame

The adaptation time constant tau_a (default 60 frames) is longer than the baselines' stimulus
window (20 frames): a model with memory can track the adaptation state, a fixed-window one only
partly. That is a property of real retinas (contrast adaptation over seconds; Baccus & Meister
2002) put in on purpose, stated here so that nobody mistakes it for a finding.

Repeated trials: the same stimulus with independent spike noise (`trials`), so PSTHs and trial
variability can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from snnlib.checks import positive_int

IMAGES = ("camera", "astronaut", "coffee", "chelsea", "coins", "moon", "page", "grass", "gravel", "brick",
          "horse", "motorcycle_left")
GRID = 8


def load_image(name: str) -> np.ndarray:
    """A scikit-image sample photograph as grey levels in [0, 1] (read from the installed wheel)."""
    from PIL import Image

    if name not in IMAGES:
        raise ValueError(f"image must be one of {IMAGES}, got {name!r}")
    try:
        path = Path(metadata.distribution("scikit-image").locate_file(f"skimage/data/{name}.png"))
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("the natural images ship with scikit-image: "
                                "pip install --no-deps scikit-image==0.26.0 (see requirements.lock)") from None
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def natural_movie(n_frames: int, image: str, seed: int, *, scale: int = 4, jitter: float = 1.0,
                  saccade_every: int = 80) -> np.ndarray:
    """A jittered-image movie [n_frames, 64] (8 x 8 frames flattened), in units of the image's contrast."""
    n_frames, scale = positive_int("n_frames", n_frames), positive_int("scale", scale)
    img = load_image(image)
    img = (img - img.mean()) / img.std()
    rng = np.random.default_rng(seed)
    size = GRID * scale
    hi = np.array(img.shape) - size

    def place():
        return rng.uniform(0, hi)

    pos = place()
    frames = np.empty((n_frames, GRID * GRID), np.float32)
    for t in range(n_frames):
        if t and t % saccade_every == 0:
            pos = place()
        pos = np.clip(pos + rng.normal(0.0, jitter, 2), 0, hi)
        r, c = np.round(pos).astype(int)
        patch = img[r:r + size, c:c + size]
        frames[t] = patch.reshape(GRID, scale, GRID, scale).mean((1, 3)).ravel()
    return frames


@dataclass(frozen=True)
class RetinaCells:
    """Parameters of N simulated ganglion cells (see the module docstring)."""

    spatial: np.ndarray   # [N, 64] difference-of-Gaussians receptive fields, ON (+) or OFF (-) sign folded in
    temporal: np.ndarray  # [K] biphasic temporal filter, K[0] for the current frame
    history: np.ndarray   # [H] post-spike filter h[1..H]
    bias: np.ndarray      # [N] log baseline rate per bin
    gain: float
    tau_adapt: float
    c0: float


def make_cells(n_cells: int, seed: int, *, filter_frames: int = 12, tau_adapt: float = 60.0,
               base_rate: float = 0.04, gain: float = 2.5) -> RetinaCells:
    """N cells on random grid positions, alternating ON/OFF, with the filters described above."""
    n_cells = positive_int("n_cells", n_cells)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:GRID, 0:GRID]
    spatial = []
    for n in range(n_cells):
        cy, cx = rng.uniform(1.5, GRID - 2.5, 2)
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        dog = np.exp(-d2 / (2 * 1.0 ** 2)) - 0.3 * np.exp(-d2 / (2 * 2.5 ** 2))
        spatial.append((1 if n % 2 == 0 else -1) * dog.ravel() / np.abs(dog).sum())
    k = np.arange(filter_frames, dtype=float)
    temporal = np.sin(np.pi * k / (filter_frames / 1.5)) * np.exp(-k / (filter_frames / 4))
    temporal /= np.abs(temporal).sum()
    history = np.array([-6.0, -3.0, -1.5, -0.7, -0.3, -0.1])
    bias = np.log(np.full(n_cells, base_rate)) + rng.normal(0, 0.2, n_cells)
    return RetinaCells(np.asarray(spatial, np.float32), temporal, history, bias, gain, tau_adapt, 0.05)


def linear_drive(cells: RetinaCells, movie: np.ndarray) -> np.ndarray:
    """g [T, N]: the spatio-temporally filtered movie [T, 64] (zeros before the start)."""
    spat = movie @ cells.spatial.T  # [T, N]
    K = len(cells.temporal)
    padded = np.concatenate([np.zeros((K - 1, spat.shape[1])), spat])
    return sum(cells.temporal[k] * padded[K - 1 - k: K - 1 - k + len(spat)] for k in range(K))


def simulate_responses(cells: RetinaCells, movie: np.ndarray, trials: int, seed: int) -> np.ndarray:
    """Spikes [T, trials, N] (uint8) of the cells to the movie [T, 64], independent noise per trial."""
    trials = positive_int("trials", trials)
    g = linear_drive(cells, movie)
    T, N = g.shape
    rng = np.random.default_rng(seed)
    H = len(cells.history)
    c = np.zeros(N)
    drive = np.empty_like(g)
    for t in range(T):  # adaptation depends on the stimulus only: the same for every trial
        drive[t] = cells.gain * g[t] / (cells.c0 + c)
        c = c + (np.abs(g[t]) - c) / cells.tau_adapt
    spikes = np.zeros((T + H, trials, N), np.uint8)
    for t in range(T):
        hist = np.tensordot(cells.history, spikes[t:t + H][::-1].astype(float), axes=(0, 0))  # y[t-1] first
        lam = np.exp(np.minimum(cells.bias + drive[t] + hist, 3.0))
        spikes[t + H] = rng.random((trials, N)) < -np.expm1(-lam)
    return spikes[H:]
