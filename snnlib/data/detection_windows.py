"""Real event-based detection samples for EAS-SNN (wang2024): Gen1 windows and N-Caltech101 recordings.

Both give ``dataset[i] = (frames, boxes)``: ``frames`` float32 ``[Tm, 2, H, W]`` event counts in
``Tm`` micro bins (oldest first; the sampler's batch-first input is a stack of these), ``boxes``
float32 ``[n, 5]`` = x, y, w, h, class on the input grid (``MovingGlyphs`` gives the same, so the
embedded and real paths share the detector and the box code, ``moving_glyphs.gen1_xywhc``).
Facts: shared/research/papers.md §7; the authors' loaders are ``yolox/data/datasets/gen1.py``
(``GEN1Dataset``, aggregation ``micro_sum``) and ``ncaltech.py`` of ``Windere/EAS-SNN``.

Gen1 (``Gen1Windows``): one sample per distinct box time ``t`` of a recording, holding every box
with that time; its events are those with ``t - window_us <= t_e < t``. As the authors'
``slice_events``, the ``Tm`` bins split the span from the window's first event ``t0`` to its last
``t1``: width ``w = (t1 - t0) // Tm`` (integer microseconds), bin k = ``[t0 + k w, t0 + (k + 1) w)``,
so events at or after ``t0 + Tm w`` (the last one, at least) are not counted; a window spanning
less than ``Tm`` microseconds gives zero frames (w = 0).

N-Caltech101 (``NCaltechBoxes``): one sample per recording, the whole recording (the released
command's ``window 0``) in ``Tm`` bins as above, one box (the annotation's) of its class. As the
authors' ``NCaltech``: BACKGROUND_Google is left out (100 classes, indexed in sorted order), each
class's recordings are shuffled and the first ``ceil(0.8 n)`` train, the next ``int(0.2 n)`` are
the evaluation split ("test" here, their "val"). Their split files are not published (papers.md
§7.2), so the shuffle is this module's (``seed``), not theirs.

Input grid (``letterbox``), as the authors' evaluation transform (``letterbox_image``, no
augmentation): scale ``s = min(W_in / W, H_in / H)``, the sensor image anchored at the top-left
corner of the input, the rest empty. Boxes: corners times ``s``, clipped to the input, and boxes
no more than 1 pixel wide or high after clipping dropped (their ``get_random_data``).

Departures: events are moved to the input grid by ``floor(coordinate * s)`` before counting
(counts are kept; the authors resize the count frames with bilinear interpolation; the same at
``s = 1``); an empty window stays empty (their loader steps further back in time until it finds
events); no training augmentation (random rescaling and flips); the authors' ``int64`` cast of
the sensor boxes before scaling is not copied.

Evaluation filter (Gen1, the Prophesee protocol the authors' ``PSEEEvaluator`` runs, from RVT's
``evaluate_list``): boxes (true and detected) count only at times after ``skip_us`` = 0.5 s into
the recording, with diagonal >= 30 and both sides >= 10 sensor pixels. ``Gen1Windows(...,
skip_us=..., min_box_diag=..., min_box_side=...)`` applies it to the truth and drops windows left
without boxes; ``keep_boxes`` is the same size test for detections.
"""

import functools
import math
from pathlib import Path

import numpy as np
import torch

from snnlib.data.datasets import gen1_boxes_path, read_gen1_boxes
from snnlib.data.events import EVENT_DTYPE, to_frames
from snnlib.data.moving_glyphs import gen1_xywhc

PROPHESEE_FILTER = {"skip_us": 500_000, "min_box_diag": 30.0, "min_box_side": 10.0}
NCALTECH_BACKGROUND = "BACKGROUND_Google"
# Recordings the authors' GEN1Dataset leaves out ("all the labels would be removed after filtering").
GEN1_IGNORED = ("17-04-06_09-57-37_6344500000_6404500000", "17-04-13_19-17-27_976500000_1036500000",
                "17-04-06_15-14-36_1159500000_1219500000", "17-04-11_15-13-23_122500000_182500000")


def micro_bins(events, sensor_size, n_bins):
    """Counts ``[Tm, P, H, W]`` in ``n_bins`` equal integer-width bins from the first event on (module docstring)."""
    width, height, n_pol = sensor_size
    if len(events) == 0 or (int(events["t"][-1]) - int(events["t"][0])) // n_bins == 0:
        return np.zeros((n_bins, n_pol, height, width), dtype=np.float32)
    t0 = int(events["t"][0])
    bin_us = (int(events["t"][-1]) - t0) // n_bins
    return to_frames(events, sensor_size, n_time_bins=n_bins, start_us=t0, duration_us=n_bins * bin_us)


def letterbox_scale(sensor_wh, input_wh):
    """The authors' letterbox factor ``min(W_in / W, H_in / H)``."""
    return min(input_wh[0] / sensor_wh[0], input_wh[1] / sensor_wh[1])


def letterbox_events(events, scale, input_wh):
    """Events moved to the input grid: coordinates ``floor(c * scale)`` (clipped inside the input)."""
    out = np.empty(len(events), dtype=EVENT_DTYPE)
    out["t"], out["p"] = events["t"], events["p"]
    out["x"] = np.minimum(np.floor(events["x"] * scale), input_wh[0] - 1)
    out["y"] = np.minimum(np.floor(events["y"] * scale), input_wh[1] - 1)
    return out


def letterbox_boxes(xywhc, scale, input_wh):
    """Boxes ``[n, 5]`` (x, y, w, h, class, sensor pixels) on the input grid: scaled, clipped, > 1 px kept."""
    xywhc = np.asarray(xywhc, dtype=np.float32).reshape(-1, 5)
    x0 = np.clip(xywhc[:, 0] * scale, 0, input_wh[0])
    y0 = np.clip(xywhc[:, 1] * scale, 0, input_wh[1])
    x1 = np.clip((xywhc[:, 0] + xywhc[:, 2]) * scale, 0, input_wh[0])
    y1 = np.clip((xywhc[:, 1] + xywhc[:, 3]) * scale, 0, input_wh[1])
    out = np.stack([x0, y0, x1 - x0, y1 - y0, xywhc[:, 4]], axis=1).astype(np.float32)
    return out[(out[:, 2] > 1) & (out[:, 3] > 1)]


def keep_boxes(xywh, scale, min_box_diag, min_box_side):
    """Mask of boxes (input pixels) whose sensor-pixel diagonal and sides pass the Prophesee filter."""
    w, h = np.asarray(xywh)[:, 2] / scale, np.asarray(xywh)[:, 3] / scale
    return (w ** 2 + h ** 2 >= min_box_diag ** 2) & (w >= min_box_side) & (h >= min_box_side)


def _subset(n, n_samples, seed):
    """Indices of ``n_samples`` of ``n`` items, seeded and sorted (all of them when None)."""
    if n_samples is None or n_samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, int(n_samples), replace=False))


class _Windows(torch.utils.data.Dataset):
    """Shared part: ``input_size`` (W_in, H_in), ``n_time_bins``; ``batch(idx)`` stacks samples."""

    def __init__(self, sensor_wh, input_size, n_time_bins):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.n_time_bins = int(n_time_bins)
        self.scale = letterbox_scale(sensor_wh, self.input_size)

    def _frames(self, events):
        return micro_bins(letterbox_events(events, self.scale, self.input_size), (*self.input_size, 2),
                          self.n_time_bins)

    def batch(self, idx):
        """(frames [B, Tm, 2, H, W], list of B box tensors [n_i, 5]) of samples ``idx``."""
        items = [self[int(i)] for i in idx]
        return (torch.from_numpy(np.stack([f for f, _ in items])), [torch.from_numpy(b) for _, b in items])


class Gen1Windows(_Windows):
    """Labelled windows of Gen1 recordings (module docstring): ``dataset[i] = (frames [Tm, 2, H, W], boxes [n, 5])``.

    ``recordings``: a ``load_dataset("gen1", split, ...)`` data set, or a list of them (the
    authors train on train and val); ``window_us`` the history window; ``n_samples`` (None: every
    window) drawn with ``seed``; ``skip_us``, ``min_box_diag``, ``min_box_side`` the evaluation
    filter (0: none); ``cached_recordings`` how many recordings' events are kept in memory.
    """

    def __init__(self, recordings, *, n_time_bins=4, window_us=200_000, input_size=(304, 240), n_samples=None,
                 seed=0, skip_us=0, min_box_diag=0.0, min_box_side=0.0, cached_recordings=4):
        self.recordings = list(recordings) if isinstance(recordings, (list, tuple)) else [recordings]
        super().__init__(self.recordings[0].spec.sensor_size[:2], input_size, n_time_bins)
        self.window_us = int(window_us)
        self.filter = (float(min_box_diag), float(min_box_side))
        index = []
        for d, dataset in enumerate(self.recordings):
            for r, path in enumerate(dataset.locations):
                if Path(path).name[: -len("_td.dat")] in GEN1_IGNORED:
                    continue
                boxes = read_gen1_boxes(gen1_boxes_path(path))
                times = np.unique(boxes["t"])
                index += [(d, r, int(t)) for t in times[times >= skip_us] if len(self._boxes_at(boxes, t))]
        self.index = [index[i] for i in _subset(len(index), n_samples, seed)]
        self._read = functools.lru_cache(maxsize=cached_recordings)(lambda d, r: self.recordings[d][r])

    def _boxes_at(self, boxes, t):
        out = letterbox_boxes(gen1_xywhc(boxes[boxes["t"] == t]), self.scale, self.input_size)
        return out[keep_boxes(out, self.scale, *self.filter)]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        d, r, t = self.index[i]
        events, boxes = self._read(d, r)
        lo, hi = np.searchsorted(events["t"], [t - self.window_us, t], side="left")
        return self._frames(events[lo:hi]), self._boxes_at(boxes, t)


class NCaltechBoxes(_Windows):
    """N-Caltech101 detection (module docstring): ``dataset[i] = (frames [Tm, 2, H, W], boxes [1, 5])``.

    ``recordings``: ``load_dataset("ncaltech101", "all", ..., with_boxes=True)``; ``split``
    "train" or "test" of the authors' per-class 80 / 20 split, shuffled with ``seed``.
    """

    def __init__(self, recordings, split, *, n_time_bins=4, input_size=(240, 180), n_samples=None, seed=0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        super().__init__(recordings.spec.sensor_size[:2], input_size, n_time_bins)
        self.recordings = recordings
        self.classes = [c for c in recordings.classes if c != NCALTECH_BACKGROUND]
        rng = np.random.default_rng(seed)
        chosen = []
        for name in sorted(self.classes):
            members = rng.permutation([i for i, t in enumerate(recordings.targets) if recordings.classes[t] == name])
            n_train, n_test = math.ceil(0.8 * len(members)), int(0.2 * len(members))
            chosen += list(members[:n_train] if split == "train" else members[n_train:n_train + n_test])
        chosen = np.sort(np.array(chosen, dtype=np.int64))
        self.index = chosen[_subset(len(chosen), n_samples, seed)]

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        events, (label, (x0, y0, x1, y1)) = self.recordings[int(self.index[i])]
        cls = self.classes.index(self.recordings.classes[label])
        box = letterbox_boxes([[x0, y0, x1 - x0, y1 - y0, cls]], self.scale, self.input_size)
        return self._frames(events), box
