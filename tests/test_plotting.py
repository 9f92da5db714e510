"""Tests for snnlib.plotting: files written, valid, atomic; colours stable; style applied."""

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.colors
import matplotlib.lines
import pytest
import yaml

from snnlib.plotting import (
    FAMILY_COLORS,
    OKABE_ITO,
    TOL_MUTED,
    apply_style,
    bars,
    family_color,
    headroom,
    legend,
    savefig,
    style,
    work_style,
)
from snnlib.config import ConfigError, load_work_config, load_work_display

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


CODE_NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)+")  # lif-wotap, cma_temporal, snn_mlp


def _models(key, cfg):
    """The code names of the models work ``key``'s notebook draws in profile ``cfg`` (built as there)."""
    if key == "he2020":
        return cfg["kinds"]
    if key == "qin2025":
        return [*cfg["cores"], *cfg["marl_cores"]]
    if key == "zhou2024":
        return cfg["variants"]
    if key == "wang2024":
        return list(cfg["arms"])
    if key == "hong2024":
        return cfg["benchmark_frameworks"]
    if key == "ma2023":
        return ["TeCoS-LVM", "CNN", "GLM"]
    if key == "xu2025":
        spans = [*cfg["delay_src_spans"], *cfg["seq_src_span"].values()]
        return ["FF-SNN", "vanilla RSNN", "SRC (validation span)", *(f"SRC k={k}" for k in spans),
                f"ASRC K={cfg['delay_asrc_span']}", *(f"ASRC K={k}" for k in cfg["seq_asrc_span"].values())]
    if key == "jiang2025":
        return ["MPD-AGL", "fixed (matched)", *(f"fixed w={w:g}" for w in cfg["fixed_widths"]),
                *(f"{a} gamma0={g:g}" for g in cfg["gamma_stress"] for a in ("MPD-AGL", "fixed"))]
    raise AssertionError(f"no model list for {key}")


WORKS = sorted(p.stem for p in (Path(__file__).parents[1] / "config").glob("*.yaml")
               if p.stem not in ("config", "schema"))


@pytest.mark.parametrize("key", WORKS)
@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_model_of_every_work_has_one_display_name_and_look(key, profile):
    styles = work_style(key)
    names = sorted(set(_models(key, load_work_config(key, profile))))
    looks = {name: styles(name) for name in names}  # raises ConfigError for a model without an entry
    for name, look in looks.items():
        assert look.label.strip() and not CODE_NAME.fullmatch(look.label), (key, name, look.label)
        assert matplotlib.colors.is_color_like(look.color)
    # a model is told apart from every other by colour, or (he2020, qin2025) by line style and marker
    assert len({(s.color, s.linestyle, s.marker) for s in looks.values()}) == len(looks)
    display = load_work_display(key)
    auto = [n for n in names if "color" not in display.get(n, {})]
    assert len({looks[n].color for n in auto}) == len(auto) or any("{}" in n for n in display), key


def test_a_model_keeps_its_look_whatever_asks_first():
    names = ["ASRC K=16", "SRC k=5", "vanilla RSNN", "FF-SNN", "SRC (validation span)"]
    first, second = work_style("xu2025"), work_style("xu2025")
    forward = {n: first(n) for n in names}
    assert {n: second(n) for n in reversed(names)} == forward
    shades = [first(f"SRC k={k}").color for k in (2, 5, 15, 40)]
    assert len(set(shades)) == 4  # one shade per span, darker for longer spans
    lightness = [sum(matplotlib.colors.to_rgb(c)) for c in shades]
    assert lightness == sorted(lightness, reverse=True)
    assert first("SRC k=5").label == "SRC k=5" and work_style("qin2025").label("lif-wotap") == "LIF (woTAP)"


def _work(tmp_path, display):
    (tmp_path / "config").mkdir(exist_ok=True)
    raw = {p: {"epochs": 1} for p in ("smoke", "default", "paper")} | {"display": display}
    (tmp_path / "config" / "w.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    return tmp_path


@pytest.mark.parametrize(
    "display, message",
    [
        ({"lif-wotap": {"color": "snn"}}, "needs a label"),
        ({"lif-wotap": {"label": "LIF (woTAP)", "colour": "snn"}}, r"unknown field\(s\) \['colour'\]"),
        ({"lif-wotap": {"label": "LIF (woTAP)", "shades": [1, 4]}}, "shades"),
        ({"m={}": {"label": "m = {}", "shades": [4, 1]}}, "shades"),
        (["lif-wotap"], "must map"),
    ],
)
def test_a_bad_display_section_is_refused_by_name(tmp_path, display, message):
    root = _work(tmp_path, display)
    with pytest.raises(ConfigError, match=message):
        load_work_config("w", "default", root)


def test_unknown_models_and_colours_are_refused_naming_the_file(tmp_path):
    root = _work(tmp_path, {"lif-wotap": {"label": "LIF (woTAP)"}})
    with pytest.raises(ConfigError, match=r"'lif-tap' has no entry under display: in config/w.yaml"):
        work_style("w", root)("lif-tap")
    root = _work(tmp_path, {"lif-wotap": {"label": "LIF (woTAP)", "color": "teal-ish"}})
    with pytest.raises(ConfigError, match="display.lif-wotap.color"):
        work_style("w", root)


def _bar_tops(ax):
    return max(p.get_y() + p.get_height() for p in ax.patches)


def test_headroom_lifts_the_axis_above_stacked_bars():
    import matplotlib.pyplot as plt

    with style():
        fig, ax = plt.subplots()
        ax.bar(["a", "b"], [100, 300])
        ax.bar(["a", "b"], [150, 0], bottom=[100, 300])  # b's empty top bar pins the axis at 300
        assert ax.get_ylim()[1] == pytest.approx(300)
        headroom(ax)
        assert ax.get_ylim()[1] == pytest.approx(330)
        fig2, ax2 = plt.subplots()
        ax2.bar(["a", "b"], [-40, -10])
        headroom(ax2)
        assert ax2.get_ylim()[0] < -40
        fig3, (left, right) = plt.subplots(1, 2, sharey=True)
        left.bar(["a"], [10.0])
        headroom(left)
        right.bar(["a"], [2.0])
        headroom(right)  # the shared axis still clears the left panel's bar
        assert left.get_ylim()[1] == pytest.approx(11.0)
    plt.close("all")


def test_bars_draw_spread_seeds_chance_and_display_names():
    import matplotlib.pyplot as plt

    styles = work_style("qin2025")
    with style():
        fig, ax = plt.subplots()
        bars(ax, {"gru": [0.9, 1.0, 0.95], "lif-wotap": [0.5, 0.6, 0.7]}, styles, chance=0.25)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["GRU", "LIF (woTAP)"]
    assert ax.patches[1].get_hatch() == "//" and ax.patches[0].get_hatch() is None
    assert ax.get_ylim()[1] > 1.0  # above the tallest seed (the bar is the mean, 0.95)
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and tuple(chance[0].get_ydata()) == (0.25, 0.25)
    plt.close(fig)


def test_legend_handles_show_the_line_style():
    import matplotlib.pyplot as plt

    styles = work_style("he2020")
    with style():
        fig, ax = plt.subplots()
        for kind in ("snn_mlp", "scnn"):
            ax.errorbar([1, 4], [0.5, 0.8], yerr=[0.1, 0.1], **styles(kind).line())
        drawn = legend(ax)
    parts = drawn.findobj(matplotlib.lines.Line2D)  # each handle: a line, and its marker apart
    assert [p.get_linestyle() for p in parts if p.get_linestyle() != "None"] == ["-", "--"]
    assert [p.get_marker() for p in parts if p.get_marker() not in ("none", "None")] == ["o", "s"]
    assert drawn.handlelength >= 3
    plt.close(fig)
