"""Scalar networks converge to the edge of stability: final sharpness vs init and eta, gap law, divergence boundary."""

from __future__ import annotations

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def draw(datasets):
    mono = datasets["edge_of_stability.gfs_monotone"]
    tied = datasets["edge_of_stability.tied_depth4"]
    bnd = datasets["edge_of_stability.divergence_boundary"]
    fig, axes = new_figure(3)
    ax = axes[0, 0]
    eta = mono["eta"].broadcast_like(mono["phi0"])
    rho0 = (eta * mono["phi0"] / 2).isel(seed=0)
    S = (eta * mono["sharpness_final"] / 2).isel(seed=0)
    for i, D in enumerate(mono["depth"].values):
        for j, e in enumerate(mono["eta"].values):
            ax.plot(rho0.sel(depth=D, eta=e), S.sel(depth=D, eta=e), **{**SIMULATION, "marker": "os^"[j % 3]},
                    color=color(i), label=f"D={D}" if j == 0 else None)
    r = np.linspace(float(rho0.min()), float(rho0.max()), 200)
    ax.plot(r, np.where(r < 1, r, 2 - r), color="k", **THEORY, label="GFS / 2 - rho0")
    ax.axhline(1.0, color="grey", ls=":", lw=1)
    ax.set_xlabel(r"$\eta\,\phi(w_0)/2$")
    ax.set_ylabel(r"$\eta\,S_\infty/2$")
    ax.set_title("GD final sharpness (markers: eta)")
    ax.legend()

    ax = axes[0, 1]
    e = tied["eta"].values
    gap = 1 - e * tied["phi_final"].isel(seed=0).values / 2
    ax.loglog(e, gap, **SIMULATION, color=color(0), label="GD, tied depth 4")
    ee = np.geomspace(e.min() / 1.5, e.max() * 1.5, 50)
    ax.loglog(ee, ee**2 / 4, color="k", **THEORY, label=r"$\eta^2/4$")
    ax.set_xlabel(r"$\eta$")
    ax.set_ylabel(r"$1-\eta S_\infty/2$")
    ax.set_title(r"gap law $S_\infty \approx 2/\eta-\eta/2$")
    ax.legend()

    ax = axes[0, 2]
    for i, D in enumerate((2, 4)):
        sel = bnd["depth"].values == D
        rho = bnd["rho0"].values[sel]
        div = bnd["diverged"].isel(seed=0).values[sel] > 0.5
        fin = np.where(div, np.nan, bnd["eta"].values[sel] * bnd["phi_final"].isel(seed=0).values[sel] / 2)
        ax.plot(rho, fin, **SIMULATION, color=color(i), label=f"D={D} converged")
        ax.plot(rho[div], np.zeros(div.sum()) + 0.02 * (i + 1), "x", color=color(i), label=f"D={D} diverged")
    ax.axvline(2.0, color="k", **THEORY, label=r"$\phi_0=4/\eta$")
    ax.axvline(np.sqrt(2), color="grey", ls=":", lw=1, label=r"$2\sqrt{2}/\eta$")
    ax.set_xlabel(r"$\eta\,\phi(w_0)/2$ (far init)")
    ax.set_ylabel(r"$\eta\,S_\infty/2$")
    ax.set_title(r"divergence boundary, $\eta=0.05$")
    ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="edge_of_stability_sharpness",
    experiments=("edge_of_stability.gfs_monotone", "edge_of_stability.tied_depth4",
                 "edge_of_stability.divergence_boundary"),
    draw=draw,
    caption="Scalar networks: GD's final sharpness never exceeds 2/eta (left; below threshold GD stays at the GFS, "
            "just above it overshoots symmetrically to 2 - rho0); tied depth-4 gap 1 - eta S/2 ~ eta^2/4 (middle); "
            "far inits converge iff phi0 < ~4/eta (right).",
)
