"""EAS-SNN's real-data path (wang2024): Gen1 windows and N-Caltech101 boxes on fabricated files, one run end to end.

The files are written in the data sets' exact on-disk layout by test_datasets' fabricators; the
Gen1 recordings are then given events and boxes designed here, so that every expected window,
bin and box is computed by hand below.
"""

import math

import numpy as np
import pytest
import torch
from test_datasets import fabricate_gen1, fabricate_ncaltech101, match_registry, write_dat

from snnlib.config import load_work_config
from snnlib.data.datasets import gen1_boxes_path, load_dataset
from snnlib.data.detection_windows import Gen1Windows, NCaltechBoxes, keep_boxes, micro_bins
from snnlib.data.moving_glyphs import GEN1_BOX_DTYPE
from snnlib.methods import eas_experiment

# One recording: events (x, y, t, p) on the 304 x 240 sensor and boxes (t, x, y, w, h, class).
EVENTS = [(100, 60, 50_000, 1),     # before the first window [100 ms, 300 ms)
          (100, 60, 100_000, 1),    # first event of the window: bin 0
          (40, 20, 150_000, 0),     # bin 1 ([149999, 199998))
          (41, 21, 200_000, 1),     # bin 2 ([199998, 249997))
          (200, 100, 299_999, 0),   # last event, at t0 + 4 w = 299996 or later: not counted (the authors' slicing)
          (10, 10, 300_000, 1),     # at the box time: outside its window
          (20, 30, 700_000, 1), (22, 30, 750_000, 0), (24, 30, 800_000, 1), (26, 30, 850_000, 1)]
BOXES = [(300_000, 10, 20, 40, 30, 0),     # -> input (x0.5): [5, 10, 20, 15, 0]
         (300_000, 280, 200, 60, 80, 1),   # right and bottom clipped: [140, 100, 12, 20, 1]
         (300_000, 50, 50, 2, 10, 0),      # 1 px wide on the input: dropped
         (600_000, -10, 5, 30, 20, 1),     # left clipped: [0, 2.5, 10, 10, 1]
         (900_000, 30, 40, 50, 40, 0)]     # [15, 20, 25, 20, 0]
HALF = (152, 120)  # the Gen1 sensor letterboxed at scale 0.5


def write_recording(td_path, events=EVENTS, boxes=BOXES):
    ev = {k: np.array([e[i] for e in events]) for i, k in enumerate("xytp")}
    write_dat(td_path, ev, 304, 240)
    records = np.zeros(len(boxes), dtype=GEN1_BOX_DTYPE)
    for i, (t, x, y, w, h, c) in enumerate(boxes):
        records[i] = (t, x, y, w, h, c, 1.0, i)
    np.save(gen1_boxes_path(td_path), records)


@pytest.fixture
def gen1(tmp_path, monkeypatch):
    """A fabricated Gen1 whose first train and first test recordings are EVENTS / BOXES."""
    data_dir = tmp_path / "data"
    expected = fabricate_gen1(data_dir, np.random.default_rng(7))
    for split in ("train", "test"):
        write_recording(expected[split][0][0])
    match_registry(monkeypatch, "gen1", data_dir)
    return data_dir


def windows_of_first(ds):
    return [k for k, (d, r, _) in enumerate(ds.index) if (d, r) == (0, 0)]


def test_gen1_windows_hold_the_boxes_of_their_time_and_the_events_before_it(gen1):
    ds = Gen1Windows(load_dataset("gen1", "train", gen1), n_time_bins=4, window_us=200_000, input_size=HALF)
    first = windows_of_first(ds)
    assert [ds.index[k][2] for k in first] == [300_000, 600_000, 900_000]
    frames, boxes = ds[first[0]]
    assert frames.shape == (4, 2, 120, 152) and frames.dtype == np.float32
    np.testing.assert_array_equal(boxes, [[5, 10, 20, 15, 0], [140, 100, 12, 20, 1]])
    expected = np.zeros_like(frames)
    expected[0, 1, 30, 50] = expected[1, 0, 10, 20] = expected[2, 1, 10, 20] = 1  # (41, 21) -> (20, 10)
    np.testing.assert_array_equal(frames, expected)
    np.testing.assert_array_equal(ds[first[1]][1], [[0, 2.5, 10, 10, 1]])
    assert ds[first[1]][0].sum() == 0   # no event in [400 ms, 600 ms)
    assert ds[first[2]][0].sum() == 3   # 700, 750, 800 ms counted; 850 ms is the last event of the window


def test_gen1_evaluation_filter_and_sampling(gen1):
    recordings = load_dataset("gen1", "train", gen1)
    filtered = Gen1Windows(recordings, input_size=HALF, min_box_diag=30, min_box_side=10)
    first = windows_of_first(filtered)   # the 600 ms box is 20 x 20 sensor pixels: diagonal 28 < 30
    assert [filtered.index[k][2] for k in first] == [300_000, 900_000]
    skipped = Gen1Windows(recordings, input_size=HALF, skip_us=500_000, min_box_diag=30, min_box_side=10)
    assert [skipped.index[k][2] for k in windows_of_first(skipped)] == [900_000]
    keep = keep_boxes(np.array([[0, 0, 20, 15], [0, 0, 4.9, 30], [0, 0, 10, 10]]), 0.5, 30, 10)
    np.testing.assert_array_equal(keep, [True, False, False])  # 40 x 30; 9.8 px side; 28.3 px diagonal
    both = Gen1Windows([recordings, load_dataset("gen1", "val", gen1)], input_size=HALF)
    some = Gen1Windows([recordings, load_dataset("gen1", "val", gen1)], input_size=HALF, n_samples=3, seed=1)
    assert len(some) == 3 and set(some.index) <= set(both.index) and {d for d, _, _ in both.index} == {0, 1}


def test_micro_bins_of_a_window_shorter_than_tm_microseconds_are_empty():
    ev = np.zeros(2, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    ev["t"] = [10, 13]
    assert micro_bins(ev, (4, 4, 2), 4).sum() == 0
    ev["t"] = [10, 14]   # w = 1: bins [10, 11) ... [13, 14); the event at 14 is past them
    assert micro_bins(ev, (4, 4, 2), 4)[0].sum() == 1 and micro_bins(ev, (4, 4, 2), 4).sum() == 1


def test_ncaltech_boxes_follow_the_authors_split_and_letterbox(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    written = fabricate_ncaltech101(data_dir, np.random.default_rng(7))["all"]
    match_registry(monkeypatch, "ncaltech101", data_dir)
    recordings = load_dataset("ncaltech101", "all", data_dir, with_boxes=True)
    train = NCaltechBoxes(recordings, "train", input_size=(120, 90))
    test = NCaltechBoxes(recordings, "test", input_size=(120, 90))
    assert train.classes == ["accordion", "airplanes"]          # BACKGROUND_Google left out
    assert len(train) == 4 and len(test) == 0                   # 2 per class: ceil(1.6) = 2 train, int(0.4) = 0
    for i in range(len(train)):
        path, ev, (label, (x0, y0, x1, y1)) = written[int(train.index[i])]
        frames, boxes = train[i]
        assert "BACKGROUND" not in str(path) and frames.shape == (4, 2, 90, 120)
        np.testing.assert_array_equal(boxes, [[x0 / 2, y0 / 2, (x1 - x0) / 2, (y1 - y0) / 2, label - 1]])
        t0, t1 = ev["t"][0], ev["t"][-1]
        assert frames.sum() == np.sum(ev["t"] < t0 + 4 * ((t1 - t0) // 4))


def test_one_epoch_on_fabricated_gen1_trains_and_scores(gen1):
    spec = {"set": "gen1", "Tm": 4, "n_train": None, "n_test": None, "input_size": [76, 60], "data_seed": 0,
            "window_us": 200_000}
    params = {"sampler": "arsnn", "spike_attach": True, "write_zero": True, "T": 3, "Ts": 1, "depth": 2,
              "threshold": 1.0, "kernel_size": 3, "width": 4, "epochs": 1, "lr": 0.004, "batch_size": 4,
              "data": spec, "data_dir": str(gen1)}
    sets = eas_experiment.detection_sets(spec, gen1)
    assert len(sets.test) == 1 and len(sets.train) >= 3   # test: only 900 ms passes the 0.5 s skip and the sizes
    out = eas_experiment.train_one("ARSNN+SAT+RPD", params, seed=0)
    assert 0.0 <= out["map_50_95"] <= out["map_50"] <= 1.0
    assert len(out["history"]) == 1 and math.isfinite(out["final_loss"])
    assert out["params_total"] > out["params_sampler"] > 0
    model = eas_experiment.build_detector(params, 2)
    model.load_state_dict(out["state"])
    assert model(torch.zeros(4, 1, 2, 60, 76))["heat"].shape == (1, 2, 15, 19)


def test_paper_profile_runs_the_released_gen1_command_on_every_window():
    cfg = load_work_config("wang2024", "paper")
    assert (cfg["T"], cfg["Tm"], cfg["Ts"], cfg["kernel_size"], cfg["depth"], cfg["threshold"]) == (3, 4, 1, 5, 2, 1.0)
    assert (cfg["epochs"], cfg["batch_size"], cfg["lr"]) == (30, 64, pytest.approx(1.5625e-5 * 64))
    spec = eas_experiment.data_spec(cfg, "real")
    assert spec["set"] == "gen1" and spec["window_us"] == 200_000 and spec["n_train"] is spec["n_test"] is None
    assert eas_experiment.data_spec(cfg, "embedded")["set"] == "embedded"
    with pytest.raises(ValueError, match="embedded' or 'real"):
        eas_experiment.data_spec(cfg, "gen1")
