"""Depth-N balanced modes: exact implicit solution of tau u' = N u^{2-2/N}(s - u) (lines) vs the full N-layer
gradient flow (markers), N = 2, 3, 4."""

from __future__ import annotations

import json

import numpy as np

import derivations.deep_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "deep_linear.depth"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    s = float(ds["s"].values[-1])
    fig, axes = new_figure(len(ds["u0"].values), 1)
    for j, u0 in enumerate(ds["u0"].values):
        ax = axes[0, j]
        t = ds["t"].sel(s=s, u0=u0).isel(seed=0).values
        dense = np.linspace(0, t[-1], 300)
        for i, N in enumerate(ds["depth"].values):
            u = ds["u"].sel(s=s, u0=u0, depth=N).isel(seed=0).values
            for a, r in enumerate(cfg["ratios"]):
                ax.plot(dense, np.asarray(th.depth_mode(dense, s * r, u0, int(N))), color=color(i),
                        label=f"N = {N}" if a == 0 else None, alpha=1.0 if a == 0 else 0.5, **THEORY)
                ax.plot(t, u[:, a], color=color(i), alpha=1.0 if a == 0 else 0.5, **SIMULATION)
        ax.set_xlim(0, 0.5 * t[-1])
        ax.set_xlabel("t / tau")
        ax.set_ylabel(r"mode strength $u_\alpha$")
        ax.set_title(f"s = {s:g}·{cfg['ratios']}, u0 = {u0:g}")
        ax.legend()
    return fig


FIGURE = Figure(name="deep_linear_depth", experiments=(EXP,), draw=draw,
                caption="Balanced aligned deep linear networks: each mode follows the exact implicit solution of "
                        "tau u' = N u^(2-2/N)(s-u) (lines) against gradient flow of all N layers (markers); deeper "
                        "networks have longer plateaus and sharper transitions.")
