"""zhou2024 data: DAVIS frame/event alignment (synthetic, the real DAVIS346 file, DVS-SLR in the
authors' layout) and the embedded dual-modal sign generator."""

from pathlib import Path

import numpy as np
import pytest

from snnlib.data import load_dataset, make_events
from snnlib.data.datasets import DVS_SLR_LABELS, dvs_slr_paths
from snnlib.data.dual_modal import TRAJECTORIES, AlignedDVSSLR, DualModalSigns, align_recording, align_streams
from snnlib.data.readers import read_recording, recording_path

SENSOR = (5, 4, 2)


def test_one_event_frame_per_interframe_interval_and_first_aps_frame_dropped():
    frame_t = np.array([0, 100, 200, 300])
    frames = np.arange(4)[:, None, None] * np.ones((4, 4, 5))
    events = make_events([0, 1, 1, 4, 2], [0, 1, 1, 3, 2], [10, 100, 150, 299, 300], [1, 0, 0, 1, 1], SENSOR)
    counts, aps = align_streams(events, frames, frame_t, SENSOR, n_steps=3)
    assert counts.shape == (3, 2, 4, 5) and aps.shape == (3, 1, 4, 5)
    assert counts[0, 1, 0, 0] == 1 and counts[0].sum() == 1            # [0, 100)
    assert counts[1, 0, 1, 1] == 2 and counts[1].sum() == 2            # [100, 200)
    assert counts[2, 1, 3, 4] == 1 and counts[2].sum() == 1            # [200, 300); t = 300 is past the last frame
    assert aps[:, 0, 0, 0].tolist() == [1, 2, 3]                       # frames 1..3


def test_pad_repeats_the_last_step_and_cut_keeps_the_first():
    frame_t = np.array([0, 100, 200])
    frames = np.stack([np.full((4, 5), v) for v in (7, 8, 9)])
    events = make_events([0, 1], [0, 0], [5, 150], [1, 1], SENSOR)
    counts, aps = align_streams(events, frames, frame_t, SENSOR, n_steps=5)
    assert aps[:, 0, 0, 0].tolist() == [8, 9, 9, 9, 9]
    assert [c.sum() for c in counts] == [1, 1, 1, 1, 1] and counts[4, 1, 0, 1] == 1
    counts, aps = align_streams(events, frames, frame_t, SENSOR, n_steps=1)
    assert aps[:, 0, 0, 0].tolist() == [8] and counts.sum() == 1


def test_frames_outside_the_event_span_are_dropped():
    frame_t = np.array([0, 100, 200, 300, 400])
    frames = np.stack([np.full((4, 5), v) for v in range(5)])
    events = make_events([0, 0], [0, 0], [150, 250], [1, 0], SENSOR)
    counts, aps = align_streams(events, frames, frame_t, SENSOR, n_steps=2)
    assert aps[:, 0, 0, 0].tolist() == [2, 3]                          # frames 1..3 cover; frame 1 dropped
    assert counts[0, 1, 0, 0] == 1 and counts[1, 0, 0, 0] == 1


def test_bad_alignment_input_is_refused_by_name():
    events = make_events([0], [0], [50], [1], SENSOR)
    with pytest.raises(ValueError, match="one time per frame"):
        align_streams(events, np.zeros((3, 4, 5)), [0, 100], SENSOR)
    with pytest.raises(ValueError, match="fewer than two APS frames"):
        align_streams(events, np.zeros((2, 4, 5)), [0, 40], SENSOR)


def test_real_davis346_recording_aligns():
    path = recording_path("davis346.aedat4", Path(__file__).resolve().parents[1] / "data")
    if not path.is_file():
        pytest.skip("run `python -m snnlib.data fetch recordings` first")
    rec = read_recording(path)
    counts, aps = align_recording(rec, n_steps=120)
    assert counts.shape == (120, 2, 260, 346) and aps.shape == (120, 1, 260, 346)
    inside = (rec.events["t"] >= rec.frame_t[0]) & (rec.events["t"] < rec.frame_t[-1])
    assert counts.sum() == pytest.approx(inside.sum() + (120 - (len(rec.frame_t) - 1)) * counts[-1].sum())
    assert np.array_equal(aps[0, 0], rec.frames[1].reshape(260, 346))


def fabricate_dvs_slr_sample(root, user, label, light, position, rng, n_frames=4):
    """One sample in the authors' exact layout: event npz (x, y, p, t in ns), frame npz (object t, RGB imgs)."""
    events_path, frames_path = dvs_slr_paths(root, user, label, light, position)
    t0 = 1_650_000_000_000_000_000
    frame_t = t0 + np.arange(n_frames) * 50_000_000                  # 50 ms apart, in ns
    t = np.sort(rng.integers(frame_t[0], frame_t[-1], 40))
    x, y, p = rng.integers(0, 346, 40), rng.integers(0, 260, 40), rng.integers(0, 2, 40)
    imgs = rng.integers(0, 256, (n_frames, 260, 346, 3), dtype=np.uint8)
    for path in (events_path, frames_path):
        path.parent.mkdir(parents=True)
    np.savez(events_path, x=x, y=y, p=p, t=t)
    np.savez(frames_path, t=np.array([int(v) for v in frame_t], dtype=object), imgs=imgs)
    return t, frame_t, x, y, p, imgs


def test_dvs_slr_loader_aligns_the_authors_layout(tmp_path):
    rng = np.random.default_rng(0)
    made = {}
    for user in ("user3", "user12"):
        for label in ("eat", "you"):
            made[(user, label)] = fabricate_dvs_slr_sample(tmp_path / "dvs_slr", user, label, "naturalLight",
                                                           "back", rng)
    with pytest.warns(UserWarning):
        dataset = load_dataset("dvs_slr", "all", tmp_path, strict=False, transform=AlignedDVSSLR(),
                               users=("user3", "user12"), labels=("eat", "you"), lights=("naturalLight",),
                               positions=("back",))
    assert len(dataset) == 4
    for i, (user, label, _, _) in enumerate(dataset.conditions):
        x, target = dataset[i]
        assert target == DVS_SLR_LABELS.index(label)
        assert x.shape == (120, 5, 260, 346)
        t, frame_t, ex, ey, ep, imgs = made[(user, label)]
        k = np.searchsorted(frame_t, t, side="right") - 1               # interval of each event
        for step in range(3):
            mine = k == step
            assert x[step, :2].sum() == mine.sum()
            assert x[step, ep[mine][0], ey[mine][0], ex[mine][0]] >= 1 if mine.any() else True
        assert np.allclose(x[0, 2:].numpy(), np.moveaxis(imgs[1], -1, 0) / 255.0, atol=1e-6)
        assert np.allclose(x[119, 2:].numpy(), np.moveaxis(imgs[3], -1, 0) / 255.0, atol=1e-6)


@pytest.fixture(scope="module")
def signs(tmp_path_factory):
    root = tmp_path_factory.mktemp("signs")
    kw = dict(n_subjects=3, n_train_subjects=2, shapes=(0, 1), n_steps=4, size=16, data_dir=root)
    return kw, DualModalSigns("train", **kw), DualModalSigns("test", **kw)


def test_signs_shapes_labels_and_subject_split(signs):
    kw, train, test = signs
    assert train.n_classes == 2 * len(TRAJECTORIES) == 8
    assert len(train) == 2 * 8 * 3 * 2 and len(test) == 8 * 3 * 2
    x, y = train[0]
    assert x.shape == (4, 3, 16, 16) and 0 <= y < 8
    assert {c[0] for c in train.conditions} == {0, 1} and {c[0] for c in test.conditions} == {2}
    assert sorted(set(np.asarray(train.labels).tolist())) == list(range(8))
    assert x[:, :2].sum() > 0 and 0 <= x[:, 2].min() and x[:, 2].max() <= 1


def test_signs_are_deterministic_and_the_seed_matters(signs, tmp_path):
    kw, train, _ = signs
    again = DualModalSigns("train", **dict(kw, data_dir=tmp_path))
    assert np.array_equal(again._arrays["events"], train._arrays["events"])
    other = DualModalSigns("train", **dict(kw, data_dir=tmp_path, seed=1))
    assert not np.array_equal(other._arrays["events"], train._arrays["events"])


def test_dim_light_gives_lower_contrast_frames(signs):
    _, train, _ = signs
    aps = train._arrays["aps"].astype(float) / 255
    lights = np.array([c[1] for c in train.conditions])
    bright, dim = aps[lights == "brightLED"], aps[lights == "dimLED"]
    assert bright.max(axis=(2, 3)).mean() > 2 * dim.max(axis=(2, 3)).mean()


def test_direction_lives_in_event_polarity(signs):
    """Rightward: ON events (leading edge) lie right of OFF events; leftward the reverse."""
    _, train, _ = signs
    ev = train._arrays["events"].astype(float)
    lights = np.array([c[1] for c in train.conditions])
    xs = np.arange(16)
    for direction, sign in (("right", 1), ("left", -1)):
        mine = (np.asarray(train.labels) % 4 == TRAJECTORIES.index(direction)) & (lights == "brightLED")
        on, off = ev[mine][:, :, 1].sum((0, 1, 2)), ev[mine][:, :, 0].sum((0, 1, 2))  # per column x
        on_x, off_x = (on * xs).sum() / on.sum(), (off * xs).sum() / off.sum()
        assert sign * (on_x - off_x) > 0
