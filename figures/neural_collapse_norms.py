"""Closed-form norms of the MSE-UFM global minimiser vs the regularisation strength (lines) and GD end points (markers)."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "neural_collapse.mse_global"
MODES = {0: "no bias", 1: r"bias, $\lambda_b=0$", 2: r"bias, $\lambda_b>0$"}


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    lam_star = th.mse_threshold_lambda(K, N)
    dense = np.linspace(0.005, max(2.0, float(ds["ratio"].max())), 400)
    fig, axes = new_figure(3, 1)
    skew = float(ds["skew"].values[-1])
    for j, (mode, title) in enumerate(MODES.items()):
        ax = axes[0, j]
        lb = None if mode == 0 else (0.0 if mode == 1 else cfg["lam_b_pos"])
        nW, nH, nb = (np.asarray(x) for x in th.mse_minimizer_norms(K, N, d, dense * lam_star * skew,
                                                                       dense * lam_star / skew, lb))
        for i, (key, label, theory) in enumerate((("norm_W", r"$\|W\|_F$", nW), ("norm_H", r"$\|H\|_F$", nH),
                                                   ("norm_b", r"$\|b\|$", nb))):
            ax.plot(dense, theory, color=color(i), label=label, **THEORY)
            sim = ds[key].sel(mode=mode, skew=skew).values  # [ratio, seed]
            for s in range(sim.shape[1]):
                ax.plot(ds["ratio"].values, sim[:, s], color=color(i), **SIMULATION)
        ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
        ax.set_xlabel(r"$\lambda/\lambda^*$,  $\lambda^* = 1/(K\sqrt{N})$")
        ax.set_ylabel("norm at the end of GD")
        ax.set_title(title)
        if j == 0:
            ax.legend()
    return fig


FIGURE = Figure(name="neural_collapse_norms", experiments=(EXP,), draw=draw,
                caption="MSE UFM: norms of the global minimiser (lines, closed form) against GD from random inits "
                        "(markers, every seed); the dotted line is the threshold K sqrt(N lam_W lam_H) = 1.")
