"""BYOL collapse phase diagram: theory boundary (p_-(eta), eta_c) over simulated outcomes (Tian et al. 2021)."""

from __future__ import annotations

import json

import numpy as np

from derivations import byol as th
from figures import Figure
from figures.style import THEORY, color, new_figure


def draw(datasets):
    ds = datasets["byol.phase_diagram"]
    config = json.loads(ds.attrs["config"])
    s2 = config["sigma2"]
    w0 = np.asarray(config["w0"])
    p, u = ds["p"].isel(seed=0).values, ds["u"].isel(seed=0).values
    etas, alphas, betas = ds["eta"].values, ds["alpha_p"].values, ds["beta"].values
    pp = np.asarray(th.fixed_point_p(etas[:, None, None, None], s2, 1))
    alive = np.isfinite(pp) & (np.abs(u - np.nan_to_num(pp)) < 0.05 * np.nan_to_num(pp))
    eta_c = float(th.eta_critical(s2))
    fig, axes = new_figure(len(betas))
    grid = np.linspace(1e-4, eta_c, 400)
    for bi, beta in enumerate(betas):
        ax = axes[0, bi]
        for ai, alpha in enumerate(alphas):
            u0 = np.sqrt(alpha) * w0
            dx = (ai - (len(alphas) - 1) / 2) * 0.004  # side-by-side markers per alpha_p
            for ei, eta in enumerate(etas):
                yes = alive[ei, ai, bi]
                ax.plot(np.full(yes.sum(), eta + dx), u0[yes], linestyle="none", marker="o", ms=4,
                        color=color(ai), label=f"sim $\\alpha_p$={alpha:g}, no collapse" if ei == 0 else None)
                ax.plot(np.full((~yes).sum(), eta + dx), u0[~yes], linestyle="none", marker="x", ms=4,
                        color=color(ai), label=f"sim $\\alpha_p$={alpha:g}, collapse" if ei == 0 else None)
        ax.plot(grid, np.asarray(th.fixed_point_p(grid, s2, -1)), color="k", **THEORY, label="theory $p_-(\\eta)$")
        ax.axvline(eta_c, color="k", linestyle="--", linewidth=1.0, label="theory $\\eta_c=1/(4(1+\\sigma^2))$")
        ax.set_yscale("log")
        ax.set_xlabel("weight decay $\\eta$")
        ax.set_ylabel("initial online mode $u_0=\\sqrt{\\alpha_p}\\,w_0$")
        ax.set_title(f"EMA rate $\\beta$={beta:g}, $\\sigma^2$={s2:g}")
    axes[0, 0].legend(fontsize=6, loc="lower right")
    return fig


FIGURE = Figure(
    name="byol_phase",
    experiments=("byol.phase_diagram",),
    draw=draw,
    caption="Linear BYOL (X=I, X'=sigma^2 I): a mode survives (o) or collapses (x) after gradient flow of the matrix "
            "ODE; theory: collapse below p_-(eta) and for eta > eta_c, independent of beta; alpha_p enters only via "
            "u0 = sqrt(alpha_p) w0.",
)
