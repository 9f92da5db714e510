"""Plotting: the project's one figure style, one look per model across a work's figures, png + pdf output.

* :data:`STYLE` holds the matplotlib settings every figure uses (small fonts,
  light grid, no top/right spines, the Okabe-Ito colour cycle); :func:`apply_style` makes
  them current, :func:`style` applies them inside a ``with`` block only.
* :func:`family_color` gives each model family ("SNN", "RNN", "LSTM", "GRU", ...) the same
  colour in every figure. The palettes are colour-blind safe: Okabe & Ito (2008), "Color
  Universal Design", for the known families, Paul Tol's "muted" scheme for other names.
* :func:`work_style` reads the ``display:`` section of ``config/<key>.yaml``, the one place
  where a work's models get their display name, colour, line style, marker and hatch: every
  figure of the work draws a model through it, so it looks the same in all of them and no code
  name (``lif-wotap``) reaches a label.
* :func:`bars` draws one bar per model (mean, spread, seeds as dots, chance line) with room
  above the tallest (:func:`headroom`); :func:`legend` draws handles long enough to tell a
  dashed line from a solid one.
* :func:`savefig` writes ``<path>.png`` (150 dpi) and ``<path>.pdf`` atomically (temporary
  file in the destination folder, then ``os.replace``). The pdf carries no creation date,
  so the same figure gives the same bytes and Snakemake sees no spurious change.

On a Linux machine without a display, importing this module selects the non-interactive
Agg backend, unless a backend was already chosen (``MPLBACKEND``, a Jupyter kernel's
inline backend, or pyplot imported earlier), which is then left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import matplotlib
import matplotlib.colors
import numpy as np
from cycler import cycler

from snnlib.config import ConfigError, load_work_display
from snnlib.io import atomic_path


def _use_agg_when_headless() -> None:
    """Pick Agg on a display-less Linux machine when nobody chose a backend yet."""
    if os.environ.get("MPLBACKEND") or "ipykernel" in sys.modules or "matplotlib.pyplot" in sys.modules:
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        matplotlib.use("Agg")


_use_agg_when_headless()

OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
"""Okabe-Ito colour-blind-safe palette, in the order of the default colour cycle."""

TOL_MUTED = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")
"""Paul Tol's colour-blind-safe "muted" palette, for family names not in FAMILY_COLORS."""

FAMILY_COLORS = {
    "snn": OKABE_ITO[0],
    "rnn": OKABE_ITO[1],
    "lstm": OKABE_ITO[2],
    "gru": OKABE_ITO[3],
    "ann": OKABE_ITO[4],
    "cnn": OKABE_ITO[5],
    "paper": OKABE_ITO[7],
}
"""Fixed colours of the model families compared across the works (keys lower-case);
"paper" is for values reported by a paper, drawn beside this run's."""

PALETTE = tuple(c for c in OKABE_ITO if c not in ("#000000", "#F0E442")) + TOL_MUTED
"""The colours a work's models take in the order of its ``display:`` section (black is kept for
recorded data and reference lines; yellow is left out, too faint for a line on white)."""

STYLE = {
    "figure.figsize": (4.5, 3.2),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "axes.prop_cycle": cycler(color=OKABE_ITO),
    "image.cmap": "viridis",
    "pdf.fonttype": 42,
}
"""The project's matplotlib settings (pdf.fonttype 42 keeps text editable in the pdf)."""

FORMATS = ("png", "pdf")


def apply_style() -> None:
    """Make :data:`STYLE` the current matplotlib settings (for the rest of the session)."""
    matplotlib.rcParams.update(STYLE)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply :data:`STYLE` inside a ``with`` block only."""
    with matplotlib.rc_context(STYLE):
        yield


def family_color(name: str) -> str:
    """The colour of model family ``name`` (case-insensitive), the same in every figure.

    Known families (:data:`FAMILY_COLORS`) have fixed Okabe-Ito colours; any other name
    gets a colour from :data:`TOL_MUTED` chosen by a hash of the name, stable across runs
    and machines (two unknown names may share a colour).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"family name must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    if key in FAMILY_COLORS:
        return FAMILY_COLORS[key]
    digest = hashlib.sha256(key.encode()).digest()
    return TOL_MUTED[int.from_bytes(digest[:4], "big") % len(TOL_MUTED)]


@dataclass(frozen=True)
class ModelStyle:
    """How one model looks in every figure of its work: display name, colour, line style, marker
    and bar hatch. ``line()`` and ``bar()`` give the matching keyword arguments of matplotlib."""

    label: str
    color: str
    linestyle: str = "-"
    marker: str = "o"
    hatch: str | None = None

    def line(self, **extra) -> dict:
        """Keywords for ``plot`` / ``errorbar``: colour, line style, marker and label."""
        return {"color": self.color, "ls": self.linestyle, "marker": self.marker, "label": self.label, **extra}

    def bar(self, **extra) -> dict:
        """Keywords for ``bar``: colour and hatch (white hatch lines, as on a filled bar)."""
        hatch = {"hatch": self.hatch, "edgecolor": "white"} if self.hatch else {}
        return {"color": self.color, **hatch, **extra}


_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)"
_WHITE = np.ones(3)


class WorkStyle:
    """The ``display:`` section of ``config/<key>.yaml``: one :class:`ModelStyle` per model, the same
    in all of the work's figures. ``work_style(key)(name)`` looks a model up by its code name.

    Each entry maps a model's code name to ``label`` (required) and optionally ``color`` (a family
    of :data:`FAMILY_COLORS` or ``#rrggbb``), ``linestyle``, ``marker`` and ``hatch``. Entries
    without ``color`` take the unused colours of :data:`PALETTE` in their order in the file, so
    a model's colour depends on the config alone, never on which figure asks first. A name with
    ``{}`` (``"SRC k={}"``) stands for a family of models differing in one number; its label may
    show the number (``"SRC, k = {}"``), and with ``shades: [low, high]`` the colour goes from
    light at ``low`` to the full colour at ``high`` (log scale), so each member keeps one shade.
    """

    def __init__(self, key: str, display: dict):
        self.key = key
        explicit = {_resolve_color(key, name, e["color"]) for name, e in display.items() if "color" in e}
        free = iter(c for c in PALETTE if c not in explicit)
        self._entries = {}
        for name, entry in display.items():
            if "color" in entry:
                color = _resolve_color(key, name, entry["color"])
            else:
                color = next(free, None)
                if color is None:
                    raise ConfigError(f"config/{key}.yaml display: more models than the {len(PALETTE)} colours; "
                                      f"give {name!r} an explicit color")
            self._entries[name] = (entry, color)
        self._patterns = [(re.compile(re.escape(name).replace(re.escape("{}"), _NUMBER) + "$"), name)
                          for name in display if "{}" in name]

    @property
    def names(self) -> list[str]:
        """The code names (and ``{}`` patterns) of the display section, in its order."""
        return list(self._entries)

    def __call__(self, name: str) -> ModelStyle:
        if name in self._entries:
            entry, color = self._entries[name]
            return self._style(entry, color, None)
        for pattern, key in self._patterns:
            match = pattern.match(name)
            if match:
                entry, color = self._entries[key]
                return self._style(entry, color, match.group(1))
        raise ConfigError(f"model {name!r} has no entry under display: in config/{self.key}.yaml "
                          f"(entries: {', '.join(self._entries)}); add one with its label")

    def label(self, name: str) -> str:
        return self(name).label

    def color(self, name: str) -> str:
        return self(name).color

    @staticmethod
    def _style(entry: dict, color: str, number: str | None) -> ModelStyle:
        label = entry["label"].format(number) if number is not None else entry["label"]
        if number is not None and "shades" in entry:
            low, high = entry["shades"]
            share = np.clip(np.log(float(number) / low) / np.log(high / low), 0.0, 1.0)
            rgb = np.array(matplotlib.colors.to_rgb(color))
            color = matplotlib.colors.to_hex(rgb + (_WHITE - rgb) * 0.6 * (1.0 - share))
        return ModelStyle(label=label, color=color, linestyle=entry.get("linestyle", "-"),
                          marker=entry.get("marker", "o"), hatch=entry.get("hatch"))


def _resolve_color(key: str, name: str, value: str) -> str:
    """A display entry's ``color``: a family of :data:`FAMILY_COLORS` or ``#rrggbb``."""
    if isinstance(value, str) and value.lower() in FAMILY_COLORS:
        return FAMILY_COLORS[value.lower()]
    if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return value
    raise ConfigError(f"config/{key}.yaml display.{name}.color: {value!r} is neither a family "
                      f"({', '.join(FAMILY_COLORS)}) nor #rrggbb")


def work_style(key: str, root: str | os.PathLike | None = None) -> WorkStyle:
    """The :class:`WorkStyle` of work ``key`` from its config's ``display:`` section."""
    return WorkStyle(key, load_work_display(key, root))


def headroom(ax, share: float = 0.1) -> None:
    """Put the top of ``ax``'s y axis ``share`` of the data's range above the highest bar, error bar
    or point (and as far below the lowest, when it is negative). Stacked bars need this: a bar
    stacked on another pins the axis at its base, so the tallest stack would touch the top. Axes
    sharing ``ax``'s y axis count too, so the last panel drawn does not cut an earlier one."""
    limits = [other.dataLim.intervaly for other in ax.get_shared_y_axes().get_siblings(ax)]
    low, high = min(l for l, _ in limits), max(h for _, h in limits)
    span = (high - min(low, 0.0)) or abs(high) or 1.0
    bottom = low - share * span if low < 0 else ax.get_ylim()[0]
    ax.set_ylim(bottom, high + share * span)


def bars(ax, values: dict, styles: WorkStyle, *, chance: float | None = None, rotation: float = 30) -> None:
    """One bar per model: the mean of its values (one per seed) with their standard deviation, each
    value a black dot, the models' display names under the bars, a dotted chance line when given
    (named right of the axis), and room above the tallest bar (:func:`headroom`)."""
    names = list(values)
    for i, name in enumerate(names):
        v = np.asarray(values[name], dtype=float)
        ax.bar(i, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0.0, capsize=3, **styles(name).bar(alpha=0.85))
        ax.plot(np.full(len(v), i), v, "k.", ms=3, zorder=3)
    ax.set_xticks(range(len(names)), [styles.label(n) for n in names], rotation=rotation,
                  ha="right" if rotation else "center")
    if chance is not None:  # named beside the axis, where no bar or legend can hide it
        ax.axhline(chance, color="0.4", ls=":", lw=0.8, label="chance")
        ax.annotate("chance", (1.01, chance), xycoords=("axes fraction", "data"), va="center", fontsize=7,
                    color="0.4", annotation_clip=False)
    headroom(ax)


def legend(ax, **kwargs):
    """``ax.legend`` with handles long enough (3.5 font sizes) to show a dashed line beside a solid one."""
    return ax.legend(handlelength=3.5, **kwargs)


def savefig(fig, path: str | os.PathLike, *, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``fig`` to ``<path>.png`` and ``<path>.pdf`` atomically; return both paths.

    ``path`` is given without suffix (``figures/he2020/accuracy``); its folder is created.
    """
    path = Path(path)
    if path.suffix.lower() in {".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps"}:
        raise ValueError(f"pass the path without suffix ({path.with_suffix('')}); savefig writes .png and .pdf")
    written = []
    for fmt in FORMATS:
        target = path.with_name(f"{path.name}.{fmt}")
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        written.append(target)
    return tuple(written)


__all__ = [
    "OKABE_ITO",
    "TOL_MUTED",
    "FAMILY_COLORS",
    "STYLE",
    "FORMATS",
    "apply_style",
    "style",
    "family_color",
    "PALETTE",
    "ModelStyle",
    "WorkStyle",
    "work_style",
    "headroom",
    "bars",
    "legend",
    "savefig",
]
