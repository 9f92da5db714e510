"""One run of the EAS-SNN ablation (wang2024): data, sampler + detector, training, COCO mAP.

``train_one(arm, params, seed)`` is the function the notebook hands to
``snnlib.experiment.run_grid``: it loads the data ``params["data"]`` names (``data_spec``),
builds the arm's sampler (``snnlib.methods.adaptive_sampling``) in front of the T-step spiking
detector (``snnlib.methods.event_detection``), trains it with ``fit_detector`` and scores it with
COCO mAP. Facts: shared/research/papers.md §7.

Data (``data_spec(cfg, data)``, from the work's config):

* ``embedded``: ``snnlib.data.MovingGlyphs`` (train / test), one box per sample, scored also on
  the slowest and fastest thirds of the test glyphs (``slow_``, ``fast_map_50_95``);
* ``real`` with ``real_set: gen1``: ``snnlib.data.detection_windows.Gen1Windows`` over
  ``load_dataset("gen1", split)``, trained on the train and val recordings (as the authors) and
  scored on test with the Prophesee box filter (``PROPHESEE_FILTER``, on the truth and on the
  detections), ``window_us`` of history before each box time, 2 classes;
* ``real`` with ``real_set: ncaltech101``: ``NCaltechBoxes`` over ``load_dataset("ncaltech101",
  "all", with_boxes=True)``, the authors' per-class 80 / 20 split, 100 classes.

``n_train`` / ``n_test`` (None: all) draw that many samples with the config's ``data_seed``.
Loaded data are kept per process (``detection_sets``), so the notebook's first call loads them and
the workers ``run_grid`` forks inherit them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnlib.config import project_root
from snnlib.data.cache import canonical_json
from snnlib.data.datasets import load_dataset
from snnlib.data.detection_windows import PROPHESEE_FILTER, Gen1Windows, NCaltechBoxes, keep_boxes
from snnlib.data.moving_glyphs import MovingGlyphs
from snnlib.methods import adaptive_sampling as eas
from snnlib.methods.event_detection import SpikingDetector, TensorDetections, evaluate_detector, fit_detector
from snnlib.metrics import count_parameters
from snnlib.training import seed_everything

__all__ = ["DetectionSets", "data_spec", "detection_sets", "build_detector", "train_one"]

REAL_SETS = ("gen1", "ncaltech101")
GEN1_MAX_DETS = 50


@dataclass
class DetectionSets:
    """Train and test data (``batch(idx)`` interface of event_detection), classes, test subsets, scoring options."""

    train: object
    test: object
    n_classes: int
    subsets: dict
    max_dets: int = 10
    keep: object = None
    speeds: np.ndarray | None = None


def data_spec(cfg: dict, data: str) -> dict:
    """The JSON-able description of a run's data (part of each run's params, hence of its cache key)."""
    spec = {"Tm": cfg["Tm"], "n_train": cfg["n_train"], "n_test": cfg["n_test"]}
    if data == "embedded":
        return {"set": "embedded", **spec, "sensor": list(cfg["sensor"]), "glyph_px": cfg["glyph_px"],
                "speed_px_s": list(cfg["speed_px_s"]), "duration_us": cfg["duration_us"]}
    if data != "real":
        raise ValueError(f"data must be 'embedded' or 'real', got {data!r}")
    if cfg["real_set"] not in REAL_SETS:
        raise ValueError(f"real_set must be one of {REAL_SETS}, got {cfg['real_set']!r}")
    spec = {"set": cfg["real_set"], **spec, "input_size": list(cfg["input_size"]), "data_seed": cfg["data_seed"]}
    return {**spec, "window_us": cfg["window_us"]} if cfg["real_set"] == "gen1" else spec


def _embedded(spec: dict, data_dir: Path) -> DetectionSets:
    w, h = spec["sensor"]
    common = dict(n_time_bins=spec["Tm"], sensor_size=(w, h, 2), glyph_px=spec["glyph_px"],
                  speed_px_s=tuple(spec["speed_px_s"]), duration_us=spec["duration_us"], data_dir=data_dir)
    train = MovingGlyphs("train", n_samples=spec["n_train"], **common)
    test = MovingGlyphs("test", n_samples=spec["n_test"], **common)
    speeds = test.speeds
    thirds = {"slow": speeds <= np.quantile(speeds, 1 / 3), "fast": speeds >= np.quantile(speeds, 2 / 3)}
    as_tensors = [TensorDetections(*(torch.from_numpy(a) for a in d.arrays())) for d in (train, test)]
    return DetectionSets(*as_tensors, n_classes=2, subsets=thirds, speeds=speeds)


def _gen1(spec: dict, data_dir: Path) -> DetectionSets:
    common = dict(n_time_bins=spec["Tm"], window_us=spec["window_us"], input_size=spec["input_size"],
                  seed=spec["data_seed"])
    train = Gen1Windows([load_dataset("gen1", s, data_dir) for s in ("train", "val")], n_samples=spec["n_train"],
                        **common)
    test = Gen1Windows(load_dataset("gen1", "test", data_dir), n_samples=spec["n_test"], **common, **PROPHESEE_FILTER)
    box_filter = (PROPHESEE_FILTER["min_box_diag"], PROPHESEE_FILTER["min_box_side"])
    return DetectionSets(train, test, n_classes=2, subsets={}, max_dets=GEN1_MAX_DETS,
                         keep=lambda xywh: keep_boxes(xywh, test.scale, *box_filter))


def _ncaltech(spec: dict, data_dir: Path) -> DetectionSets:
    recordings = load_dataset("ncaltech101", "all", data_dir, with_boxes=True)
    common = dict(n_time_bins=spec["Tm"], input_size=spec["input_size"], seed=spec["data_seed"])
    train = NCaltechBoxes(recordings, "train", n_samples=spec["n_train"], **common)
    test = NCaltechBoxes(recordings, "test", n_samples=spec["n_test"], **common)
    return DetectionSets(train, test, n_classes=len(train.classes), subsets={})


@functools.cache
def _load(spec_json: str, data_dir: str) -> DetectionSets:
    spec = json.loads(spec_json)
    loader = {"embedded": _embedded, "gen1": _gen1, "ncaltech101": _ncaltech}[spec["set"]]
    return loader(spec, Path(data_dir))


def detection_sets(spec: dict, data_dir=None) -> DetectionSets:
    """The data of `spec` (see `data_spec`) under ``data_dir`` (default ``<project>/data``), loaded once per process."""
    return _load(canonical_json(spec), str(data_dir or project_root() / "data"))


def build_detector(params: dict, n_classes: int) -> SpikingDetector:
    """The arm's sampler (count / snn / rsnn / arsnn with its switches) in front of a fresh detector."""
    kind = params["sampler"]
    if kind == "count":
        sampler = eas.build_sampler("count")
    else:
        flags = {k: params[k] for k in ("spike_attach", "write_zero") if k in params}
        sampler = eas.build_sampler(kind, kernel_size=params["kernel_size"], depth=params["depth"],
                                    threshold=params["threshold"], **({"Ts": params["Ts"]} if kind == "arsnn" else {}),
                                    **flags)
    return SpikingDetector(sampler, n_classes=n_classes, T=params["T"], width=params["width"])


def train_one(arm: str, params: dict, seed: int) -> dict:
    """Train and score one arm on ``params["data"]`` (optional ``params["data_dir"]``): mAPs, losses, sizes, state."""
    sets = detection_sets(params["data"], params.get("data_dir"))
    seed_everything(seed)
    model = build_detector(params, sets.n_classes)
    history = fit_detector(model, sets.train, epochs=params["epochs"], lr=params["lr"],
                           batch_size=params["batch_size"], seed=seed)
    scores = evaluate_detector(model, sets.test, sets.subsets, max_dets=sets.max_dets, keep=sets.keep)
    return {**scores, "final_loss": history[-1], "params_sampler": count_parameters(model.sampler),
            "params_total": count_parameters(model), "history": history, "state": model.state_dict()}
