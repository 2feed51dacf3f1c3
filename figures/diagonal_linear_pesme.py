"""Pesme, Pillaud-Vivien & Flammarion 2021 integral-of-loss APPROXIMATION of the effective initialisation of SGD:
exact ln(alpha_inf/alpha) (product formula over the run, Even et al. 2023) against -gamma diag(X^T X/n) int L dt."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import THEORY, color, new_figure
from toymodels.diagonal_linear import make_data


def draw(datasets):
    ds = datasets["diagonal_linear.sgd_implicit_bias"]
    c = json.loads(ds.attrs["config"])
    X, _, _ = make_data(c["n"], c["d"], c["k"], c["data_seed"], c.get("mu", 0.0))
    fig, axes = new_figure(2, width=3.4, height=3.0)
    ax, ax2 = axes[0, 0], axes[0, 1]
    lo, hi = 0.0, 0.0
    for k, gm in enumerate(ds["gamma"].values):
        r = ds.sel(gamma=gm)
        ok = (~r["diverged"].values) & (r["max_gg"].values < 1)
        exact = 0.5 * r["sum_log1m"].values[ok]                       # (runs, d): ln(alpha_inf,i / alpha), exact
        approx = np.stack([np.asarray(th.pesme_log_alpha_ratio(gm, X, float(il))) for il in r["int_loss"].values[ok]])
        col = color(k)
        ax.plot(exact.ravel(), approx.ravel(), linestyle="none", marker=".", markersize=2, alpha=0.35, color=col)
        ax.plot(exact.mean(axis=1), approx.mean(axis=1), linestyle="none", marker="o", markersize=5, color=col,
                markerfacecolor="none", label=rf"$\gamma = {gm:g}$ (runs: mean over $i$)")
        rel = np.abs(approx.mean(axis=1) - exact.mean(axis=1)) / np.abs(exact.mean(axis=1))
        ax2.plot(np.full(rel.size, gm), rel, linestyle="none", marker="o", markersize=4, markerfacecolor="none",
                 color=col)
        ex_m, ap_m = exact.mean(), approx.mean()   # the validated quantity: mean over coordinates and seeds
        ax2.plot([gm], [abs(ap_m - ex_m) / abs(ex_m)], linestyle="none", marker="x", markersize=7, color=col,
                 label="mean over seeds (validated)" if k == 0 else None)
        lo, hi = min(lo, exact.min(), approx.min()), max(hi, exact.max(), approx.max())
    ax.plot([lo, hi], [lo, hi], color="k", label="identity", **THEORY)
    ax.set_xlabel(r"exact $\ln(\alpha_{\infty,i}/\alpha) = \frac{1}{2}\sum_k \ln(1-\gamma^2 g_{k,i}^2)$")
    ax.set_ylabel(r"approx. $-\gamma\,(X^\top X/n)_{ii}\int_0^\infty L\,dt$")
    ax.legend(fontsize=6)
    ax2.set_xlabel(r"SGD step size $\gamma$")
    ax2.set_ylabel("relative error of the mean over coordinates")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="diagonal_linear_pesme",
    experiments=("diagonal_linear.sgd_implicit_bias",),
    draw=draw,
    caption="An APPROXIMATION, not an identity: the effective initialisation of SGD (batch 1, alpha = 0.1, centred "
            "data n=20, d=40). Left: exact ln(alpha_inf/alpha) from the product formula over each run against the "
            "integral-of-loss approximation of Pesme et al. 2021, per coordinate (dots) and averaged over coordinates "
            "per run (circles), with the identity line. Right: relative error of the coordinate average per seed "
            "(circles) and of the average over seeds (crosses, the quantity in the validation table).",
)
