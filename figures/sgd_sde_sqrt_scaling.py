"""Square-root scaling rule for RMSprop/Adam (Malladi et al. 2022): E[loss] vs examples seen for several kappa."""

import json

import numpy as np

from figures import Figure
from figures.style import THEORY, color, new_figure
from sims.experiments.sgd_sde import adam_sde_curve, rmsprop_sde_curve


def draw(datasets):
    ds = datasets["sgd_sde.sqrt_scaling"].isel(seed=0)
    fig, axes = new_figure(2, 2)
    x = ds.examples.values
    for i, kind in enumerate(("rmsprop", "adam")):
        for j, (rule, name) in enumerate(((0, "square-root rule"), (1, "linear rule"))):
            ax = axes[i, j]
            for n, kap in enumerate(ds.kappa.values):
                L = ds[f"{kind}_loss"].sel(rule=rule, kappa=kap).values
                S = ds[f"{kind}_sem"].sel(rule=rule, kappa=kap).values
                ax.errorbar(x, L, yerr=S, color=color(n), marker="o", markersize=3, linewidth=1.0,
                            label=rf"$\kappa={int(kap)}$")
            curve = rmsprop_sde_curve if kind == "rmsprop" else adam_sde_curve
            ax.plot(x, curve(json.loads(ds.attrs["config"])), color="k", **THEORY, label=f"{kind} SDE (Malladi et al.)")
            ax.set(xlabel="examples seen / B", ylabel="E[loss]", title=f"{kind}, {name}", yscale="log")
            ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="sgd_sde_sqrt_scaling", experiments=("sgd_sde.sqrt_scaling",), draw=draw,
    caption="optax RMSprop and Adam on a noisy quadratic with batch kappa*B: curves collapse under the square-root rule "
            "(eta sqrt(kappa), 1-beta times kappa, eps/sqrt(kappa)) and not under the linear rule (1 SE bars).",
)
