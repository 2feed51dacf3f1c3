"""Figures drawn from stored results only; one module per figure, discovered automatically.

Each `figures/<name>.py` defines `FIGURE = Figure(name, experiments, draw, caption)`; `python -m figures`
loads the experiments' stored datasets (running them in quick mode when missing) and writes PDF + PNG.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

__all__ = ["Figure", "all_figures", "get_figure"]


@dataclass(frozen=True)
class Figure:
    """A figure: the experiments whose stored datasets it reads, and `draw(datasets) -> matplotlib Figure`."""

    name: str
    experiments: tuple[str, ...]
    draw: Callable
    caption: str = ""


_SKIP = {"style", "build", "__main__"}


def all_figures() -> dict[str, Figure]:
    """Every figure module in this package that defines FIGURE, by figure name."""
    out = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        fig = getattr(mod, "FIGURE", None)
        if isinstance(fig, Figure):
            if fig.name in out:
                raise ValueError(f"figure name {fig.name!r} is defined twice")
            out[fig.name] = fig
    return out


def get_figure(name: str) -> Figure:
    """The figure called `name`, or a ValueError listing what exists."""
    figs = all_figures()
    if name not in figs:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(sorted(figs)) or 'none'}")
    return figs[name]
