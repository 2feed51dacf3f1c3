"""Mean-square stability of SGD on Gaussian least squares: MC growth rate of E[loss] vs log rho(A) over (eta, B)."""

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from sims.experiments.sgd_sde import stability_table


def draw(datasets):
    ds = datasets["sgd_sde.stability"]
    config = json.loads(ds.attrs["config"])
    table = stability_table(ds, config)
    fig, axes = new_figure(2)
    for n, (B, t) in enumerate(table.items()):
        axes[0, 0].plot(t["eta"], np.log(t["rho"]), color=color(n), **THEORY, label=rf"$\log\rho(A)$, B={B}")
        axes[0, 0].errorbar(t["eta"], t["rate"], yerr=t["rate_se"], color=color(n), **SIMULATION, label=f"MC, B={B}")
        axes[0, 0].axvline(t["eta_star"], color=color(n), linestyle=":", linewidth=0.8)
    axes[0, 0].axhline(0.0, color="k", linewidth=0.5)
    axes[0, 0].set(xlabel=r"step size $\eta$", ylabel="growth rate of E[loss] per step")
    axes[0, 0].legend(fontsize=6)
    Bs = np.unique(np.round(np.geomspace(1, 64, 40)).astype(int))
    from derivations.sgd_sde import ms_threshold
    lam = np.linspace(config["lam_min"], config["lam_max"], config["d"])
    axes[0, 1].plot(Bs, [ms_threshold(lam, int(B)) for B in Bs], color=color(0), **THEORY, label=r"$\rho(A)=1$")
    for n, (B, t) in enumerate(table.items()):
        stable = t["rate"] < 0
        axes[0, 1].plot(np.full(stable.sum(), B), t["eta"][stable], "o", color=color(2), markersize=3,
                        label="MC stable" if n == 0 else None)
        axes[0, 1].plot(np.full((~stable).sum(), B), t["eta"][~stable], "x", color=color(1), markersize=3,
                        label="MC divergent" if n == 0 else None)
    axes[0, 1].set(xscale="log", yscale="log", xlabel="batch size B", ylabel=r"$\eta$")
    axes[0, 1].legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="sgd_sde_stability", experiments=("sgd_sde.stability",), draw=draw,
    caption="Mean-square stability of minibatch SGD (d=16 Gaussian features): Monte-Carlo growth rate of E[loss] "
            "(markers, 1 SE) vs log of the spectral radius of the second-moment map (lines), and the (eta, B) phase diagram.",
)
