"""Minority collapse: per-class classifier norms vs imbalance ratio R (closed form lines, GD markers)."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "neural_collapse.minority_collapse"
EXP_CE = "neural_collapse.minority_collapse_ce"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    KA, KB, nA, lam = cfg["K_major"], cfg["K_minor"], cfg["n_major"], cfg["lam"]
    R = np.geomspace(1.0, float(ds["R"].max()), 300)
    sizes = np.concatenate([np.full((R.size, KA), float(nA)), np.repeat((nA / R)[:, None], KB, axis=1)], axis=1)
    wth, _ = (np.asarray(x) for x in th.mse_imbalanced_class_norms(sizes, lam, lam))
    fig, axes = new_figure(3, 1)
    ax = axes[0, 0]
    ax.plot(R, wth[:, 0], color=color(0), label=r"majority $\|w_k\|$", **THEORY)
    ax.plot(R, wth[:, -1], color=color(1), label=r"minority $\|w_k\|$", **THEORY)
    wn = ds["w_norm"].values  # [R, seed, K]
    for s in range(wn.shape[1]):
        ax.plot(ds["R"].values, wn[:, s, 0], color=color(0), **SIMULATION)
        ax.plot(ds["R"].values, wn[:, s, -1], color=color(1), **SIMULATION)
    Rstar = th.minority_threshold_ratio(KA, KB, nA, lam)
    for a in axes[0, :2]:
        a.axvline(Rstar, color="0.5", linestyle=":", linewidth=1)
        a.set_xscale("log")
        a.set_xlabel("imbalance ratio R = n_major / n_minor")
    ax.set_ylabel("classifier norm")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(ds["R"].values, ds["minority_dist"].values.max(axis=1), color=color(2), marker="o", linestyle="-",
            label=r"$\|w_{\rm min,1} - w_{\rm min,2}\|$ (GD)")
    ax.set_ylabel("distance between minority classifiers")
    ax.legend()
    ax = axes[0, 2]
    ce = datasets[EXP_CE]
    K = json.loads(ce.attrs["config"])["K_major"] + json.loads(ce.attrs["config"])["K_minor"]
    for s in range(ce.sizes["seed"]):
        ax.plot(ce["R"].values, ce["minority_cos"].values[:, s], color=color(3), marker="o", linestyle="-",
                label="CE: cos(minority classifiers)" if s == 0 else None)
    ax.axhline(-1 / (K - 1), color="0.5", linestyle="--", linewidth=1, label="ETF -1/(K-1)")
    ax.axhline(1.0, color="0.5", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("imbalance ratio R")
    ax.set_ylabel("cosine")
    ax.legend()
    return fig


FIGURE = Figure(name="neural_collapse_minority", experiments=(EXP, EXP_CE), draw=draw,
                caption="Class-imbalanced MSE UFM without bias: minority classifiers shrink as (sqrt(n_k) - n lam)_+ and "
                        "collapse onto each other (at 0) past the closed-form ratio R* (dotted); right: cross-entropy UFM, "
                        "the minority classifiers' cosine grows from the ETF value towards 1 (Fang et al. 2021).")
