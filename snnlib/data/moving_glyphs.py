"""``MovingGlyphs``: an embedded event-based detection set, real handwritten glyphs crossing a simulated DVS.

A stand-in for Gen1 (cars and pedestrians seen by an ATIS camera) small enough for a CPU: each
sample is the last ``duration_us`` of events before a label time, as the EAS-SNN loader cuts a
history window before each Gen1 box, with one glyph in view. Two classes: a handwritten "0"
(class 0, wide, the "car") and a handwritten "1" (class 1, tall, the "pedestrian"), real digits
from scikit-learn's set (``snnlib.data.digits``; train and test samples draw from disjoint digits).

Movie (time-first ``[F, H, W]``, ``F`` frames equally spaced over ``[0, duration_us]``): the glyph
image, scaled to ``glyph_px`` and by ``brightness``, moves in a straight line at speed ``v`` px/s
in direction ``a``; its top-left corner at time t is

    c(t) = c_end - v (duration_us - t) 1e-6 (cos a, sin a)

and it is drawn by bilinear interpolation on a black canvas. ``c_end`` (where it is at the label
time) is uniform such that the glyph lies fully inside the sensor, ``a`` uniform on the circle,
``v`` log-uniform in ``speed_px_s`` (fast glyphs sweep many pixels: dense events; slow ones few:
sparse events), ``brightness`` uniform in ``BRIGHTNESS``. The default simulator adds
``NOISE_RATE_HZ`` background events per pixel.

Label: one box in Gen1's ``_bbox.npy`` layout (``GEN1_BOX_DTYPE``: t, x, y, w, h, class_id,
confidence, track_id), t = duration_us (the label time, on the sample's clock), (x, y, w, h) the
tight box of the glyph's pixels brighter than ``BOX_LEVEL`` of its peak at the label time,
confidence 1, track_id the sample index; ``speeds`` keeps each sample's v.

Sample ``i`` is ``(frames, box)``: ``frames`` float32 ``[Tm, P, H, W]`` event counts in ``Tm =
n_time_bins`` equal bins over ``[0, duration_us]``, oldest first (EAS-SNN's micro bins; their
loader cuts the span between the first and last event of the window instead, which for a
fixed-length simulated window is the same up to the empty edges); ``box`` the Gen1 record.
Randomness: ``SeedSequence([seed, split, i])`` per sample; cached with every parameter in the key
(``snnlib.data.cache``); bump ``GENERATOR_VERSION`` when the generator changes behaviour.
"""

import math

import numpy as np
from scipy.ndimage import map_coordinates, zoom

from snnlib.data.cache import cached_arrays
from snnlib.data.digits import load_digit_split
from snnlib.data.dvs_simulator import DVSSimulator
from snnlib.data.events import PackedEventSet, to_frames

GENERATOR_VERSION = "1"
GEN1_BOX_DTYPE = np.dtype([("t", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
                           ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")])
CLASS_DIGITS = (0, 1)   # class 0 = handwritten "0" (the "car"), class 1 = handwritten "1" (the "pedestrian")
CLASS_NAMES = ("zero (car)", "one (pedestrian)")
BRIGHTNESS = (0.6, 1.0)
BOX_LEVEL = 0.25
NOISE_RATE_HZ = 2.0
MAX_PX_PER_FRAME = 0.5
_SPLIT_CODE = {"train": 0, "test": 1}


def glyph_images(split, glyph_px, seed=0):
    """(glyphs float64 [N, g, g] in [0, 1], class ids [N]) of the two classes' digits of one split."""
    images, labels, _ = load_digit_split("sklearn", split, seed=seed)
    keep = np.isin(labels, CLASS_DIGITS)
    crop = images[keep][:, 4:24, 4:24]  # the 20x20 digit box
    glyphs = np.clip(zoom(crop.astype(np.float64), (1, glyph_px / 20, glyph_px / 20), order=1), 0.0, 1.0)
    return glyphs, np.searchsorted(CLASS_DIGITS, labels[keep])


def glyph_movie(glyph, end_xy, speed_px_s, angle_rad, *, sensor_hw, duration_us, n_frames):
    """Frames [F, H, W] of `glyph` ending with its top-left corner at `end_xy`, and the times [F] (µs)."""
    times = np.linspace(0.0, float(duration_us), n_frames)
    back = speed_px_s * (duration_us - times) * 1e-6
    corners = np.asarray(end_xy)[None] - back[:, None] * np.array([math.cos(angle_rad), math.sin(angle_rad)])
    h, w = sensor_hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = np.stack([map_coordinates(glyph, [yy - cy, xx - cx], order=1, mode="constant", cval=0.0)
                       for cx, cy in corners])
    return frames, times


def glyph_box(glyph, end_xy):
    """(x, y, w, h) of the glyph's pixels above BOX_LEVEL of its peak, placed at `end_xy`."""
    ys, xs = np.nonzero(glyph >= BOX_LEVEL * glyph.max())
    return end_xy[0] + xs.min(), end_xy[1] + ys.min(), xs.max() - xs.min() + 1.0, ys.max() - ys.min() + 1.0


class MovingGlyphs(PackedEventSet):
    """Handwritten "0"/"1" glyphs moving at varied speeds over a simulated DVS: ``(frames [Tm, P, H, W], box)``.

    Arguments: ``split`` "train"/"test"; ``n_samples``; ``n_time_bins`` Tm; ``sensor_size`` tonic's
    (W, H, P); ``glyph_px``; ``speed_px_s`` (low, high), log-uniform; ``duration_us`` the history
    window; ``seed``; ``data_dir`` (cache under ``<data_dir>/cache``); ``simulator`` (default
    ``DVSSimulator(noise_rate_hz=NOISE_RATE_HZ, seed=seed)``); ``progress``.
    """

    def __init__(self, split="train", n_samples=512, n_time_bins=4, sensor_size=(32, 32, 2), glyph_px=12,
                 speed_px_s=(20.0, 300.0), duration_us=100_000, seed=0, data_dir="data", simulator=None,
                 progress=True):
        if split not in _SPLIT_CODE:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        width, height = int(sensor_size[0]), int(sensor_size[1])
        if not (4 <= glyph_px < min(width, height)):
            raise ValueError(f"glyph_px must be >= 4 and smaller than the sensor ({width}x{height}), got {glyph_px}")
        if not (0 < speed_px_s[0] <= speed_px_s[1]):
            raise ValueError(f"speed_px_s must be (low, high) with 0 < low <= high, got {speed_px_s}")
        self.simulator = DVSSimulator(noise_rate_hz=NOISE_RATE_HZ, seed=seed) if simulator is None else simulator
        self.n_time_bins = int(n_time_bins)
        self.sensor_size = (width, height, 2)
        self.duration_us = int(duration_us)
        travel = speed_px_s[1] * duration_us * 1e-6
        n_frames = max(2, int(math.ceil(travel / MAX_PX_PER_FRAME)) + 1)
        glyphs, glyph_classes = glyph_images(split, glyph_px, seed)

        def draw(i, rng):
            g = int(rng.integers(len(glyphs)))
            glyph = glyphs[g] * rng.uniform(*BRIGHTNESS)
            end = (rng.uniform(0, width - glyph_px), rng.uniform(0, height - glyph_px))
            speed = math.exp(rng.uniform(math.log(speed_px_s[0]), math.log(speed_px_s[1])))
            return glyph, int(glyph_classes[g]), end, speed, rng.uniform(0, 2 * math.pi)

        def build():
            seeds = [np.random.SeedSequence([seed, _SPLIT_CODE[split], i]) for i in range(int(n_samples))]
            boxes = np.zeros(int(n_samples), dtype=GEN1_BOX_DTYPE)
            speeds = np.zeros(int(n_samples))

            def movies(batch, rngs):
                out = []
                for i, rng in zip(batch, rngs):
                    glyph, cls, end, speed, angle = draw(i, rng)
                    boxes[i] = (self.duration_us, *glyph_box(glyph, end), cls, 1.0, i)
                    speeds[i] = speed
                    out.append(glyph_movie(glyph, end, speed, angle, sensor_hw=(height, width),
                                           duration_us=self.duration_us, n_frames=n_frames))
                return np.stack([m for m, _ in out], axis=1), out[0][1]

            arrays = self.simulator.simulate_packed(int(n_samples), seeds, movies, self.sensor_size,
                                                    desc="moving glyphs", progress=progress)
            return dict(arrays, boxes=boxes, speeds=speeds, labels=boxes["class_id"].astype(np.int64))

        params = {"version": GENERATOR_VERSION, "split": split, "n_samples": int(n_samples), "seed": int(seed),
                  "sensor": [width, height], "glyph_px": int(glyph_px), "speed_px_s": [float(s) for s in speed_px_s],
                  "duration_us": self.duration_us, "n_frames": n_frames, "noise": NOISE_RATE_HZ,
                  "brightness": list(BRIGHTNESS), "simulator": self.simulator.params()}
        self._arrays = cached_arrays("moving-glyphs", params, build, data_dir)

    @property
    def boxes(self):
        """Gen1 box records, one per sample (GEN1_BOX_DTYPE)."""
        return self._arrays["boxes"]

    @property
    def speeds(self):
        """Each sample's glyph speed, px/s."""
        return self._arrays["speeds"]

    def __getitem__(self, i):
        frames = to_frames(self.events(i), self.sensor_size, n_time_bins=self.n_time_bins, start_us=0,
                           duration_us=self.duration_us + 1)
        return frames, self.boxes[i]

    def arrays(self):
        """Every sample framed once: (frames float32 [N, Tm, P, H, W], boxes float32 [N, 5] = x, y, w, h, class)."""
        frames = np.stack([self[i][0] for i in range(len(self))])
        return frames, gen1_xywhc(self.boxes)


def gen1_xywhc(boxes):
    """Gen1 box records (as read_gen1_boxes returns them, or GEN1_BOX_DTYPE) as float32 [N, 5] = x, y, w, h, class."""
    return np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"], boxes["class_id"]], axis=1).astype(np.float32)
