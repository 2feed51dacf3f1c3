"""Population error of the gradient-flow limit vs the initialisation scale alpha on the d = 1000 sparse-regression
dataset of Azulay et al. 2021 ("Woodworth" data: n = 100, 5-sparse target, noise 0.01, seed 1993), spec A.3.2."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from sims.experiments.diagonal_linear import WOODWORTH_SPEC as SPEC, woodworth_data


def draw(datasets):
    ds = datasets["diagonal_linear.woodworth_population"]
    c = json.loads(ds.attrs["config"])
    X, y, w = woodworth_data(c["n"], c["d"], c["s"], c["noise_var"], c["data_seed"])
    agrid = np.geomspace(1e-5, 10.0, 25)
    theory = np.array([th.mirror_limit(X, y, a, parametrisation="W") for a in agrid])
    b1, b2 = th.min_l1_interpolator(X, y), th.min_l2_interpolator(X, y)
    al = ds["alpha"].values
    sim = ds["beta"].isel(seed=0).values
    fig, axes = new_figure(2)
    ax, ax2 = axes[0, 0], axes[0, 1]
    ax.plot(agrid, np.sum((theory - w) ** 2, axis=1), color=color(0), label=r"argmin $Q_\alpha$ (dual Newton)", **THEORY)
    ax.plot(al, np.sum((sim - w) ** 2, axis=1), color=color(1), label="gradient flow (simulated)", **SIMULATION)
    sa = np.array(sorted(SPEC))
    ax.plot(sa, [SPEC[a] for a in sa], linestyle="none", marker="x", markersize=4, color="k", label="spec table")
    for ref, lab, ls in ((b2, r"min-$\ell_2$", "--"), (b1, r"min-$\ell_1$", ":")):
        ax.axhline(np.sum((ref - w) ** 2), color="0.4", linestyle=ls, linewidth=0.9, label=lab)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"initialisation scale $\alpha$")
    ax.set_ylabel(r"population error $\|\beta^\infty_\alpha - w^*\|_2^2$")
    ax.legend(fontsize=6)
    # distance of the simulated limit to the closed form, per alpha
    bq = np.array([th.mirror_limit(X, y, float(a), parametrisation="W") for a in al])
    ax2.plot(al, np.linalg.norm(sim - bq, axis=1), color=color(1), label=r"$\|\beta_{GF} - \beta_Q\|_2$",
             **SIMULATION)
    for ref, lab, k in ((b1, r"$\|\beta_Q - \beta_{\ell_1}\|_2$", 2), (b2, r"$\|\beta_Q - \beta_{\ell_2}\|_2$", 3)):
        ax2.plot(agrid, np.linalg.norm(theory - ref, axis=1), color=color(k), label=lab, **THEORY)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"initialisation scale $\alpha$")
    ax2.set_ylabel("distance")
    ax2.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="diagonal_linear_population",
    experiments=("diagonal_linear.woodworth_population",),
    draw=draw,
    caption="Kernel-to-rich transition at d = 1000 (Azulay et al. 2021 data: n = 100, 5-sparse target w*, noise "
            "variance 0.01, seed 1993). Left: population error of the gradient-flow limit for x ~ N(0, I) vs alpha; "
            "line: exact minimiser of Q_alpha over the interpolators (dual Newton); circles: simulated full-parameter "
            "gradient flow; crosses: the spec's reference table; dashed/dotted: min-l2 and min-l1 interpolators. "
            "Right: distance of the simulated limit to the closed form, and of the closed form to the two "
            "interpolators (logarithmic approach to min-l1).",
)
