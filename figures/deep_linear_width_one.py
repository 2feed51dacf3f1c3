"""Width-one hidden layer from balanced starts: saddle visits (u_alpha/s_alpha vs t), closed form vs simulation."""

from __future__ import annotations

import json

import numpy as np

import derivations.deep_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "deep_linear.width_one"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    s = np.asarray(cfg["s"])
    t = ds["t"].values
    dense = np.linspace(0, t[-1], 600)
    cases = [(0.0, 0.0), (0.0, 1e-2), (1e-6, 1e-2), (1e-6, 0.0)]
    fig, axes = new_figure(len(cases), 1, width=2.6)
    for k, (p1, p2) in enumerate(cases):
        ax = axes[0, k]
        if p1 not in ds["p1"].values or p2 not in ds["p2"].values:
            continue
        u = ds["u"].sel(p1=p1, p2=p2).isel(seed=0).values
        theory = np.asarray(th.width_one_solution(dense, np.array([p1, p2, cfg["p3"]]), s))
        for a in range(len(s)):
            ax.plot(dense, theory[:, a] / s[a], color=color(a), label=f"mode {a + 1} (s={s[a]:g})", **THEORY)
            ax.plot(t[::8], u[::8, a] / s[a], color=color(a), **SIMULATION)
        ax.set_xlabel("t / tau")
        ax.set_title(f"p0 = ({p1:g}, {p2:g}, {cfg['p3']:g})")
        if k == 0:
            ax.set_ylabel(r"$u_\alpha / s_\alpha$")
            ax.legend()
    return fig


FIGURE = Figure(name="deep_linear_width_one", experiments=(EXP,), draw=draw,
                caption="Width-one two-layer network, balanced start W1^T = W2 = p0 in the singular bases: the "
                        "trajectory (lines: rank-one Riccati closed form; markers: simulation) visits the saddles "
                        "s_k u_k v_k^T of the modes present in p0 in increasing order of s and converges to the "
                        "one of the largest mode with p0_k != 0; plateaus last ~ ln(p_k/p_j)/(s_j - s_k).")
