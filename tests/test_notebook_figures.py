"""The paper notebooks' own figure cells, run on tiny fake results (no training): each model looks the
same in all of a work's figures, bars leave room at the top, jiang2025's accuracy shows chance, the
he2020 sweep's legend tells the fully connected models from the convolutional ones, and no label is a
code name. A cell is found by the figure it saves, so the test follows the cell wherever it moves."""

import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.lines
import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from snnlib import plotting
from snnlib.plotting import work_style

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NOTEBOOKS = Path(__file__).parents[1] / "notebooks" / "papers"
CODE_NAME = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)+")  # lif-wotap, cma_temporal, snn_mlp
RNG = np.random.default_rng(0)


def run_cell(key, saves, **names):
    """Run the code cell of notebook ``key`` containing ``saves`` with ``names`` defined; return
    {figure name: figure} and the names the cell left behind."""
    cells = [c.source for c in nbformat.read(NOTEBOOKS / f"{key}.ipynb", as_version=4).cells
             if c.cell_type == "code" and saves in c.source]
    assert len(cells) == 1, f"{key}: {len(cells)} cells contain {saves!r}"
    saved = {}
    namespace = {"plt": plt, "np": np, "pd": pd, **{n: getattr(plotting, n) for n in plotting.__all__},
                 "savefig": lambda fig, path: saved.__setitem__(Path(path).name, fig), **names}
    exec(compile(cells[0], f"{key}.ipynb", "exec"), namespace)
    return saved, namespace


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    with plotting.style():
        yield
    plt.close("all")


def texts(fig):
    """Every label, title, tick label and legend entry of ``fig``."""
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return [t for t in out if t]


def assert_no_code_names(*figs):
    for fig in figs:
        names = [t for t in texts(fig) if any(CODE_NAME.fullmatch(part) for part in t.split("\n"))]
        assert not names, f"code names in a figure: {names}"


def assert_room_above_bars(ax):
    top = max(p.get_y() + p.get_height() for p in ax.patches)
    low, high = ax.get_ylim()
    assert high > top + 0.05 * (top - min(low, 0)), (top, ax.get_ylim())


def line_colors(ax):
    """label -> colour of each errorbar / line of ``ax``."""
    colors = {c.get_label(): c.lines[0].get_color() for c in ax.containers if hasattr(c, "has_xerr")}
    return colors | {l.get_label(): l.get_color() for l in ax.get_lines() if not l.get_label().startswith("_")}


def test_he2020_sweep_legend_tells_mlp_from_conv_and_accuracy_has_room(tmp_path):
    styles = work_style("he2020")
    kinds = ["snn_mlp", "rnn", "lstm", "scnn", "conv_rnn", "conv_lstm"]
    common = dict(
        ROLES=("converted", "captured"), kinds=kinds, cfg={"time_steps": {"converted": [1, 4], "captured": [1, 4]}},
        KIND_LABEL={k: styles.label(k) for k in kinds}, STYLES=styles, FAMILY={k: k for k in kinds},
        SETS={r: {"window_us": 1e5, "classes": 10, "name": r} for r in ("converted", "captured")},
        FINEST={"converted": 4, "captured": 4}, arm=lambda role, kind, T, loss="mean": f"{role}/{kind}/T{T}",
        values=lambda name, metric="test_acc": pd.Series(RNG.uniform(0.9, 1.0, 3)),
        summary=lambda s: {"acc_mean": s.mean(), "acc_std": s.std()}, write_csv=lambda *a: None,
        RESULTS=tmp_path, FIGURES=tmp_path, display=lambda *a: None, Image=lambda *a, **k: None)
    sweep = run_cell("he2020", 'FIGURES / "temporal_resolution"', **common)[0]["temporal_resolution"]
    drawn = sweep.axes[1].get_legend()
    assert [t.get_text() for t in drawn.get_texts()] == [styles.label(k) for k in kinds]
    parts = drawn.findobj(matplotlib.lines.Line2D)
    assert {p.get_linestyle() for p in parts} >= {"-", "--"} and {p.get_marker() for p in parts} >= {"o", "s"}
    assert drawn.handlelength >= 3
    accuracy = run_cell("he2020", 'FIGURES / "accuracy"', **common)[0]["accuracy"]
    for ax in accuracy.axes:  # accuracies near 1: the error bars and dots must not touch the top
        assert_room_above_bars(ax)
        assert ax.get_ylim()[1] > max(np.max(line.get_ydata()) for line in ax.get_lines())
    assert_no_code_names(sweep, accuracy)


class Results(SimpleNamespace):
    pass


def test_xu2025_models_keep_their_colour_from_figure_to_figure():
    seeds, delays = [0, 1, 2], [10, 20]
    delay_models = ["FF-SNN", "vanilla RSNN", "SRC k=2", "SRC k=4", "ASRC K=6"]
    seq_models = ["FF-SNN", "vanilla RSNN", "SRC k=4", "ASRC K=6"]
    rows = [{"task": "smnist", "model": m, "seed": s, "test_acc": RNG.uniform(0.1, 0.9)}
            for m in seq_models for s in seeds]
    delay_table = pd.DataFrame([{"task": f"delay {d}", "delay": d, "model": m, "seed": s,
                                 "test_acc": RNG.uniform(0.3, 1)}
                                for d in delays for m in [*delay_models, "SRC (validation span)"] for s in seeds])
    noise = {(m, s): {"noise": {0.0: 0.9, 0.4: 0.7}} for m in delay_models for s in seeds}
    names = dict(styles=work_style("xu2025"), seeds=seeds, figures_dir=lambda key: Path("."),
                 cfg={"delay_classes": 4, "robustness_sigma": 0.4},
                 seq_results={"smnist": Results(outputs={(m, s): {"noise": {0.0: 0.5}}
                                                         for m in seq_models for s in seeds})},
                 delay_results={d: Results(outputs=noise) for d in delays},
                 accuracy=pd.concat([pd.DataFrame(rows), delay_table], ignore_index=True), delay_table=delay_table,
                 chosen={(f"delay {d}", s): "SRC k=4" for d in delays for s in seeds}, longest=20, asrc="ASRC K=6")
    accuracy = run_cell("xu2025", '"accuracy")', **names)[0]["accuracy"]
    noise_fig = run_cell("xu2025", '"noise_robustness")', **names)[0]["noise_robustness"]
    bars_ax, delay_ax = accuracy.axes
    in_accuracy, in_noise = line_colors(delay_ax), line_colors(noise_fig.axes[0])
    assert set(in_noise) == {"SRC (validation span)", "ASRC K=6"}
    for label, color in in_noise.items():
        assert color == in_accuracy[label]
    bar_colors = {t.get_text(): matplotlib.colors.to_hex(p.get_facecolor())
                  for t, p in zip(bars_ax.get_xticklabels(), bars_ax.patches)}
    assert bar_colors["SRC k=4"] == matplotlib.colors.to_hex(in_accuracy["SRC k=4"])
    assert len(set(in_accuracy.values())) == len(in_accuracy)
    assert_room_above_bars(bars_ax)
    assert_no_code_names(accuracy, noise_fig)


def test_qin2025_energy_and_marl_bars_are_not_cut_at_the_top():
    styles = work_style("qin2025")
    cores = ["mlp", "gru", "lif-tap", "lif-wotap", "grsn-tap", "grsn-wotap", "igrsn-tap", "igrsn-wotap"]
    ops = ("effective_acs", "effective_macs", "dense", "energy_pj")
    final = pd.DataFrame([{"task": "CueRecall", "core": c, "seed": s, "final_return": RNG.uniform(0, 1),
                           "effective_acs": 0.0 if c in ("mlp", "gru") else RNG.uniform(100, 200),
                           "effective_macs": 300.0 if c == "gru" else RNG.uniform(10, 100),
                           "dense": 1.0, "energy_pj": RNG.uniform(1, 5)} for c in cores for s in (0, 1)])
    names = dict(styles=styles, LABEL={c: styles.label(c) for c in cores}, cfg={"memory_task": "CueRecall",
                 "cores": cores, "marl_agents": 3}, OPS=ops, final=final, RES=Path("."), FIG=Path("."),
                 write_csv=lambda *a: None, profile="smoke")
    energy = run_cell("qin2025", 'FIG / "energy"', **names)[0]["energy"]
    for ax in energy.axes:  # the GRU's stack (MACs and an empty AC bar on top) used to pin the axis
        assert_room_above_bars(ax)
    history = pd.DataFrame([{"task": "CueRecall", "core": c, "seed": s, "env_steps": t, "mean_return": RNG.normal()}
                            for c in ("gru", "lif-wotap") for s in (0, 1) for t in range(0, 100, 10)])
    curves, cell = run_cell("qin2025", 'FIG / "learning_curves"', history=history, tasks=["CueRecall"], **names)
    marl_cores = ["gru", "lif-wotap"]
    teams = Results(outputs={(c, s): {"history": history[(history.core == c) & (history.seed == s)]
                                      .drop(columns=["task", "core", "seed"]).to_dict("records")}
                             for c in marl_cores for s in (0, 1)})
    summary = pd.DataFrame([{"core": c, "team_return_mean": -20.0 - i, "team_return_std": 1.0,
                             "macs_per_agent": 500.0 if c == "gru" else 20.0,
                             "acs_per_agent": 0.0 if c == "gru" else 300.0}
                            for i, c in enumerate([*marl_cores, "random"])])
    marl_final = pd.DataFrame([{"core": c, "seed": s, "final_team_return": -20.0} for c in marl_cores for s in (0, 1)])
    marl, _ = run_cell("qin2025", 'FIG / "marl"', teams=teams, marl_summary=summary, marl_final=marl_final,
                       plot_curves=cell["plot_curves"], **names)
    assert_room_above_bars(marl["marl"].axes[2])
    assert_no_code_names(energy, marl["marl"], curves["learning_curves"])


def test_jiang2025_accuracy_shows_chance_and_display_names():
    styles = work_style("jiang2025")
    arms = ["MPD-AGL", "fixed (matched)", "MPD-AGL gamma0=0.5", "fixed gamma0=0.5"]
    labels = torch.arange(20) % 10  # ten classes in the test set: chance 10 %
    accuracy = pd.DataFrame([{"dataset": "digits", "arm": a, "seed": s, "test_acc": RNG.uniform(0.8, 0.95)}
                             for a in arms for s in (0, 1, 2)])
    fig = run_cell("jiang2025", 'FIG / "accuracy"', styles=styles, accuracy=accuracy, seeds=[0, 1, 2],
                   DATASETS={"digits": (None, torch.utils.data.TensorDataset(torch.zeros(20, 1), labels))},
                   FIG=Path("."), summary=None)[0]["accuracy"]
    ax = fig.axes[0]
    chance = [line for line in ax.get_lines() if line.get_label() == "chance"]
    assert len(chance) == 1 and tuple(chance[0].get_ydata()) == (10.0, 10.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == [styles.label(a) for a in arms]
    assert_room_above_bars(ax)
    assert_no_code_names(fig)


def test_zhou2024_and_wang2024_show_display_names_with_room_above_the_bars():
    from snnlib.data.dual_modal import LIGHTS, POSITIONS
    from snnlib.methods import cma_experiment as cmx

    styles = work_style("zhou2024")
    variants = ["event", "frame", "naive", "cma_temporal", "cma_spatial", "cma"]
    conds = [*LIGHTS, *POSITIONS]
    runs = pd.DataFrame([{"arm": v, "seed": s, "test_acc": RNG.uniform(0.6, 1.0),
                          **{f"acc_{c}": RNG.uniform(0.6, 1.0) for c in conds}} for v in variants for s in (0, 1)])
    names = dict(styles=styles, variants=variants, runs=runs, n_classes=12, LIGHTS=LIGHTS, POSITIONS=POSITIONS,
                 cmx=cmx, figures_dir=lambda key: Path("."))
    zhou = {**run_cell("zhou2024", '/ "accuracy")', **names)[0],
            **run_cell("zhou2024", '/ "robustness")', **names)[0]}
    assert [t.get_text() for t in zhou["accuracy"].axes[0].get_xticklabels()] == [styles.label(v) for v in variants]
    arms = list(work_style("wang2024").names)
    ablation = pd.DataFrame([{"arm": a, "seed": s, "map_50": RNG.uniform(0.5, 0.9),
                              "map_50_95": RNG.uniform(0.2, 0.5)} for a in arms for s in (0, 1)])
    summary = ablation.groupby("arm", sort=False)[["map_50", "map_50_95"]].mean().reset_index()
    wang, _ = run_cell("wang2024", '/ "ablation")', styles=work_style("wang2024"), summary=summary, ablation=ablation,
                       seeds=[0, 1], figures_dir=lambda key: Path("."))
    for fig in (*zhou.values(), wang["ablation"]):
        for ax in fig.axes:
            assert_room_above_bars(ax)
    assert_no_code_names(*zhou.values(), wang["ablation"])
