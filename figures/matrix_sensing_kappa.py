"""Iterations to reach ||UU^T - M*||_F <= eps vs condition number kappa: GD (polynomial) vs ScaledGD(lambda)
(logarithmic). Markers: simulation; lines: closed-form flow times / eta."""

from __future__ import annotations

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def draw(datasets):
    from sims.experiments.matrix_sensing import _kappa_theory

    ds = datasets["matrix_sensing.scaledgd_kappa"]
    config = json.loads(ds.attrs["config"])
    kappas = ds["kappa"].values
    kk = np.geomspace(kappas.min(), kappas.max(), 9)
    fig, axes = new_figure(1)
    ax = axes[0, 0]
    r = int(ds["r"].values.max())
    for method, label, eta in ((0, "GD", config["eta_gd"] / config["top"]), (1, "ScaledGD($\\lambda$)",
                                                                             config["eta_scaled"])):
        n = ds["n_iter"].sel(r=r).isel(variant=method, seed=0).values.astype(float)
        n[n < 0] = np.nan
        theory = [_kappa_theory(float(k), r, method, config) / eta for k in kk]
        ax.plot(kk, theory, color=color(method), **THEORY, label=f"{label}: flow theory")
        ax.plot(kappas, n, color=color(method), **SIMULATION, label=f"{label}: simulation")
    for v, label, mk in ((2, "GD, random init", "s"), (3, "ScaledGD($\\lambda$), random init", "^")):
        n = ds["n_iter"].sel(r=r).isel(variant=v, seed=0).values.astype(float)
        n[n < 0] = np.nan
        ax.plot(kappas, n, color=color(v - 2), **{**SIMULATION, "marker": mk}, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("condition number $\\kappa$")
    ax.set_ylabel(f"iterations to $\\|UU^\\top - M^*\\|_F \\leq {config['eps']:g}$")
    ax.legend()
    return fig


FIGURE = Figure(
    name="matrix_sensing_kappa",
    experiments=("matrix_sensing.scaledgd_kappa",),
    draw=draw,
    caption="GD needs ~kappa iterations, ScaledGD(lambda) (Xu et al. 2023) a number logarithmic in kappa "
            "(population loss, aligned small init, damping lambda = sigma_min/2).",
)
