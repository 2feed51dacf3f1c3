"""Saddle-to-saddle dynamics (Pesme & Flammarion 2023): gradient flow of a diagonal linear network from tiny
alpha, in accelerated time tau = t/ln(1/alpha), against the alpha -> 0 jump algorithm."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from toymodels.diagonal_linear import make_saddle_data


def draw(datasets):
    ds = datasets["diagonal_linear.saddle_to_saddle"]
    c = json.loads(ds.attrs["config"])
    X, y, _ = make_saddle_data(c["n"], c["d"], c["data_seed"], tuple(c["head"]))
    taus_k, betas, losses = th.saddle_to_saddle(X, y)
    tau = ds["tau"].values
    t_step = np.append(taus_k, tau[-1])
    fig, axes = new_figure(2)
    ax_b, ax_l = axes[0, 0], axes[0, 1]
    support = np.flatnonzero(np.abs(betas).max(axis=0) > 1e-9)
    for j, i in enumerate(support):
        ax_b.step(t_step, np.append(betas[:, i], betas[-1, i]), where="post", color=color(j), **THEORY)
    ax_l.step(t_step, np.append(losses, losses[-1]), where="post", color="k", label="jump algorithm", **THEORY)
    alphas = sorted(ds["alpha"].values, reverse=True)
    sub = slice(None, None, 12)
    for k, a in enumerate(alphas):
        beta = ds["beta"].sel(alpha=a, seed=0).values
        ms = dict(SIMULATION, marker="os^dv"[k % 5])
        if a == alphas[-1]:
            for j, i in enumerate(support):
                ax_b.plot(tau[sub], beta[sub, i], color=color(j), **ms)
        ax_l.plot(tau[sub], ds["loss"].sel(alpha=a, seed=0).values[sub], color=color(k), label=f"GF, alpha={a:.0e}", **ms)
    ax_b.set_xlabel(r"$\tau = t/\ln(1/\alpha)$")
    ax_b.set_ylabel(r"$\beta_i(\tau)$" + f"  (markers: GF at alpha={alphas[-1]:.0e})")
    ax_l.set_xlabel(r"$\tau = t/\ln(1/\alpha)$")
    ax_l.set_ylabel(r"training loss $L(\beta)$")
    ax_l.set_yscale("log")
    ax_l.set_ylim(1e-4, None)
    ax_l.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="diagonal_linear_saddle",
    experiments=("diagonal_linear.saddle_to_saddle",),
    draw=draw,
    caption="Saddle-to-saddle: lines are the alpha -> 0 jump algorithm (piecewise-constant saddles, plateau losses), "
            "markers gradient flow of u*v in accelerated time for decreasing alpha (n=10, d=20, 4-sparse target).",
)
