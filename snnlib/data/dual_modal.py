"""DAVIS-style dual-modal data: APS frames and events of one scene, aligned step by step (zhou2024).

Alignment (`align_streams`, `align_recording`; the DVS-SLR authors' `dvssign_dataset.py`, papers.md
§2.2, rewritten): given events and APS frames with timestamps,
  1. keep the APS frames that cover the events' time span: from the last frame at or before the
     first event to the first frame at or after the last event;
  2. one event frame per APS inter-frame interval: step k counts the events with
     frame_t[k] <= t < frame_t[k + 1], per polarity ([2, H, W], channel 0 OFF, 1 ON as `to_frames`);
  3. the APS frame of step k is frame k + 1 (the first frame is dropped, as the authors do), so
     both streams have N - 1 steps;
  4. pad (repeating the last step) or cut both to `n_steps` (the authors: 6 s / 50 ms = 120).
The authors frame events with spikingjelly's `integrate_events_segment_to_frame`; here numpy does
the same count per pixel and polarity.

Generator (`DualModalSigns`): "signs" whose label is a pair (hand shape, movement):
  * hand shape: a real handwritten digit of scikit-learn's set (one of `shapes`), a different
    writer's instance per subject, drawn bright on a darker background;
  * movement: one of `TRAJECTORIES`, two axes x two directions along the same line, so the
    axis is visible in any frame but the direction only in the order of the frames or in the
    events' polarity (the leading edge brightens: ON; the trailing edge darkens: OFF);
  * label = shape_index * 4 + trajectory_index;
  * subject style (drawn once per subject from the seed): glyph size, speed (the fraction of the
    window the crossing takes), positional jitter per rendered frame, the glyph instance;
  * lighting (mirroring DVS-SLR's brightLED / dimLED / naturalLight, `LIGHTS`): background and
    glyph contrast, APS read noise, event-threshold mismatch and background event rate, and (natural
    light) a slow global flicker that reaches both sensors;
  * position (`POSITIONS`, DVS-SLR's front / back): the glyph's scale and its offset from the centre;
  * APS: `n_steps + 1` frames at `frame_rate_hz`, each the mean of the rendered scene over its
    exposure (motion blur) plus Gaussian read noise, clipped to [0, 1] and stored 8-bit; events:
    the scene rendered `SUBFRAMES` times per frame interval through the project's `DVSSimulator`;
    both aligned by `align_streams`, so a sample is `[n_steps, 3, H, W]` (2 event channels, 1 APS).
  * split by subject (DVS-SLR's cross-subject protocol): the first `n_train_subjects` subjects
    train, the rest test. Deterministic for a seed; cached (`cached_arrays`) with every parameter
    in the key.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import map_coordinates

from snnlib.checks import positive_int
from snnlib.data.cache import cached_arrays
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.readers import split_at_frames
from snnlib.data.digits import load_sklearn_digits

GENERATOR_VERSION = 1
DVS_SLR_STEPS = 120  # 6 s / 50 ms, the authors' padding length
TRAJECTORIES = ("right", "left", "down", "up")
SUBFRAMES = 6  # rendered scene frames per APS interval (the event simulator's time resolution)
# lighting: scene intensities, APS read noise (sigma), event threshold mismatch (sigma), background
# events per pixel and second, flicker amplitude (relative) -- brightLED / dimLED / naturalLight
LIGHTS = {
    "brightLED": dict(background=0.30, glyph=0.90, read_noise=0.03, threshold_sigma=0.03, noise_hz=0.5, flicker=0.0),
    "dimLED": dict(background=0.06, glyph=0.20, read_noise=0.10, threshold_sigma=0.08, noise_hz=4.0, flicker=0.0),
    "naturalLight": dict(background=0.25, glyph=0.60, read_noise=0.05, threshold_sigma=0.05, noise_hz=1.0,
                         flicker=0.25),
}
POSITIONS = {"front": dict(scale=1.0, offset=(0.0, 0.0)), "back": dict(scale=0.7, offset=(3.0, -3.0))}


def align_streams(events, frames, frame_t, sensor_size, n_steps=DVS_SLR_STEPS):
    """Event frames and APS frames, one step per APS inter-frame interval (see the module docstring).

    ``events``: ``EVENT_DTYPE`` array, time-sorted; ``frames``: ``[N, H, W]`` or ``[N, H, W, C]``;
    ``frame_t``: ``[N]`` increasing; ``sensor_size``: ``(W, H, P)``. Returns float32
    ``(event_frames [n_steps, 2, H, W], aps [n_steps, C, H, W])`` (C = 1 for grey frames).
    """
    width, height = int(sensor_size[0]), int(sensor_size[1])
    frame_t = np.asarray(frame_t, dtype=np.int64)
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or len(frames) != len(frame_t) or frames.shape[1:3] != (height, width):
        raise ValueError(f"frames must be [N, {height}, {width}(, C)] with one time per frame, got shape "
                         f"{frames.shape} for {len(frame_t)} times")
    if len(events) == 0:
        raise ValueError("no events to align: the recording is empty")
    first = max(int(np.searchsorted(frame_t, events["t"][0], side="right")) - 1, 0)
    last = min(int(np.searchsorted(frame_t, events["t"][-1], side="left")), len(frame_t) - 1)
    if last - first < 1:
        raise ValueError(f"the events ({events['t'][0]}..{events['t'][-1]} us) span fewer than two APS frames; "
                         "alignment needs at least one inter-frame interval")
    chunks = split_at_frames(events, frame_t[first:last + 1])
    counts = np.zeros((len(chunks), 2, height, width), dtype=np.float32)
    for k, chunk in enumerate(chunks):
        np.add.at(counts[k], (chunk["p"].astype(np.int64), chunk["y"].astype(np.int64),
                              chunk["x"].astype(np.int64)), 1.0)
    aps = np.moveaxis(frames[first + 1:last + 1], -1, 1).astype(np.float32)
    return _pad_or_cut(counts, n_steps), _pad_or_cut(aps, n_steps)


def _pad_or_cut(steps, n_steps):
    """``steps`` cut to ``n_steps`` or padded by repeating its last step."""
    n_steps = positive_int("n_steps", n_steps)
    if len(steps) >= n_steps:
        return steps[:n_steps]
    return np.concatenate([steps, np.repeat(steps[-1:], n_steps - len(steps), axis=0)])


def align_recording(recording, n_steps=DVS_SLR_STEPS):
    """``align_streams`` of a ``Recording`` with APS frames (an AEDAT4 file, a DVS-SLR sample)."""
    if recording.frames is None:
        raise ValueError("the recording has no APS frames; alignment needs a DAVIS recording with frames")
    return align_streams(recording.events, recording.frames, recording.frame_t, recording.sensor_size, n_steps)


class AlignedDVSSLR:
    """Transform for ``load_dataset("dvs_slr", ..., transform=AlignedDVSSLR())``: one float32 tensor
    ``[n_steps, 2 + 3, 260, 346]`` per sample (event counts, then RGB in [0, 1]), the authors' alignment.

    Optionally reduced after the alignment (ours, to fit the model and memory; the authors' older loaders
    crop ``[2:258, 45:301]``): ``crop = (h, w)`` keeps the centre ``h x w`` pixels, ``pool = k`` then
    averages each ``k x k`` block (event counts become counts per pixel of the block).
    """

    def __init__(self, n_steps=DVS_SLR_STEPS, crop=None, pool=1):
        self.n_steps = positive_int("n_steps", n_steps)
        self.crop = None if crop is None else tuple(positive_int("crop", c) for c in crop)
        self.pool = positive_int("pool", pool)

    def __call__(self, recording):
        events, aps = align_recording(recording, self.n_steps)
        x = torch.from_numpy(np.concatenate([events, aps / 255.0], axis=1))
        if self.crop is not None:
            (h, w), (height, width) = self.crop, x.shape[-2:]
            if h > height or w > width:
                raise ValueError(f"crop {self.crop} is larger than the {height} x {width} frames")
            top, left = (height - h) // 2, (width - w) // 2
            x = x[..., top:top + h, left:left + w]
        return torch.nn.functional.avg_pool2d(x, self.pool) if self.pool > 1 else x


def _trajectory(name, s, size, scale):
    """Glyph centre (x, y) along ``name`` at progress ``s`` in [0, 1]: a line through the sensor's middle."""
    reach = (size - 1) / 2 + 4 * scale
    u = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}[name]
    along = (2 * s - 1) * reach
    return (size - 1) / 2 + along * u[0], (size - 1) / 2 + along * u[1]


def render_scene(glyph, centres, size, glyph_px):
    """Glyph ``[8, 8]`` in [0, 1] drawn ``glyph_px`` wide at each centre ``[F, 2]``: ``[F, size, size]``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    k = glyph.shape[0] / glyph_px
    out = np.empty((len(centres), size, size))
    for f, (cx, cy) in enumerate(centres):
        coords = [(yy - cy) * k + (glyph.shape[0] - 1) / 2, (xx - cx) * k + (glyph.shape[1] - 1) / 2]
        out[f] = map_coordinates(glyph, coords, order=1, cval=0.0)
    return out


def _subject_styles(n_subjects, n_shapes, seed):
    """Per subject: glyph size (px), crossing fraction of the window, jitter (px), glyph instance per shape."""
    rng = np.random.default_rng([seed, 7])
    return [dict(glyph_px=rng.uniform(10.0, 14.0), crossing=rng.uniform(0.6, 1.0), jitter=rng.uniform(0.0, 0.8),
                 instance=rng.integers(0, 1_000_000, n_shapes)) for _ in range(n_subjects)]


def _sample_movie(glyph, trajectory, style, light, position, n_steps, size, rng):
    """Rendered scene ``[F, size, size]`` (intensity), F = (n_steps + 1) * SUBFRAMES, and its times in frame units."""
    n_render = (n_steps + 1) * SUBFRAMES
    times = np.arange(n_render) / SUBFRAMES  # in APS frame intervals
    start = rng.uniform(0.0, 1.0 - style["crossing"])
    s = np.clip((times / (n_steps + 1) - start) / style["crossing"], 0.0, 1.0)
    scale = POSITIONS[position]["scale"]
    cx, cy = _trajectory(trajectory, s, size, scale)
    dx, dy = POSITIONS[position]["offset"]
    centres = np.stack([cx + dx, cy + dy], axis=1) + rng.normal(0.0, style["jitter"], (n_render, 2))
    lit = LIGHTS[light]
    scene = lit["background"] + (lit["glyph"] - lit["background"]) * render_scene(glyph, centres, size,
                                                                                   style["glyph_px"] * scale)
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.6)  # cycles per APS interval
    return scene * (1.0 + lit["flicker"] * np.sin(2 * np.pi * freq * times + phase))[:, None, None]


def _aps(scene, read_noise, rng):
    """APS frames: the mean over each interval's SUBFRAMES (exposure, motion blur) plus read noise, 8-bit."""
    exposed = scene.reshape(-1, SUBFRAMES, *scene.shape[1:]).mean(1)
    noisy = exposed + rng.normal(0.0, read_noise, exposed.shape)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)


class DualModalSigns(torch.utils.data.Dataset):
    """DAVIS-like dual-modal "signs" (see the module docstring): ``(x [T, 3, H, W] float32, label)``.

    Channels: event counts OFF, ON, then the APS frame in [0, 1]. Arguments: ``split`` "train" or
    "test" (by subject); ``n_subjects``, ``n_train_subjects``; ``shapes`` (digit classes used as hand
    shapes); ``repeats`` per subject, sign, light and position; ``n_steps`` T; ``size`` H = W;
    ``frame_rate_hz`` of the APS; ``seed``; ``data_dir`` (cache under ``<data_dir>/cache``).
    ``conditions``: per sample ``(subject, light, position)``.
    """

    def __init__(self, split="train", n_subjects=10, n_train_subjects=7, shapes=(0, 1, 4), repeats=1, n_steps=8,
                 size=32, frame_rate_hz=20.0, seed=0, data_dir="data"):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not 0 < n_train_subjects < n_subjects:
            raise ValueError(f"need 0 < n_train_subjects < n_subjects, got {n_train_subjects} of {n_subjects}")
        self.n_steps, self.size = positive_int("n_steps", n_steps), positive_int("size", size)
        self.shapes, self.frame_rate_hz = tuple(int(s) for s in shapes), float(frame_rate_hz)
        subjects = range(n_train_subjects) if split == "train" else range(n_train_subjects, n_subjects)
        params = {"version": GENERATOR_VERSION, "split": split, "n_subjects": int(n_subjects),
                  "n_train_subjects": int(n_train_subjects), "shapes": list(self.shapes),
                  "repeats": positive_int("repeats", repeats), "n_steps": self.n_steps, "size": self.size,
                  "frame_rate_hz": self.frame_rate_hz, "seed": int(seed), "lights": LIGHTS, "positions": POSITIONS,
                  "subframes": SUBFRAMES}
        self._arrays = cached_arrays("dual-modal-signs", params,
                                     lambda: self._build(list(subjects), int(n_subjects), int(repeats), int(seed)),
                                     data_dir)
        self.conditions = [(int(s), list(LIGHTS)[li], list(POSITIONS)[po])
                           for s, li, po in self._arrays["conditions"]]

    @property
    def n_classes(self):
        return len(self.shapes) * len(TRAJECTORIES)

    @property
    def labels(self):
        return self._arrays["labels"]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        events = self._arrays["events"][i].astype(np.float32)
        aps = self._arrays["aps"][i][:, None].astype(np.float32) / 255.0
        return torch.from_numpy(np.concatenate([events, aps], axis=1)), int(self.labels[i])

    def tensor_dataset(self):
        """Every sample in memory: x [N, T, 3, H, W] float32, labels [N] int64."""
        x = torch.stack([self[i][0] for i in range(len(self))])
        return torch.utils.data.TensorDataset(x, torch.as_tensor(np.asarray(self.labels), dtype=torch.long))

    def _build(self, subjects, n_subjects, repeats, seed):
        images, digit_labels = load_sklearn_digits()
        small = images[:, 4:24, 4:24][:, ::2, ::2]  # back to ~the 8x8 writing, 10x10 with its margin
        pools = {s: np.flatnonzero(digit_labels == s) for s in self.shapes}
        styles = _subject_styles(n_subjects, len(self.shapes), seed)
        interval_us = 1e6 / self.frame_rate_hz
        frame_t = (np.arange(self.n_steps + 1) * interval_us).astype(np.int64)
        sensor = (self.size, self.size, 2)
        out = {"events": [], "aps": [], "labels": [], "conditions": []}
        for li, light in enumerate(LIGHTS):
            simulator = DVSSimulator(threshold_sigma=LIGHTS[light]["threshold_sigma"],
                                     noise_rate_hz=LIGHTS[light]["noise_hz"], seed=seed * 10 + li)
            jobs = [(subj, sh, tr, po, r) for subj in subjects for sh in range(len(self.shapes))
                    for tr in range(len(TRAJECTORIES)) for po in range(len(POSITIONS)) for r in range(repeats)]
            movies, apss = [], []
            for subj, sh, tr, po, r in jobs:
                rng = np.random.default_rng([seed, subj, sh, tr, li, po, r])
                pool = pools[self.shapes[sh]]
                glyph = small[pool[styles[subj]["instance"][sh] % len(pool)]].astype(np.float64)
                scene = _sample_movie(glyph, TRAJECTORIES[tr], styles[subj], light, list(POSITIONS)[po],
                                      self.n_steps, self.size, rng)
                movies.append(scene)
                apss.append(_aps(scene, LIGHTS[light]["read_noise"], rng))
            times = np.arange(movies[0].shape[0]) * interval_us / SUBFRAMES
            event_lists = simulator.simulate_batch(np.stack(movies, axis=1), times,
                                                   rngs=[[seed, 99, li, j] for j in range(len(jobs))])
            for (subj, sh, tr, po, _), events, aps in zip(jobs, event_lists, apss, strict=True):
                counts, grey = align_streams(events, aps, frame_t, sensor, self.n_steps)
                out["events"].append(np.minimum(counts, 255).astype(np.uint8))
                out["aps"].append(grey[:, 0].astype(np.uint8))
                out["labels"].append(sh * len(TRAJECTORIES) + tr)
                out["conditions"].append((subj, li, po))
        return {"events": np.stack(out["events"]), "aps": np.stack(out["aps"]),
                "labels": np.asarray(out["labels"], dtype=np.int64),
                "conditions": np.asarray(out["conditions"], dtype=np.int64)}
