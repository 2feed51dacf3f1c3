"""(gamma, alpha) phase diagram of SGD on a diagonal linear network (Even et al. 2023): population risk of the
limit over step size and initialisation scale, with diverged runs masked."""

from __future__ import annotations

import json

import numpy as np

from figures import Figure
from figures.style import new_figure
from toymodels.diagonal_linear import make_data


def draw(datasets):
    import matplotlib.colors as mcolors

    ds = datasets["diagonal_linear.phase_diagram"]
    c = json.loads(ds.attrs["config"])
    X, y, bstar = make_data(c["n"], c["d"], c["k"], c["data_seed"], c.get("mu", 0.0))
    beta = ds["beta"].values  # (alpha, gamma, seed, d)
    div = ds["diverged"].values
    risk = 0.5 * np.sum((beta - bstar) ** 2, axis=-1)
    risk = np.where(div, np.nan, risk)
    mean_risk = np.nanmean(np.where(np.all(div, axis=-1, keepdims=True), 0.0, risk), axis=-1)
    frac_div = div.mean(axis=-1)
    alphas, gammas = ds["alpha"].values, ds["gamma"].values
    fig, axes = new_figure(1, width=4.2, height=3.0)
    ax = axes[0, 0]
    masked = np.ma.masked_where(frac_div == 1.0, mean_risk)
    mesh = ax.pcolormesh(np.arange(len(gammas) + 1), np.arange(len(alphas) + 1), masked, shading="flat",
                         norm=mcolors.LogNorm(vmin=max(np.nanmin(masked), 1e-6), vmax=np.nanmax(masked)), cmap="viridis")
    for i in range(len(alphas)):
        for j in range(len(gammas)):
            if frac_div[i, j] > 0:
                ax.text(j + 0.5, i + 0.5, f"div {frac_div[i, j]:.0%}", ha="center", va="center", fontsize=6, color="r")
    # theory: the mirror characterisation needs |gamma g| < 1; at step 0 the batch-1 gradient is -x_i y_i
    g_edge = 1.0 / np.max(np.abs(X * y[:, None]))
    if gammas.min() <= g_edge <= gammas.max():
        ax.axvline(np.interp(np.log(g_edge), np.log(gammas), np.arange(len(gammas)) + 0.5), color="w",
                   linestyle="--", linewidth=1.2, label=r"$\gamma \max_i\|x_i y_i\|_\infty = 1$")
        ax.legend(fontsize=6, loc="lower left")
    ax.set_xticks(np.arange(len(gammas)) + 0.5, [f"{g:g}" for g in gammas], rotation=45)
    ax.set_yticks(np.arange(len(alphas)) + 0.5, [f"{a:g}" for a in alphas])
    ax.set_xlabel(r"SGD step size $\gamma$ (batch 1)")
    ax.set_ylabel(r"initialisation scale $\alpha$")
    fig.colorbar(mesh, ax=ax, label=r"risk $\|\beta_\infty - \beta^*\|^2/2$ (mean over seeds)")
    return fig


FIGURE = Figure(
    name="diagonal_linear_phase",
    experiments=("diagonal_linear.phase_diagram",),
    draw=draw,
    caption="SGD (batch 1) on u*v, centred data n=20, d=40: risk of the final iterate over (gamma, alpha); red labels "
            "give the fraction of diverged seeds (masked when all diverge); the dashed line is where a first SGD step "
            "can already have |gamma g| = 1, beyond which the exact mirror characterisation no longer applies.",
)
