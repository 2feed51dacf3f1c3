"""Learning time of the k-th eigen-direction vs ln(1/alpha): GD on Gaussian sensing (markers), the exact
population Riccati solution (lines) and the asymptotic slope 1/lambda_k (dashed)."""

from __future__ import annotations

import numpy as np

from derivations import matrix_sensing as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def _crossing(ts, x, level):
    above = np.nonzero(x >= level)[0]
    if above.size == 0 or above[0] == 0:
        return np.nan
    j = above[0]
    return ts[j - 1] + (level - x[j - 1]) * (ts[j] - ts[j - 1]) / (x[j] - x[j - 1])


def draw(datasets):
    ds = datasets["matrix_sensing.incremental_learning"]
    ts = ds["t"].values
    r = int(ds["r"].values.max())
    alphas = np.sort(ds["alpha"].values)
    fig, axes = new_figure(1)
    ax = axes[0, 0]
    la = np.log(1 / alphas)
    for_k = None
    T_sim, T_pop = [], []
    for a in alphas:
        sel = ds.sel(alpha=a, r=r).isel(seed=0)
        M, U0, eig = sel["M"].values, sel["U0"].values, sel["eig"].values
        lam = np.sort(np.linalg.eigvalsh(M))[::-1]
        lam = lam[lam > 1e-12]
        pop = np.linalg.eigvalsh(np.asarray(th.population_solution(ts, M, U0)))[:, ::-1]
        T_sim.append([_crossing(ts, eig[:, k], lam[k] / 2) for k in range(min(r, lam.size))])
        T_pop.append([_crossing(ts, pop[:, k], lam[k] / 2) for k in range(min(r, lam.size))])
        for_k = lam
    T_sim, T_pop = np.asarray(T_sim), np.asarray(T_pop)
    for k in range(T_sim.shape[1]):
        ax.plot(la, T_pop[:, k], color=color(k), **THEORY, label=f"$k={k+1}$, $\\lambda_k={for_k[k]:g}$")
        ax.plot(la, T_sim[:, k], color=color(k), **SIMULATION)
        # asymptotic slope 1/lambda_k through the last population point
        ax.plot(la, T_pop[-1, k] + (la - la[-1]) / for_k[k], color=color(k), linestyle="--", linewidth=0.8)
    ax.set_xlabel("$\\ln(1/\\alpha)$")
    ax.set_ylabel("learning time $T_k$ ($\\lambda_k(UU^\\top) = \\lambda_k/2$)")
    ax.legend(title=f"r={r}; lines: Riccati, dashed: slope $1/\\lambda_k$", fontsize=6.5, title_fontsize=6.5)
    return fig


FIGURE = Figure(
    name="matrix_sensing_plateau_times",
    experiments=("matrix_sensing.incremental_learning",),
    draw=draw,
    caption="Learning times grow like ln(1/alpha)/lambda_k: GD on Gaussian sensing (markers) vs the exact population "
            "Riccati solution (lines) and the asymptotic slope 1/lambda_k (dashed).",
)
