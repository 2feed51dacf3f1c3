"""Stationary covariance of SGD on a noisy quadratic vs eta: exact discrete Lyapunov, SDE (continuous Lyapunov), MC."""

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, hide_minor_labels, new_figure
from sims.experiments.sgd_sde import ou_theory


def draw(datasets):
    ds = datasets["sgd_sde.ou_covariance"].isel(seed=0)
    config = json.loads(ds.attrs["config"])
    fig, axes = new_figure(2)
    etas = np.linspace(0.01, float(ds.eta.max()) * 1.05, 60)
    for n, B in enumerate(ds.batch.values):
        th = [ou_theory(e, float(B), config) for e in etas]
        scale = etas / B
        axes[0, 0].plot(etas, [np.trace(t[0]) for t in th] / scale, color=color(n), **THEORY,
                        label=f"discrete Lyapunov, B={B:g}" if n == 0 else None)
        axes[0, 0].plot(etas, [np.trace(t[1]) for t in th] / scale, color=color(n), linestyle="--", linewidth=1.0,
                        label="SDE (continuous Lyapunov)" if n == 0 else None)
        p = ds.sel(batch=B)
        sc = p.eta.values / B
        tr = np.trace(p.sgd_cov.values, axis1=-2, axis2=-1)
        tr_se = np.sum(np.diagonal(p.sgd_sem.values, axis1=-2, axis2=-1), axis=-1)
        axes[0, 0].errorbar(p.eta.values, tr / sc, yerr=tr_se / sc, color=color(n), **SIMULATION,
                            label=f"SGD Monte-Carlo, B={B:g}")
        sde = np.trace(p.sde_cov.values, axis1=-2, axis2=-1)
        sde_se = np.sum(np.diagonal(p.sde_sem.values, axis1=-2, axis2=-1), axis=-1)
        axes[0, 0].errorbar(p.eta.values, sde / sc, yerr=sde_se / sc, color=color(n), linestyle="none", marker="s",
                            markersize=3, label=f"SDE Euler-Maruyama, B={B:g}")
        Sd = np.array([np.trace(ou_theory(float(e), float(B), config)[0]) for e in p.eta.values])
        Sc = np.array([np.trace(ou_theory(float(e), float(B), config)[1]) for e in p.eta.values])
        axes[0, 1].errorbar(p.eta.values, tr / Sc - 1, yerr=tr_se / Sc, color=color(n), **SIMULATION,
                            label=f"MC / SDE - 1, B={B:g}")
        axes[0, 1].plot(p.eta.values, Sd / Sc - 1, color=color(n), **THEORY)
    axes[0, 0].set(xlabel=r"step size $\eta$", ylabel=r"$\mathrm{tr}\,\Sigma \,/\, (\eta/B)$")
    axes[0, 0].legend(fontsize=6)
    axes[0, 1].set(xlabel=r"step size $\eta$", ylabel=r"relative error of the SDE covariance", xscale="log",
                   yscale="log")
    axes[0, 1].legend(fontsize=6)
    hide_minor_labels(*fig.axes)
    return fig


FIGURE = Figure(
    name="sgd_sde_covariance", experiments=("sgd_sde.ou_covariance",), draw=draw,
    caption="Stationary covariance of SGD on an anisotropic noisy quadratic (non-commuting H, C): exact discrete "
            "Lyapunov (lines) and Monte-Carlo SGD (markers, 1 SE); the SDE/continuous Lyapunov (dashed) is off by O(eta).",
)
