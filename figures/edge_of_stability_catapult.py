"""Catapult phases of the uv model (Lewkowycz et al. 2020): loss curves, final curvature and peak loss vs eta lambda0."""

from __future__ import annotations

import numpy as np

from figures import Figure
from figures.style import SIMULATION, color, new_figure


def draw(datasets):
    ds = datasets["edge_of_stability.catapult"].sel(y=0.0).isel(seed=0)
    fig, axes = new_figure(3)
    ns = ds["n"].values
    a0s = ds["eta_lam0"].values
    ax = axes[0, 0]
    nmax = ns.max()
    for i, a in enumerate([x for x in a0s if x in (1.0, 2.5, 3.0, 3.5, 4.5)]):
        sub = ds.sel(n=nmax, eta_lam0=a)
        valid = sub["valid"].values > 0.5
        steps = sub["step"].values[valid][:400]
        ax.semilogy(steps, np.maximum(sub["loss"].values[valid][:400], 1e-30), color=color(i),
                    label=rf"$\eta\lambda_0$={a}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"n = {int(nmax)}")
    ax.legend()
    ax = axes[0, 1]
    for i, n in enumerate(ns):
        sub = ds.sel(n=n)
        div = sub["diverged"].values > 0.5
        a_inf = np.where(div, np.nan, a0s / 2 * sub["lam"].values[:, -1] * 1.0)
        ax.plot(a0s, a_inf, **SIMULATION, color=color(i), label=f"n={int(n)}")
        ax.plot(a0s[div], np.full(div.sum(), 0.05 * (i + 1)), "x", color=color(i))
    a = np.linspace(0, 2, 10)
    ax.plot(a, a, "k-", lw=1, label="lazy")
    for v in (2, 4):
        ax.axvline(v, color="grey", ls=":", lw=1)
    ax.axhline(2, color="grey", ls="--", lw=1)
    ax.set_xlabel(r"$\eta\lambda_0$")
    ax.set_ylabel(r"$\eta\lambda_\infty$ (x: diverged)")
    ax.legend()
    ax = axes[0, 2]
    for i, n in enumerate(ns):
        sub = ds.sel(n=n)
        div = sub["diverged"].values > 0.5
        loss = np.where(sub["valid"].values > 0.5, sub["loss"].values, np.nan)
        peak = np.where(div, np.nan, np.nanmax(loss, axis=1))
        ax.semilogy(a0s, peak, **SIMULATION, color=color(i), label=f"n={int(n)}")
    ax.axvline(2, color="grey", ls=":", lw=1)
    ax.axvline(4, color="grey", ls=":", lw=1)
    ax.set_xlabel(r"$\eta\lambda_0$")
    ax.set_ylabel("peak loss")
    ax.set_title(r"peak loss $\propto n$ in the catapult phase")
    ax.legend()
    return fig


FIGURE = Figure(
    name="edge_of_stability_catapult",
    experiments=("edge_of_stability.catapult",),
    draw=draw,
    caption="uv model, lambda0 = 2, y = 0, f0 = 1: lazy (eta lambda0 < 2), catapult (2..4: the loss spikes to O(n) "
            "and the curvature drops below 2/eta), divergent (> 4). Full-width GD; it matches the exact 2-D map.",
)
