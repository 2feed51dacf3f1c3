"""Shared figure style: colour-blind-safe palette (Okabe-Ito), theory as lines, simulation as markers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
THEORY = dict(linestyle="-", linewidth=1.4)
SIMULATION = dict(linestyle="none", marker="o", markersize=3.5, markerfacecolor="none", markeredgewidth=0.9)

plt.rcParams.update(
    {
        "figure.dpi": 120,
        "savefig.dpi": 200,
        "font.size": 9,
        "axes.labelsize": 9,
        "legend.fontsize": 7.5,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.4, height: float = 2.6):
    """A figure with a grid of axes sized for a two-column paper (width/height per panel, inches)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, constrained_layout=True)
    return fig, axes


def color(i: int) -> str:
    """The i-th palette colour (cycled)."""
    return PALETTE[i % len(PALETTE)]


def hide_minor_labels(*axes) -> None:
    """No labels on minor ticks (log axes spanning less than a decade otherwise get cluttered)."""
    from matplotlib.ticker import NullFormatter

    for ax in axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
