"""NC1-NC4 along GD on the MSE UFM with bias (log scale), with the predicted NC1 rate rho^(2t) as a line."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "neural_collapse.nc_dynamics"
METRICS = (("nc1", "NC1"), ("equinorm_H", "NC2 equinorm (means)"), ("equiangle_H", "NC2 equiangle (means)"),
           ("equiangle_W", "NC2 equiangle (W)"), ("nc3", "NC3 self-duality"), ("nc4", "NC4 NCC mismatch"))


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    K, N, lr = cfg["K"], cfg["N"], cfg["lr"]
    steps = ds["step"].values
    ratios = ds["ratio"].values
    fig, axes = new_figure(len(ratios), 1)
    for j, r in enumerate(ratios):
        ax = axes[0, j]
        for i, (key, label) in enumerate(METRICS):
            y = ds[key].sel(ratio=r, seed=0).values
            ax.semilogy(steps, np.maximum(y, 1e-34), color=color(i), label=label, **{**SIMULATION, "markersize": 2.0})
        lam = r * th.mse_threshold_lambda(K, N)
        rho = float(th.nc1_contraction(K, N, lam, lam, lr, 0.0))
        nc1 = ds["nc1"].sel(ratio=r, seed=0).values
        k0 = int(np.argmin(np.abs(np.log(np.maximum(nc1, 1e-300)) - np.log(1e-15))))
        t = steps[steps <= steps[k0] * 2]
        ax.semilogy(t, nc1[k0] * rho ** (2 * (t - steps[k0])), color="k", label=r"theory $\rho^{2t}$", **THEORY)
        ax.set_ylim(1e-34, 1e3)
        ax.set_xlabel("GD step")
        ax.set_ylabel("metric")
        ax.set_title(rf"$\lambda/\lambda^*={r:g}$, K={K}, N={N}, d={cfg['d']}")
        if j == 0:
            ax.legend(loc="lower left", ncol=2)
    return fig


FIGURE = Figure(name="neural_collapse_metrics", experiments=(EXP,), draw=draw,
                caption="NC1-NC4 (Papyan et al. 2020) along GD on the regularised MSE UFM with free bias: markers are "
                        "measured, the line is the predicted asymptotic NC1 decay rho^(2t), "
                        "rho = 1 - lr (lam_H + kappa a/(KN)).")
