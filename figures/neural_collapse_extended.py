"""Extended UFM (one more layer, linear or ReLU): final loss vs regularisation, closed form with its first-order jump."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "neural_collapse.extended_relu"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    K, N = cfg["K"], cfg["N"]
    dense = np.linspace(0.02, max(1.5, float(ds["ratio"].max())), 500)
    lam = dense * th.EXT_Q_CRIT / (K * N ** (1 / 3))
    m = th.extended_ufm_minimizer(K, N, lam, lam, lam)
    fig, axes = new_figure(2, 1)
    for j, (relu, name) in enumerate(((0, "linear middle layer"), (1, "ReLU middle layer"))):
        ax = axes[0, j]
        ax.plot(dense, np.asarray(m["loss"]), color="k", label="closed-form minimum", **THEORY)
        ax.plot(dense, np.full_like(dense, 0.5), color="0.6", linestyle="--", linewidth=1, label="W = H = 0")
        ax.plot(dense, np.asarray(m["loss_m"])[:, -1], color="0.3", linestyle="-.", linewidth=1,
                label="all modes on (metastable past $q^*$)")
        L = ds["loss"].sel(relu=relu).values
        for s in range(L.shape[1]):
            ax.plot(ds["ratio"].values, L[:, s], color=color(j), label="GD runs" if s == 0 else None, **SIMULATION)
        ax.axvline(1.0, color="0.5", linestyle=":", linewidth=1)
        ax.set_xlabel(r"$q/q^*$,  $q = K (N\lambda^3)^{1/3}$,  $q^* = 2^{-4/3}$")
        ax.set_ylabel("final loss")
        ax.set_title(name)
        ax.legend(loc="lower right")
    return fig


FIGURE = Figure(name="neural_collapse_extended", experiments=(EXP,), draw=draw,
                caption="Extended UFM W2 sigma(W1 H): closed-form global minimum of the three-factor model (line; "
                        "modes jump from s = 1/2 to 0 at q*) against GD from random inits (markers); runs above the "
                        "line sit at local minima with switched-off modes, or (q* < q < q_sp) on the metastable branch.")
