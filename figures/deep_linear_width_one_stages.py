"""Depth-N width-one network from balanced starts: linear stages at critical points, polynomial stages into the origin."""

from __future__ import annotations

import json

import numpy as np

import derivations.deep_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from sims.experiments.deep_linear import W1D_DEPTHS, W1D_STARTS, w1d_start

EXP = "deep_linear.width_one_stages"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    s = np.asarray(cfg["s"])
    t = ds["t"].values
    sigma0 = float(ds["sigma0"].values[0])
    fig, axes = new_figure(2, 1, width=3.4)
    lin, poly = axes[0, 0], axes[0, 1]
    for i, name in enumerate(W1D_STARTS):
        a0, b0 = w1d_start(name)
        for di, N in enumerate(W1D_DEPTHS):
            W = ds["W"].isel(start=i, sigma0=0, seed=0, depth=di).values
            sig = np.linalg.norm(W, axis=(1, 2))
            theory = th.width_one_deep_solution(t, a0, b0, sigma0, s, N)["sigma"]
            keep = theory > cfg["floor"]
            if name in ("global", "saddle"):
                k = 0 if name == "global" else 1
                m = (t <= 15) & keep
                ls = "-" if name == "global" else ":"
                lin.semilogy(t[m], np.abs(theory[m] - s[k]) / s[k], color=color(di), ls=ls, linewidth=THEORY["linewidth"],
                             label=f"{name}, N={N}")
                lin.semilogy(t[m][::15], np.abs(sig[m][::15] - s[k]) / s[k], color=color(di), **SIMULATION)
            elif N >= 3 or name == "origin_null":
                m = (t > 0) & keep
                ls = "-" if name == "origin_neg" else "--"
                poly.loglog(t[m], theory[m], color=color(di), ls=ls, linewidth=THEORY["linewidth"], label=f"{name}, N={N}")
                tm = t[m]
                idx = np.unique(np.minimum(np.searchsorted(tm, np.geomspace(tm[0], tm[-1], 16)), len(tm) - 1))
                poly.loglog(t[m][idx], sig[m][idx], color=color(di), **SIMULATION)
    lin.set_xlabel("t / tau")
    lin.set_ylabel(r"$|\sigma - s_k| / s_k$")
    lin.set_title("linear stages (global minimum, saddle)")
    lin.set_ylim(1e-10, 2)
    lin.legend(fontsize=6)
    poly.set_xlabel("t / tau")
    poly.set_ylabel(r"$\sigma = \|W\|$")
    poly.set_title("polynomial stages into the origin")
    poly.legend(fontsize=6)
    return fig


FIGURE = Figure(name="deep_linear_width_one_stages", experiments=(EXP,), draw=draw,
                caption="Depth-N network with a width-one layer from balanced starts W = sigma a b^T (lines: exact "
                        "reduction, Oja direction in the clock sigma^(1-2/N) dt and Bernoulli magnitude; markers: "
                        "layer-wise gradient flow). Left: at the global minimum and at the saddle the last stage is "
                        "linear, rate min(N s_k^(2-2/N), 2 s_k^(1-2/N)(s_k - s_j)); the global start first rests near "
                        "the saddle. Right: into the origin the decay is polynomial: sigma ~ t^(-N/(N-2)) from "
                        "a0 = -b0 (solid) and sigma ~ t^(-N/(2N-2)) in the null space of Sigma_yx (dashed).")
