"""Plotting: the project's one figure style, stable colours per model family, png + pdf output.

* :data:`STYLE` holds the matplotlib settings every figure uses (small fonts,
  light grid, no top/right spines, the Okabe-Ito colour cycle); :func:`apply_style` makes
  them current, :func:`style` applies them inside a ``with`` block only.
* :func:`family_color` gives each model family ("SNN", "RNN", "LSTM", "GRU", ...) the same
  colour in every figure. The palettes are colour-blind safe: Okabe & Ito (2008), "Color
  Universal Design", for the known families, Paul Tol's "muted" scheme for other names.
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
import sys
from pathlib import Path
from typing import Iterator

import matplotlib
from cycler import cycler

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


class Palette:
    """One colour per model for all of a work's figures: ``palette(name)`` gives ``name`` the next
    unused colour of :data:`OKABE_ITO` then :data:`TOL_MUTED` (black left out) the first time it is
    asked for, and the same colour ever after. Create one per notebook and pass every figure's
    model names through it, so a model keeps its colour from figure to figure.

    ``labels`` maps code names to display names (``palette.label(name)``; unknown names are shown
    as they are).
    """

    COLORS = tuple(c for c in OKABE_ITO if c != "#000000") + TOL_MUTED

    def __init__(self, names=(), labels: dict[str, str] | None = None):
        self._colors: dict[str, str] = {}
        self.labels = dict(labels or {})
        for name in names:
            self(name)

    def __call__(self, name: str) -> str:
        if name not in self._colors:
            if len(self._colors) == len(self.COLORS):
                raise ValueError(f"the palette has {len(self.COLORS)} colours, all in use; {name!r} needs one more")
            self._colors[name] = self.COLORS[len(self._colors)]
        return self._colors[name]

    def label(self, name: str) -> str:
        """The display name of ``name`` (itself when no label is given)."""
        return self.labels.get(name, name)


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
    "savefig",
]
