"""Tests for snnlib.plotting: files written, valid, atomic; colours stable; style applied."""

import os
import subprocess
import sys

import matplotlib
import pytest

from snnlib.plotting import (
    FAMILY_COLORS,
    OKABE_ITO,
    TOL_MUTED,
    apply_style,
    family_color,
    savefig,
    style,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"


@pytest.fixture
def figure():
    import matplotlib.pyplot as plt

    with style():
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, 0, 2], label="SNN", color=family_color("SNN"))
        ax.legend()
    yield fig
    plt.close(fig)


def test_savefig_writes_valid_png_and_pdf_atomically(tmp_path, figure):
    target = tmp_path / "figures" / "he2020" / "accuracy"
    png, pdf = savefig(figure, target)
    assert (png, pdf) == (target.with_name("accuracy.png"), target.with_name("accuracy.pdf"))
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert pdf.read_bytes().startswith(PDF_MAGIC)
    assert pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert sorted(os.listdir(target.parent)) == ["accuracy.pdf", "accuracy.png"]  # no temp files


def test_savefig_keeps_dots_in_names_and_is_byte_reproducible(tmp_path, figure):
    first = savefig(figure, tmp_path / "sweep_T0.5")
    assert [p.name for p in first] == ["sweep_T0.5.png", "sweep_T0.5.pdf"]
    contents = [p.read_bytes() for p in first]
    second = savefig(figure, tmp_path / "sweep_T0.5")
    assert [p.read_bytes() for p in second] == contents


def test_savefig_rejects_a_suffix_and_leaves_nothing_on_failure(tmp_path, figure):
    with pytest.raises(ValueError, match="without suffix"):
        savefig(figure, tmp_path / "plot.png")

    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        savefig(Broken(), tmp_path / "broken")
    assert os.listdir(tmp_path) == []


def test_family_colors_are_stable_distinct_and_case_insensitive():
    known = ["SNN", "RNN", "LSTM", "GRU", "ANN", "CNN"]
    colors = [family_color(name) for name in known]
    assert len(set(colors)) == len(known)
    assert all(color in OKABE_ITO for color in colors)
    assert family_color("lstm") == family_color(" LSTM ") == FAMILY_COLORS["lstm"]
    assert family_color("GRSN-TAP") == family_color("grsn-tap") in TOL_MUTED
    with pytest.raises(ValueError):
        family_color("")


def test_family_color_of_unknown_names_is_the_same_in_another_process():
    code = "from snnlib.plotting import family_color; print(family_color('ASRC-SNN'))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == family_color("ASRC-SNN")


def test_apply_style_sets_the_colour_cycle():
    with matplotlib.rc_context():
        apply_style()
        cycle = [entry["color"] for entry in matplotlib.rcParams["axes.prop_cycle"]]
        assert cycle == list(OKABE_ITO)
        assert matplotlib.rcParams["axes.spines.top"] is False
    with style():
        assert matplotlib.rcParams["savefig.dpi"] == 150


@pytest.mark.parametrize(
    "env, expected",
    [({"MPLBACKEND": ""}, "agg"), ({"MPLBACKEND": "pdf"}, "pdf")],
)
def test_backend_is_agg_only_when_headless_and_unset(env, expected):
    code = "import snnlib.plotting, matplotlib; print(matplotlib.get_backend().lower())"
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    full_env = {**base, **{k: v for k, v in env.items() if v}}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True)
    assert out.stdout.strip().endswith(expected)


def test_palette_keeps_one_colour_and_label_per_model():
    from snnlib.plotting import Palette

    palette = Palette(["SRC k=5"], labels={"lif-wotap": "LIF (woTAP)"})
    first = palette("SRC k=5")
    assert palette("vanilla RSNN") != first and palette("SRC k=5") == first  # asked again: unchanged
    names = ["SRC k=5", "vanilla RSNN", *(f"m{i}" for i in range(10))]
    assert len({palette(n) for n in names}) == len(names)  # distinct while colours last
    assert palette.label("lif-wotap") == "LIF (woTAP)" and palette.label("gru") == "gru"
    with pytest.raises(ValueError, match="all in use"):
        for i in range(len(Palette.COLORS) + 1):
            palette(f"extra{i}")
