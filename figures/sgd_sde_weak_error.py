"""Weak error of the stochastic modified equations vs eta (log-log), order 1 and order 2."""

import numpy as np

from figures import Figure
from figures.style import color, hide_minor_labels, new_figure
from sims.experiments.sgd_sde import weak_slope


def draw(datasets):
    ds = datasets["sgd_sde.sme_weak_error"].isel(seed=0)
    fig, axes = new_figure(1)
    ax = axes[0, 0]
    eta = ds.eta.values
    for n, (key, label, p0) in enumerate((("err1", "order-1 SME", 1), ("err2", "order-2 SME", 2))):
        err, se = np.abs(ds[key].values), ds[key + "_sem"].values
        idx = np.argsort(eta)[:4]
        p, sp_ = weak_slope(eta[idx], ds[key].values[idx], se[idx])
        ax.errorbar(eta, err, yerr=se, color=color(n), linestyle="none", marker="o", markersize=3.5,
                    label=rf"{label}: slope {p:.2f} $\pm$ {sp_:.2f}")
        ref = err[idx[0]] * (eta / eta[idx[0]]) ** p0
        ax.plot(eta, ref, color=color(n), linestyle=":", linewidth=1.0, label=rf"$\propto \eta^{p0}$")
    ax.set(xscale="log", yscale="log", xlabel=r"step size $\eta$",
           ylabel=r"$|\mathbb{E}\,x_k^2 - \mathbb{E}\,X_{k\eta}^2|$")
    ax.legend(fontsize=6)
    hide_minor_labels(*fig.axes)
    return fig


FIGURE = Figure(
    name="sgd_sde_weak_error", experiments=("sgd_sde.sme_weak_error",), draw=draw,
    caption="Weak error between SGD and its stochastic modified equation on f = log cosh x + x^2/4 with state-dependent "
            "noise (common random numbers, 1 SE bars): slope 1 for the order-1 SME and 2 with the -(eta/4)|f'|^2' correction.",
)
