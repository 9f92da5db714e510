"""MovingGlyphs (embedded detection set) and the small spiking detector behind an EAS-SNN sampler."""

import numpy as np
import torch

from snnlib.data.moving_glyphs import GEN1_BOX_DTYPE, MovingGlyphs
from snnlib.methods.adaptive_sampling import build_sampler
from snnlib.methods.event_detection import SpikingDetector, decode, detection_loss


def test_glyphs_are_deterministic_cached_and_labelled_in_gen1_layout(tmp_path):
    a = MovingGlyphs("train", n_samples=6, data_dir=tmp_path, progress=False)
    b = MovingGlyphs("train", n_samples=6, data_dir=tmp_path, progress=False)
    assert a.boxes.dtype == GEN1_BOX_DTYPE and len(list((tmp_path / "cache").glob("moving-glyphs-*.npz"))) == 1
    np.testing.assert_array_equal(a.boxes, b.boxes)
    other = MovingGlyphs("train", n_samples=6, data_dir=tmp_path, seed=1, progress=False)
    assert len(list((tmp_path / "cache").glob("moving-glyphs-*.npz"))) == 2   # the seed is in the key
    assert not np.array_equal(other.boxes, a.boxes)
    frames, boxes = a.arrays()
    assert frames.shape == (6, 4, 2, 32, 32) and boxes.shape == (6, 5)
    b = a.boxes
    assert (b["t"] == a.duration_us).all() and (b["x"] >= 0).all() and (b["x"] + b["w"] <= 32).all()
    assert (b["y"] + b["h"] <= 32).all() and set(b["class_id"]) <= {0, 1}


def test_faster_glyphs_make_more_events(tmp_path):
    d = MovingGlyphs("test", n_samples=24, data_dir=tmp_path, progress=False)
    n = np.array([len(d.events(i)) for i in range(len(d))])
    assert np.corrcoef(np.log(d.speeds), np.log(n))[0, 1] > 0.5


def test_detector_runs_t3_and_its_loss_reaches_the_sampler():
    torch.manual_seed(0)
    model = SpikingDetector(build_sampler("arsnn", kernel_size=3, depth=2, spike_attach=True, write_zero=True),
                            T=3, width=4)
    frames = torch.poisson(torch.full((4, 2, 2, 32, 32), 1.0))
    boxes = torch.tensor([[4.0, 5.0, 8.0, 12.0, 1.0], [20.0, 10.0, 10.0, 9.0, 0.0]])
    out = model(frames)
    assert out["heat"].shape == (2, 2, 8, 8) and out["size"].shape == (2, 2, 8, 8)
    detection_loss(out, boxes).backward()
    assert model.sampler.input_conv[0].weight.grad.abs().sum() > 0
    dets = decode(out, max_dets=5)
    assert len(dets) == 2 and dets[0][0].shape == (5, 4) and (np.diff(dets[0][1]) <= 0).all()


def test_glyph_boxes_read_back_through_the_gen1_box_reader(tmp_path):
    from snnlib.data.datasets import read_gen1_boxes
    from snnlib.data.moving_glyphs import gen1_xywhc

    d = MovingGlyphs("test", n_samples=4, data_dir=tmp_path, progress=False)
    np.save(tmp_path / "glyphs_bbox.npy", d.boxes)
    back = read_gen1_boxes(tmp_path / "glyphs_bbox.npy")
    np.testing.assert_array_equal(gen1_xywhc(back), d.arrays()[1])


def test_several_boxes_per_sample_take_the_max_of_their_heat_targets():
    from snnlib.methods.event_detection import _flat_boxes, _targets

    torch.manual_seed(0)
    out = {k: torch.randn(2, 2, 8, 8) for k in ("heat", "size", "offset")}
    one = torch.tensor([[4.0, 5.0, 8.0, 12.0, 1.0], [20.0, 10.0, 10.0, 9.0, 0.0]])
    assert detection_loss(out, one) == detection_loss(out, [one[:1], one[1:]])   # the two forms agree
    pair = [torch.tensor([[2.0, 2.0, 6.0, 6.0, 1.0], [12.0, 14.0, 8.0, 8.0, 1.0]]), one[1:]]
    heat = _targets(*_flat_boxes(pair), (2, 2, 8, 8))[0]
    alone = [_targets(*_flat_boxes([b[None], one[1:]]), (2, 2, 8, 8))[0] for b in pair[0]]
    torch.testing.assert_close(heat, torch.maximum(*alone), rtol=0, atol=0)
    assert heat[0, 1, 1, 1] == heat[0, 1, 4, 4] == 1 and heat[0, 0].max() == 0   # centres (1, 1) and (4, 4)
    loss = detection_loss(out, pair)
    assert torch.isfinite(loss) and loss != detection_loss(out, [pair[0][:1], pair[1]])
