"""Incremental learning staircase: eigenvalues of U U^T under finite-m GD (markers) vs the exact population Riccati
solution (lines), with the theoretical plateau levels lambda_k (dotted); over- and under-parameterised r."""

from __future__ import annotations

import numpy as np

from derivations import matrix_sensing as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def draw(datasets):
    ds = datasets["matrix_sensing.incremental_learning"]
    ts = ds["t"].values
    a = float(ds["alpha"].values.min())
    rs = ds["r"].values
    fig, axes = new_figure(len(rs) + 1)
    for ax, r in zip(axes[0], rs):
        sel = ds.sel(alpha=a, r=r).isel(seed=0)
        eig = sel["eig"].values
        M, U0 = sel["M"].values, sel["U0"].values
        lam = np.sort(np.linalg.eigvalsh(M))[::-1]
        pop = np.linalg.eigvalsh(np.asarray(th.population_solution(ts, M, U0)))[:, ::-1]
        every = max(1, len(ts) // 60)
        for k in range(min(int(r), int(np.sum(lam > 1e-12)) + 1, eig.shape[1])):
            ax.plot(ts, pop[:, k], color=color(k), **THEORY, label=f"population Riccati, $k={k+1}$" if k < 3 else None)
            ax.plot(ts[::every], np.maximum(eig[::every, k], 1e-300), color=color(k), **SIMULATION)
        for k, l in enumerate(lam[lam > 1e-12]):
            ax.axhline(l, color="0.5", linestyle=":", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylim(max(a**2 * 1e-2, 1e-18), 3 * lam[0])
        ax.set_xlabel("time $t = \\eta \\times$ step")
        ax.set_ylabel("eigenvalues of $UU^\\top$")
        regime = "under" if r < np.sum(lam > 1e-12) else "over"
        ax.set_title(f"$r={r}$ ({regime}-param.), $\\alpha={a:g}$", fontsize=8)
        ax.legend(loc="lower right")
    # the staircase of tr(UU^T) (linear scale) for the largest r: plateaus at sum_{j<=k} lambda_j
    ax = axes[0, -1]
    r = int(rs.max())
    sel = ds.sel(alpha=a, r=r).isel(seed=0)
    M, U0, eig = sel["M"].values, sel["U0"].values, sel["eig"].values
    lam = np.sort(np.linalg.eigvalsh(M))[::-1]
    pop = np.asarray(th.population_solution(ts, M, U0))
    ax.plot(ts, np.trace(pop, axis1=1, axis2=2), color=color(0), **THEORY, label="population Riccati")
    every = max(1, len(ts) // 80)
    ax.plot(ts[::every], eig[::every].sum(axis=1), color=color(0), **SIMULATION, label="GD, Gaussian sensing")
    for level in np.cumsum(lam[lam > 1e-12]):
        ax.axhline(level, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xlabel("time $t = \\eta \\times$ step")
    ax.set_ylabel("$\\mathrm{tr}\\,UU^\\top$ (plateaus: $\\sum_{j\\leq k}\\lambda_j$)")
    ax.set_title(f"staircase, $r={r}$, $\\alpha={a:g}$", fontsize=8)
    ax.legend(loc="lower right")
    return fig


FIGURE = Figure(
    name="matrix_sensing_staircase",
    experiments=("matrix_sensing.incremental_learning",),
    draw=draw,
    caption="Incremental learning from small init (Jin et al. 2023): eigenvalues of UU^T under GD on Gaussian "
            "sensing (markers) follow the exact population Riccati solution (lines) and plateau at the best rank-k "
            "approximations (dotted: eigenvalues of M*).",
)
