"""Stability-induced implicit bias (Nacson et al. 2022): final sharpness of GD on a diagonal linear network vs the
step size, against the 2/gamma stability threshold and the gradient-flow limit's sharpness (closed form)."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from toymodels.diagonal_linear import make_data


def draw(datasets):
    ds = datasets["diagonal_linear.stability_bias"]
    c = json.loads(ds.attrs["config"])
    gms = ds["gamma"].values
    gfine = np.linspace(gms.min() * 0.8, gms.max() * 1.1, 100)
    fig, axes = new_figure(2)
    ax_s, ax_r = axes[0, 0], axes[0, 1]
    ax_s.plot(gfine, 2 / gfine, color="k", linestyle=":", label=r"$2/\gamma$")
    for k, mu in enumerate(ds["mu"].values):
        X, y, bstar = make_data(c["n"], c["d"], c["k"], c["data_seed"], float(mu))
        bgf = th.mirror_limit(X, y, c["alpha"], parametrisation="P")
        s_gf = th.sharpness_at_interpolator(X, bgf, c["alpha"])
        r = ds.sel(mu=mu).isel(seed=0)
        ok = (~r["diverged"].values) & (r["loss"].values < c["converged_loss"])
        S = np.where(ok, r["sharpness"].values, np.nan)
        risk = np.where(ok, 0.5 * np.sum((r["beta"].values - bstar) ** 2, axis=-1), np.nan)
        col = color(k)
        ax_s.axhline(s_gf, color=col, label=f"GF limit, mu={mu:g}", **THEORY)
        ax_s.plot(gms, S, color=col, label=f"GD, mu={mu:g}", **SIMULATION)
        ax_r.axhline(0.5 * np.sum((bgf - bstar) ** 2), color=col, label=f"GF limit, mu={mu:g}", **THEORY)
        ax_r.plot(gms, risk, color=col, label=f"GD, mu={mu:g}", **SIMULATION)
    ax_s.set_yscale("log")
    ax_s.set_xlabel(r"step size $\gamma$")
    ax_s.set_ylabel(r"sharpness $\lambda_{\max}$ at the limit")
    ax_r.set_xlabel(r"step size $\gamma$")
    ax_r.set_ylabel(r"risk $\|\beta_\infty - \beta^*\|^2/2$")
    ax_s.legend(fontsize=6)
    ax_r.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="diagonal_linear_stability",
    experiments=("diagonal_linear.stability_bias",),
    draw=draw,
    caption="GD on u*v from alpha = 1: sharpness and risk of the limit vs step size for centred (mu=0) and "
            "non-centred (mu=1) data. Lines: gradient-flow limit (dual Newton) and 2/gamma; markers: GD (converged runs).",
)
