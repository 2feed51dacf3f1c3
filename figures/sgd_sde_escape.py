"""Mean escape time from a cubic well vs barrier/temperature: exact MFPT, Kramers' law, SDE and SGD Monte-Carlo."""

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from sims.experiments.sgd_sde import escape_theory


def draw(datasets):
    ds = datasets["sgd_sde.escape"].isel(seed=0)
    config = json.loads(ds.attrs["config"])
    fig, axes = new_figure(2)
    rs = np.linspace(0.5, float(ds.r.max()) + 0.5, 40)
    th = np.array([escape_theory(config, r, config["sde_dt"])[:2] for r in rs])
    for ax in axes[0]:
        ax.plot(rs, th[:, 0] if ax is axes[0, 0] else th[:, 1] / th[:, 0], color="k", **THEORY,
                label="exact MFPT" if ax is axes[0, 0] else "Kramers / exact")
    axes[0, 0].plot(rs, th[:, 1], color="k", linestyle="--", linewidth=1.0, label="Kramers")
    r = ds.r.values
    exact = np.array([escape_theory(config, float(x), config["sde_dt"])[0] for x in r])
    for n, (key, label) in enumerate((("sde", "SDE (Euler-Maruyama)"), ("sgd", "SGD, Hessian noise"))):
        axes[0, 0].errorbar(r, ds[f"{key}_tau"].values, yerr=ds[f"{key}_sem"].values, color=color(n), **SIMULATION,
                            label=label)
        axes[0, 1].errorbar(r, ds[f"{key}_tau"].values / exact, yerr=ds[f"{key}_sem"].values / exact, color=color(n),
                            **SIMULATION, label=f"{label} / exact")
    axes[0, 0].set(yscale="log", xlabel=r"$\Delta U / T$  ($= 2B\Delta U/(\eta h)$ for SGD)", ylabel="mean escape time")
    axes[0, 1].axhline(1.0, color="gray", linewidth=0.5)
    axes[0, 1].set(xlabel=r"$\Delta U / T$", ylabel="ratio to the exact MFPT")
    for ax in axes[0]:
        ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="sgd_sde_escape", experiments=("sgd_sde.escape",), draw=draw,
    caption="Escape from a cubic well: exact mean first-passage time (line), Kramers' asymptotic law (dashed), and "
            "Monte-Carlo escape times (renewal estimator, 1 SE) for the SDE and for SGD with Hessian-shaped noise.",
)
