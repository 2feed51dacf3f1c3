"""(gamma, alpha) phase diagrams of SGD and full-batch GD on a diagonal linear network (Even et al. 2023): population
risk of the limit over step size and initialisation scale, with diverged runs masked; for GD the GF-path stability
step 2/max_t lambda_max(GF path) (theory) is marked per alpha."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import new_figure
from toymodels.diagonal_linear import make_data


def _log_index(values, grid):
    """Position of `values` on the cell-centred index axis of a log-spaced-ish grid (for lines over pcolormesh)."""
    return np.interp(np.log(values), np.log(grid), np.arange(len(grid)) + 0.5, left=np.nan, right=np.nan)


def _mesh(ax, alphas, gammas, risk, norm):
    mesh = ax.pcolormesh(np.arange(len(gammas) + 1), np.arange(len(alphas) + 1), risk, shading="flat", norm=norm,
                         cmap="viridis")
    ax.set_xticks(np.arange(len(gammas)) + 0.5, [f"{g:g}" for g in gammas], rotation=45)
    ax.set_yticks(np.arange(len(alphas)) + 0.5, [f"{a:g}" for a in alphas])
    ax.set_ylabel(r"initialisation scale $\alpha$")
    return mesh


def _first_step_line(ax, gammas, g_edge, label):
    x = _log_index(g_edge, gammas)
    if np.isfinite(x):
        ax.axvline(x, color="w", linestyle="--", linewidth=1.2, label=label)


def draw(datasets):
    import matplotlib.colors as mcolors

    sgd, gd = datasets["diagonal_linear.phase_diagram"], datasets["diagonal_linear.phase_diagram_gd"]
    c = json.loads(sgd.attrs["config"])
    X, y, bstar = make_data(c["n"], c["d"], c["k"], c["data_seed"], c.get("mu", 0.0))
    # SGD: mean risk over seeds, masked where every seed diverged
    div = sgd["diverged"].values
    risk = np.where(div, np.nan, 0.5 * np.sum((sgd["beta"].values - bstar) ** 2, axis=-1))
    frac_div = div.mean(axis=-1)
    risk_sgd = np.ma.masked_where(frac_div == 1.0, np.nanmean(np.where(np.all(div, -1, keepdims=True), 0.0, risk), -1))
    # GD (one deterministic run per point): masked where diverged
    gdiv = gd["diverged"].values[..., 0]
    loss = gd["loss"].values[..., 0]
    risk_gd = np.ma.masked_where(gdiv, 0.5 * np.sum((gd["beta"].values[..., 0, :] - bstar) ** 2, axis=-1))
    vals = np.concatenate([risk_sgd.compressed(), risk_gd.compressed()])
    norm = mcolors.LogNorm(vmin=max(vals.min(), 1e-6), vmax=vals.max())
    fig, axes = new_figure(2, width=4.2, height=3.1)
    a_s, g_s = sgd["alpha"].values, sgd["gamma"].values
    ax = axes[0, 0]
    mesh = _mesh(ax, a_s, g_s, risk_sgd, norm)
    for i in range(len(a_s)):
        for j in range(len(g_s)):
            if frac_div[i, j] > 0:
                ax.text(j + 0.5, i + 0.5, f"div {frac_div[i, j]:.0%}", ha="center", va="center", fontsize=6, color="r")
    # theory: the mirror characterisation needs |gamma g| < 1; at step 0 the batch-1 gradient is -x_i y_i
    _first_step_line(ax, g_s, 1.0 / np.max(np.abs(X * y[:, None])), r"$\gamma \max_i\|x_i y_i\|_\infty = 1$")
    ax.set_xlabel(r"SGD step size $\gamma$ (batch 1)")
    ax.set_title("SGD", fontsize=9)
    # GD panel
    ax = axes[0, 1]
    a_g, g_g = gd["alpha"].values, gd["gamma"].values
    cg = json.loads(gd.attrs["config"])
    _mesh(ax, a_g, g_g, risk_gd, norm)
    max_gg = gd["max_gg"].values[..., 0]
    for i in range(len(a_g)):
        for j in range(len(g_g)):
            if gdiv[i, j]:
                ax.text(j + 0.5, i + 0.5, "div", ha="center", va="center", fontsize=6, color="r")
            elif not loss[i, j] < cg["converged_loss"]:  # still decreasing 10x over the last quarter, or stalled
                lp = gd["loss_path"].values[i, j, 0]
                slow = lp[-1] < 0.1 * lp[-1 - len(lp) // 4]
                ax.text(j + 0.5, i + 0.5, "slow" if slow else "osc", ha="center", va="center", fontsize=6,
                        color="w" if slow else "r")
            elif max_gg[i, j] >= 1:
                ax.text(j + 0.5, i + 0.5, r"$\times$", ha="center", va="center", fontsize=7, color="w")
    _first_step_line(ax, g_g, 1.0 / np.max(np.abs(X.T @ y / X.shape[0])), r"$\gamma\|X^\top y/n\|_\infty = 1$")
    ts = np.concatenate([np.linspace(0.0, 100.0, cg["n_path"] // 2, endpoint=False),
                         np.geomspace(100.0, cg["t_path"], cg["n_path"] - cg["n_path"] // 2)])
    crit = np.array([2.0 / th.gf_path_sharpness(X, y, float(a), ts).max() for a in a_g])
    xs = _log_index(crit, g_g)
    for i, x in enumerate(xs):
        if np.isfinite(x):
            ax.plot([x, x], [i, i + 1], color="orange", linewidth=2.0,
                    label=r"$\gamma \max_t \lambda_{\max}(\mathrm{GF}) = 2$" if i == 0 else None)
    ax.set_xlabel(r"GD step size $\gamma$ (full batch)")
    ax.set_title(r"GD ($\times$: converged with $\max|\gamma g| \geq 1$)", fontsize=9)
    for a in axes[0]:
        a.legend(fontsize=6, loc="lower left")
    fig.colorbar(mesh, ax=axes[0, :].tolist(), label=r"risk $\|\beta_\infty - \beta^*\|^2/2$")
    return fig


FIGURE = Figure(
    name="diagonal_linear_phase",
    experiments=("diagonal_linear.phase_diagram", "diagonal_linear.phase_diagram_gd"),
    draw=draw,
    caption="Centred data n=20, d=40: risk of the final iterate over (gamma, alpha) for SGD (batch 1, left; mean over "
            "seeds, red labels give the fraction of diverged seeds) and full-batch GD (right; 'div' diverged, 'osc' "
            "bounded but stalled, 'slow' still converging at the last step, crosses converged with max|gamma g| >= 1). White dashed: a first step already "
            "has |gamma g| = 1, beyond which the exact mirror characterisation no longer applies. Orange (theory): "
            "gamma = 2/max_t lambda_max along the gradient-flow path; GD converges below it, and above it either "
            "converges to a flatter interpolator (gamma lambda_max <= 2 at the limit) or diverges.",
)
