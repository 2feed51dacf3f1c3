"""Gram matrix of the class means at the end of GD against the closed-form simplex ETF / orthogonal frame."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import new_figure

EXP = "neural_collapse.mse_global"


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    K, N = cfg["K"], cfg["N"]
    r = float(ds["ratio"].values[1])
    skew = float(ds["skew"].values[-1])
    lam = r * th.mse_threshold_lambda(K, N)
    fig, axes = new_figure(4, 1, width=2.2, height=2.2)
    panels = []
    for mode, name in ((0, "no bias (OF)"), (1, "free bias (ETF)")):
        lb = None if mode == 0 else 0.0
        _, GM = th.mse_minimizer_gram(K, N, lam * skew, lam / skew, lb)
        panels.append((np.asarray(ds["gram_M"].sel(mode=mode, ratio=r, skew=skew, seed=0).values), f"GD: {name}"))
        panels.append((np.asarray(GM), f"theory: {name}"))
    vmax = max(np.abs(p).max() for p, _ in panels)
    for ax, (G, title) in zip(axes[0], panels):
        im = ax.imshow(G, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=7.5)
        ax.set_xticks(range(K))
        ax.set_yticks(range(K))
    fig.colorbar(im, ax=axes[0, -1], shrink=0.8)
    return fig


FIGURE = Figure(name="neural_collapse_gram", experiments=(EXP,), draw=draw,
                caption="Class-mean Gram matrix M^T M at the end of GD against the closed form Z/kappa: orthogonal "
                        "frame without bias, simplex ETF (cos = -1/(K-1)) with a free bias.")
